/**
 * Where an image's documents and blobs come from: a registry (the CLI adapts
 * infra/registry.ts to this), an OCI image layout directory (oci-layout.ts)
 * or an OCI archive (oci-archive.ts). A source only fetches; every digest and
 * size is checked by the reader (resolve.ts for documents, layer-reader.ts
 * for layers), so a source need not be trusted.
 */
import type { Readable } from 'node:stream';

export interface FetchedDocument {
  /** the media type the source reports (a registry's Content-Type), if any */
  mediaType: string | null;
  /** the digest the document was asked by, or the registry reported; checked against the bytes when it is a sha256 */
  digest: string | null;
  body: Buffer;
}

export interface ImageSource {
  /** how the image is named in messages: `127.0.0.1:5000/app/api:1.4`, `./layout`, `image.tar` */
  readonly name: string;
  /** the document the reference names: an index or a manifest; IMAGE_NOT_FOUND when there is none */
  root(maxBytes: number): Promise<FetchedDocument>;
  /** an index's or manifest's child document by digest */
  document(digest: string, maxBytes: number): Promise<FetchedDocument>;
  /** a blob (a layer, a config) as a stream */
  openBlob(digest: string): Promise<Readable>;
}
