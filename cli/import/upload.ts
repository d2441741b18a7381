/**
 * The import's upload: the preflight space check, then FILE.sig and
 * FILE.sigstore.json first (when present), then the tarball, streamed with its
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
import { devPaths, isLoopbackUrl } from '../../infra/env.ts';
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

export async function uploadSmall(p: CliPipeline, src: Source, suffix: string, say: Say): Promise<boolean> {
  const key = src.key + suffix;
  if (src.isUrl) {
    const res = await fetchOk(src.name + suffix);
    if (!res) return false;
    const buf = Buffer.from(await res.arrayBuffer());
    await uploadStream(p.store, p.config.bucket, key, Readable.from([buf]), buf.length);
  } else {
    const file = src.name + suffix;
    if (!fs.existsSync(file)) return false;
    await uploadStream(p.store, p.config.bucket, key, fs.createReadStream(file), fs.statSync(file).size);
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

