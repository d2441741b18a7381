/**
 * An OCI archive (a tar of an OCI image layout, as `skopeo copy …
 * oci-archive:FILE` writes it) as an image source: each document or blob is
 * found by reading the archive from the start to its member and streaming
 * that member; nothing is extracted to disk. Member names are matched
 * exactly (`index.json`, `blobs/sha256/<hex>`, with or without `./`).
 */
import fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { OukError } from '../lib/errors.ts';
import { blobHex, pickTagged, readBounded } from './documents.ts';
import type { ImageSource } from './source.ts';

function member(file: string, wanted: string, image: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const ex = extract();
    const input = fs.createReadStream(file);
    let found = false;
    ex.on('entry', (h, body, next) => {
      if (!found && h.name.replace(/^\.\//, '') === wanted && (h.type === 'file' || h.type === 'contiguous-file')) {
        found = true;
        const out = new PassThrough();
        body.pipe(out);
        body.on('end', () => {
          input.destroy();
          ex.destroy();
        });
        resolve(out);
        return;
      }
      body.on('end', next);
      body.resume();
    });
    ex.on('finish', () => {
      if (!found) reject(new OukError(wanted === 'index.json' ? 'IMAGE_NOT_FOUND' : 'IMAGE_INVALID', `${image} has no ${wanted}: it is not a complete OCI archive`));
    });
    ex.on('error', (e) => {
      if (!found) reject(new OukError('IMAGE_INVALID', `${image} is not a tar archive (${e.message})`, { cause: e }));
    });
    input.on('error', (e: NodeJS.ErrnoException) => reject(new OukError('IMAGE_NOT_FOUND', `${image} cannot be read (${e.code ?? e.message})`, { cause: e })));
    input.pipe(ex);
  });
}

export function ociArchiveSource(file: string, tag?: string): ImageSource {
  const name = tag ? `${file}:${tag}` : file;
  const blob = (digest: string): string => `blobs/sha256/${blobHex(digest, name)}`;
  return {
    name,
    async root(maxBytes) {
      const body = await readBounded(await member(file, 'index.json', name), maxBytes, `index.json of ${name}`);
      if (!tag) return { mediaType: null, digest: null, body };
      const d = pickTagged(body, tag, name);
      return { mediaType: d.mediaType, digest: d.digest, body: await readBounded(await member(file, blob(d.digest), name), maxBytes, `blob ${d.digest} of ${name}`) };
    },
    async document(digest, maxBytes) {
      return { mediaType: null, digest, body: await readBounded(await member(file, blob(digest), name), maxBytes, `blob ${digest} of ${name}`) };
    },
    openBlob: (digest) => member(file, blob(digest), name),
  };
}
