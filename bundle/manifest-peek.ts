/**
 * Reads manifest.json, the first member of a bundle, from the start of its
 * compressed bytes, without reading the rest: gunzip just enough, then take the
 * first tar entry. Used by verify (fed the same chunks the signature check
 * reads, so the tarball is fetched once) and by the CLI's preflight.
 *
 * The raw bytes are returned unparsed: verify parses them only after the
 * signature over the whole tarball holds.
 */
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { MAX_MANIFEST_BYTES } from './manifest.ts';
import { normaliseName } from './reader.ts';
import { MANIFEST_MEMBER } from './tables.ts';
import { OukError } from '../lib/errors.ts';

/** Decompressed bytes fed to the tar parser at most: one header, the manifest, slack. */
const MAX_DECOMPRESSED = MAX_MANIFEST_BYTES + 64 * 1024;

export interface ManifestPeek {
  /** Feeds compressed bytes (ignored once the manifest is found); false when the caller should await `drained()`. */
  write(chunk: Buffer): boolean;
  /** Resolves when more bytes may be written (or the peek is over). */
  drained(): Promise<void>;
  /** No more bytes: fails the result if the manifest was not complete. */
  end(): void;
  /** The raw manifest.json bytes. */
  readonly result: Promise<Buffer>;
  readonly done: boolean;
}

function notABundle(why: string): OukError {
  return new OukError('MANIFEST_INVALID', `cannot read manifest.json at the start of the tarball (${why}): this is not a Stella OUK bundle, or it is damaged`);
}

export function createManifestPeek(): ManifestPeek {
  const gunzip = createGunzip();
  const extract = tarExtract();
  let fed = 0;
  let done = false;
  let settle!: { resolve(b: Buffer): void; reject(e: unknown): void };
  const result = new Promise<Buffer>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(() => undefined); // reported through `result` when awaited

  const finish = (err: unknown, raw?: Buffer): void => {
    if (done) return;
    done = true;
    if (raw) settle.resolve(raw);
    else settle.reject(err);
    gunzip.removeAllListeners('data');
    gunzip.on('error', () => undefined);
    extract.on('error', () => undefined);
    gunzip.destroy();
    extract.destroy();
  };

  gunzip.on('data', (d: Buffer) => {
    if (done) return;
    fed += d.length;
    if (fed > MAX_DECOMPRESSED) {
      finish(notABundle(`no ${MANIFEST_MEMBER} within the first ${MAX_DECOMPRESSED} bytes`));
      return;
    }
    extract.write(d);
  });
  gunzip.on('end', () => {
    if (!done) extract.end(undefined);
  });
  gunzip.on('error', (e) => finish(new OukError('ARCHIVE_CORRUPT', `the tarball is not gzip-compressed or is damaged (${e.message}): re-download or re-copy it`, { cause: e })));
  extract.on('error', (e) => finish(notABundle(e.message)));
  extract.on('finish', () => finish(notABundle('the archive ended first')));
  extract.on('entry', (header, stream, next) => {
    const name = normaliseName(header.name);
    if (name !== MANIFEST_MEMBER || header.type !== 'file') {
      stream.resume();
      finish(notABundle(`the first member is "${header.name}" (${header.type})`));
      return;
    }
    if ((header.size ?? 0) > MAX_MANIFEST_BYTES) {
      stream.resume();
      finish(notABundle(`${MANIFEST_MEMBER} is ${header.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`));
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      finish(null, Buffer.concat(chunks));
      next();
    });
  });

  return {
    write(chunk) {
      return done ? true : gunzip.write(chunk);
    },
    drained() {
      if (done) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const go = (): void => {
          gunzip.off('drain', go);
          resolve();
        };
        gunzip.once('drain', go);
        result.then(go, go);
      });
    },
    end() {
      if (!done) gunzip.end();
    },
    result,
    get done() {
      return done;
    },
  };
}

/** Reads a stream until manifest.json is complete, then stops reading it (destroys it). */
export async function peekManifest(input: Readable): Promise<Buffer> {
  const peek = createManifestPeek();
  try {
    for await (const chunk of input) {
      if (!peek.write(chunk as Buffer)) await peek.drained();
      if (peek.done) break;
    }
    peek.end();
    return await peek.result;
  } finally {
    input.destroy();
  }
}
