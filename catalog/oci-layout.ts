/**
 * An OCI image layout directory as an image source (image-spec
 * image-layout.md): `index.json` is the root, blobs are
 * `blobs/<alg>/<hex>`. `tag` picks the index.json entry whose
 * `org.opencontainers.image.ref.name` is that tag (without one, index.json
 * itself is the root). Only sha256 digests name files, so no digest can
 * point outside `blobs/sha256/`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { OukError } from '../lib/errors.ts';
import { blobHex, pickTagged, readBounded } from './documents.ts';
import type { FetchedDocument, ImageSource } from './source.ts';

export function ociLayoutSource(dir: string, tag?: string): ImageSource {
  const name = tag ? `${dir}:${tag}` : dir;
  const blobPath = (digest: string): string => path.join(dir, 'blobs', 'sha256', blobHex(digest, name));
  const file = async (p: string, maxBytes: number, what: string): Promise<Buffer> => {
    try {
      return await readBounded(fs.createReadStream(p), maxBytes, `${what} of ${name}`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR') throw new OukError('IMAGE_NOT_FOUND', `${name} has no ${what} (${path.relative(dir, p)}): it is not a complete OCI image layout`);
      throw e;
    }
  };
  return {
    name,
    async root(maxBytes) {
      const body = await file(path.join(dir, 'index.json'), maxBytes, 'index.json');
      if (!tag) return { mediaType: null, digest: null, body };
      const d = pickTagged(body, tag, name);
      return { mediaType: d.mediaType, digest: d.digest, body: await file(blobPath(d.digest), maxBytes, `blob ${d.digest}`) };
    },
    async document(digest, maxBytes): Promise<FetchedDocument> {
      return { mediaType: null, digest, body: await file(blobPath(digest), maxBytes, `blob ${digest}`) };
    },
    async openBlob(digest): Promise<Readable> {
      const p = blobPath(digest);
      if (!fs.existsSync(p)) throw new OukError('IMAGE_INVALID', `${name} lacks blob ${digest} its manifest names: the layout is incomplete — copy the image again`);
      return fs.createReadStream(p);
    },
  };
}
