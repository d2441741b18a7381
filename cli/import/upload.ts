/**
 * The import's upload: the preflight space check, then the files beside the
 * kit first (when present: FILE.sig, FILE.sigs.json, FILE.sigstore.json,
 * FILE.intoto.json; each bounded), then the tarball, streamed with its
 * known size (a URL without a usable Content-Length is spooled to a temporary
 * file first: the store needs the size up front), with a progress bar.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import type { Manifest } from '../../bundle/manifest.ts';
import { countBytes } from '../../functions/context.ts';
import { devPaths } from '../../infra/env.ts';
import { isLoopbackUrl } from '../../lib/loopback.ts';
import { uploadStream, type UploadResult } from '../../infra/store.ts';
import { OukError } from '../../lib/errors.ts';
import type { CliPipeline } from './pipeline.ts';
import { checkSpace, freeBytes, localDataDirectory, spaceNeeded, type SpaceCheck } from './preflight.ts';
import { fetchOk, webToNode, type Source } from './source.ts';

export async function preflight(p: Pick<CliPipeline, 'config' | 'env' | 'pool'>, manifest: Manifest, tarballSize: number): Promise<SpaceCheck> {
  const storeDir = isLoopbackUrl(p.config.s3Endpoint) ? devPaths(p.env).s3Dir : null;
  const storeFree = storeDir && fs.existsSync(storeDir) ? await freeBytes(storeDir) : null;
  const dataDir = await localDataDirectory(p.pool, p.config.databaseUrl);
  const databaseFree = dataDir ? await freeBytes(dataDir) : null;
  return checkSpace(spaceNeeded(manifest, tarballSize), { storeDir, storeFree, dataDir, databaseFree });
}

export interface Say {
  info(line: string): void;
}

/** The most a file beside a kit may hold (an attestation names a handful of feeds: kilobytes). */
export const MAX_SIBLING_BYTES = 4 * 1024 * 1024;

function tooLarge(name: string): OukError {
  return new OukError('SIGNATURE_MALFORMED', `${name} is larger than ${MAX_SIBLING_BYTES} bytes: it is not a signature or attestation file — re-download the files published with the kit`);
}

/** Reads a response body up to `max` bytes (a hostile server may send anything). */
async function boundedBody(res: Response, name: string, max: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) throw tooLarge(name);
  const chunks: Buffer[] = [];
  let n = 0;
  if (!res.body) return Buffer.alloc(0);
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += c.length;
    if (n > max) throw tooLarge(name);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

export async function uploadSmall(p: CliPipeline, src: Source, suffix: string, say: Say): Promise<boolean> {
  const key = src.key + suffix;
  if (src.isUrl) {
    const res = await fetchOk(src.name + suffix);
    if (!res) return false;
    const buf = await boundedBody(res, src.name + suffix, MAX_SIBLING_BYTES);
    await uploadStream(p.store, p.config.bucket, key, Readable.from([buf]), buf.length);
  } else {
    const file = src.name + suffix;
    if (!fs.existsSync(file)) return false;
    const size = fs.statSync(file).size;
    if (size > MAX_SIBLING_BYTES) throw tooLarge(file);
    await uploadStream(p.store, p.config.bucket, key, fs.createReadStream(file), size);
  }
  say.info(`uploaded ${key}`);
  return true;
}

function uploadBar(enabled: boolean, total: number): { tick(n: number): void; stop(): void } {
  if (!enabled) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: 'upload   [{bar}] {percentage}% | {value}/{total} bytes', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  let done = 0;
  return {
    tick(n) {
      done += n;
      bar.update(done);
    },
    stop: () => bar.stop(),
  };
}

export async function uploadTarball(p: CliPipeline, src: Source, bars: boolean): Promise<UploadResult> {
  if (!src.isUrl) {
    const size = fs.statSync(src.name).size;
    const bar = uploadBar(bars, size);
    try {
      return await uploadStream(p.store, p.config.bucket, src.key, countBytes(fs.createReadStream(src.name, { highWaterMark: 1 << 20 }), bar.tick), size);
    } finally {
      bar.stop();
    }
  }
  const res = await fetchOk(src.name);
  if (!res?.body) throw new OukError('INPUT_NOT_FOUND', `${src.name} was not found on the mirror`);
  const length = Number(res.headers.get('content-length'));
  const encoded = res.headers.get('content-encoding');
  if (Number.isFinite(length) && length > 0 && !encoded) {
    const bar = uploadBar(bars, length);
    try {
      return await uploadStream(p.store, p.config.bucket, src.key, countBytes(webToNode(res), bar.tick), length);
    } finally {
      bar.stop();
    }
  }
  // No usable Content-Length: spool to a temporary file (streamed), then upload it with its size.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stella-import-'));
  const spool = path.join(dir, src.key);
  try {
    await pipeline(webToNode(res), fs.createWriteStream(spool));
    const size = fs.statSync(spool).size;
    return await uploadStream(p.store, p.config.bucket, src.key, fs.createReadStream(spool, { highWaterMark: 1 << 20 }), size);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

