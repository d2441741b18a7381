/**
 * `stella ouk import FILE|URL [--allow-downgrade] [--force] [--no-wait] [--json]`
 *
 *  1. preflight: the manifest (read from the start of the tarball) against the
 *     free space of the object store and of PostgreSQL (INSUFFICIENT_SPACE);
 *  2. uploads FILE.sig and FILE.sigstore.json first (when present), then the
 *     tarball, streamed with its known size (a URL — an intranet mirror over
 *     HTTP/S — is streamed too, or spooled to a temporary file when the server
 *     sends no Content-Length: the store needs the size up front);
 *  3. ingests the object itself (idempotent: works with or without bucket
 *     notifications), with the flags stored on the import;
 *  4. follows verify → unpack → load → activate with a progress bar per stage,
 *     and ends with `activated <version>` (exit 0), or the failing stage and
 *     its reason (exit code = the error's code, see docs/exit-codes.md).
 *
 * Importing a bundle that failed before retries it from its failed stage.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { parseManifest, type Manifest } from '../../bundle/manifest.ts';
import { createPool, migrate, type Pool } from '../../infra/db.ts';
import { devPaths, isLoopbackUrl, resolveEnv } from '../../infra/env.ts';
import { createStore, storeUnavailable, type ObjectStore } from '../../infra/store.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { EXIT_CODES, findOukError, OukError, type ErrorCode } from '../../lib/errors.ts';
import { STAGES, type StageName } from '../../functions/context.ts';
import { peekManifest } from '../../functions/manifest-peek.ts';
import { countBytes } from '../../functions/context.ts';
import { uploadStream, type UploadResult } from '../../infra/store.ts';
import { checkSpace, freeBytes, localDataDirectory, spaceNeeded, type SpaceCheck } from '../../functions/preflight.ts';
import { getImport, type ImportRecord } from '../../functions/records.ts';
import { connectRedis } from '../../queue/connection.ts';
import { jobIdFor } from '../../queue/identity.ts';
import { ingestObject, type IngestDeps } from '../../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../../queue/queues.ts';
import { retryImport } from '../../queue/retry.ts';
import { pipelineSettings, type PipelineSettings } from '../../queue/settings.ts';

// ---- connections ------------------------------------------------------------

export interface CliPipeline {
  config: Config;
  env: Record<string, string | undefined>;
  settings: PipelineSettings;
  pool: Pool;
  store: ObjectStore;
  queues: PipelineQueues;
  deps: IngestDeps;
  close(): Promise<void>;
}

/** PostgreSQL (migrated), the store, and the queues — failing fast with a clear error when one is down. */
export async function openCliPipeline(): Promise<CliPipeline> {
  const env = resolveEnv();
  const config = loadConfig(env);
  const settings = pipelineSettings(env);
  const pool = createPool(config.databaseUrl, 3);
  try {
    await migrate(pool);
    const redis = await connectRedis(config.redisUrl);
    const queues = openPipelineQueues(redis, config.queuePrefix);
    const store = createStore(config.store);
    return {
      config,
      env,
      settings,
      pool,
      store,
      queues,
      deps: { pool, queues, settings },
      async close() {
        await queues.close();
        redis.disconnect();
        await pool.end();
      },
    };
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
}

// ---- source: a file or a URL --------------------------------------------------

interface Source {
  /** What the operator named. */
  name: string;
  /** Object key in the bucket: the file name. */
  key: string;
  isUrl: boolean;
}

function sourceOf(arg: string): Source {
  const isUrl = /^https?:\/\//i.test(arg);
  const base = isUrl ? decodeURIComponent(path.posix.basename(new URL(arg).pathname)) : path.basename(arg);
  if (!base.endsWith('.tar.gz')) {
    throw new OukError('USAGE', `${arg} is not a bundle tarball: only *.tar.gz kits are imported (the .sig and .sigstore.json beside it are uploaded with it)`);
  }
  return { name: arg, key: base, isUrl };
}

async function fetchOk(url: string, init: RequestInit = {}): Promise<Response | null> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'follow' });
  } catch (e) {
    const refused = findOukError(e, 'AIRGAP_VIOLATION');
    if (refused) {
      throw new OukError(
        'AIRGAP_VIOLATION',
        `air-gap mode (STELLA_AIRGAP=true) does not fetch ${url}: ${refused.message.replace(/^air-gap mode \(STELLA_AIRGAP=true\) /, '')}. Copy the kit across the gap and import the file, or drop it into the bucket`,
        { cause: e },
      );
    }
    throw new OukError('INPUT_NOT_FOUND', `cannot reach ${url} (${(e as Error).message}): check the mirror address`, { cause: e });
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok && res.status !== 206) {
    await res.body?.cancel();
    throw new OukError('INPUT_NOT_FOUND', `${url} answered HTTP ${res.status}`);
  }
  return res;
}

function webToNode(res: Response): Readable {
  return Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
}

/** The manifest from the start of the tarball (unverified: used for sizes only; verify checks everything). */
async function readManifestOf(src: Source): Promise<Manifest | null> {
  try {
    if (!src.isUrl) return parseManifest(await peekManifest(fs.createReadStream(src.name)));
    const res = await fetchOk(src.name, { headers: { range: 'bytes=0-4194303' } });
    if (!res?.body) return null;
    return parseManifest(await peekManifest(webToNode(res)));
  } catch (e) {
    if (e instanceof OukError && e.code === 'INPUT_NOT_FOUND') throw e;
    return null;
  }
}

// ---- preflight ------------------------------------------------------------------

async function preflight(p: CliPipeline, manifest: Manifest, tarballSize: number): Promise<SpaceCheck> {
  const storeDir = isLoopbackUrl(p.config.s3Endpoint) ? devPaths(p.env).s3Dir : null;
  const storeFree = storeDir && fs.existsSync(storeDir) ? await freeBytes(storeDir) : null;
  const dataDir = await localDataDirectory(p.pool, p.config.databaseUrl);
  const databaseFree = dataDir ? await freeBytes(dataDir) : null;
  return checkSpace(spaceNeeded(manifest, tarballSize), { storeDir, storeFree, dataDir, databaseFree });
}

// ---- upload -----------------------------------------------------------------------

interface Say {
  info(line: string): void;
}

async function uploadSmall(p: CliPipeline, src: Source, suffix: string, say: Say): Promise<boolean> {
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

async function uploadTarball(p: CliPipeline, src: Source, bars: boolean): Promise<UploadResult> {
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

// ---- following the flow ---------------------------------------------------------

export interface FollowResult {
  record: ImportRecord;
  stages: Record<StageName, { state: string; progress: unknown }>;
}

const LIFTED_BY: Record<string, 'allowDowngrade' | 'force'> = { DOWNGRADE_REFUSED: 'allowDowngrade', BUNDLE_EXPIRED: 'force' };

function failedStage(rec: ImportRecord): StageName | null {
  return STAGES.find((s) => rec.stages[s]?.state === 'failed') ?? null;
}

export function importFailure(rec: ImportRecord): OukError {
  const code = (rec.errorCode && rec.errorCode in EXIT_CODES ? rec.errorCode : 'IMPORT_FAILED') as ErrorCode;
  const stage = failedStage(rec) ?? 'import';
  return new OukError(code, `${stage} failed for import ${rec.id} (${rec.objectKey}): ${rec.error ?? 'no reason recorded'}`);
}

interface Bars {
  update(stage: StageName, state: string, progress: unknown): void;
  stop(): void;
}

function progressOf(p: unknown): { done: number; total: number; unit: string } | null {
  if (!p || typeof p !== 'object') return null;
  const o = p as { done?: unknown; total?: unknown; unit?: unknown };
  if (typeof o.done !== 'number') return null;
  return { done: o.done, total: typeof o.total === 'number' && o.total > 0 ? o.total : o.done, unit: typeof o.unit === 'string' ? o.unit : '' };
}

function stageBars(tty: boolean): Bars {
  const last = new Map<StageName, string>();
  if (!tty) {
    return {
      update(stage, state) {
        if (last.get(stage) === state) return;
        last.set(stage, state);
        process.stderr.write(`${stage}: ${state}\n`);
      },
      stop: () => undefined,
    };
  }
  const multi = new cliProgress.MultiBar(
    { format: '{stage} [{bar}] {percentage}% | {state} {detail}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<StageName, cliProgress.SingleBar>();
  for (const s of STAGES) bars.set(s, multi.create(1, 0, { stage: s.padEnd(8), state: 'waiting', detail: '' }));
  return {
    update(stage, state, progress) {
      const bar = bars.get(stage)!;
      const p = progressOf(progress);
      if (state === 'done' || state === 'completed') {
        bar.setTotal(1);
        bar.update(1, { state: 'done', detail: '' });
      } else if (p) {
        bar.setTotal(p.total);
        bar.update(p.done, { state, detail: `${p.done}/${p.total} ${p.unit}` });
      } else bar.update(0, { state, detail: '' });
    },
    stop: () => multi.stop(),
  };
}

/** Polls the import record and its jobs until it is active or failed (or the timeout). */
export async function followImport(p: CliPipeline, importId: string, opts: { tty: boolean; timeoutSeconds: number; flags?: { allowDowngrade?: boolean; force?: boolean } }): Promise<FollowResult> {
  const bars = stageBars(opts.tty);
  const end = Date.now() + opts.timeoutSeconds * 1000;
  let retriedForFlags = false;
  let hinted = false;
  const started = Date.now();
  try {
    for (;;) {
      const rec = await getImport(p.pool, importId);
      if (!rec) throw new OukError('IMPORT_NOT_FOUND', `import ${importId} disappeared`);
      const stages = {} as FollowResult['stages'];
      for (const s of STAGES) {
        const job = await p.queues.queues[s].getJob(jobIdFor(importId, s));
        const recState = rec.stages[s]?.state;
        const jobState = job ? await job.getState() : undefined;
        const state = recState === 'done' ? 'done' : recState === 'failed' ? 'failed' : (jobState ?? recState ?? 'waiting');
        stages[s] = { state, progress: job?.progress ?? null };
        bars.update(s, state === 'waiting-children' ? 'waiting' : state, job?.progress);
      }
      if (rec.stages.activate?.state === 'done') return { record: rec, stages };
      // A stage waiting a while with nobody to run it: say so once (the CLI keeps waiting).
      const pending = STAGES.find((s) => stages[s].state === 'waiting');
      if (pending && !hinted && Date.now() - started > 10_000) {
        hinted = true;
        if ((await p.queues.queues[pending].getWorkersCount().catch(() => 1)) === 0) {
          process.stderr.write(`note: no worker is serving the ${pending} queue (prefix ${p.queues.prefix}): start one (npm run dev:up, or node --import tsx queue/worker-main.ts); the import continues when it runs\n`);
        }
      }
      if (rec.state === 'failed') {
        // A refusal our flags lift may have raced with the flags being stored: retry it once.
        const flag = rec.errorCode ? LIFTED_BY[rec.errorCode] : undefined;
        if (!retriedForFlags && flag && opts.flags?.[flag] && rec[flag]) {
          retriedForFlags = true;
          await retryImport(p.deps, importId);
        } else {
          // Give a retry BullMQ still has in hand a moment to show up.
          return { record: rec, stages };
        }
      }
      if (Date.now() > end) {
        throw new OukError('IMPORT_FAILED', `import ${importId} is still running after ${opts.timeoutSeconds} s (now ${rec.state}); follow it with \`stella ouk status\``);
      }
      await sleep(300);
    }
  } finally {
    bars.stop();
  }
}

export function stageSummary(rec: ImportRecord): Record<string, unknown> {
  return Object.fromEntries(STAGES.map((s) => [s, rec.stages[s] ?? null]));
}

// ---- the command -------------------------------------------------------------------

interface ImportOptions {
  allowDowngrade?: boolean;
  force?: boolean;
  wait: boolean;
  json?: boolean;
  timeout: number;
}

export async function runImport(arg: string, opts: ImportOptions): Promise<number> {
  const src = sourceOf(arg);
  if (!src.isUrl && !fs.existsSync(arg)) throw new OukError('INPUT_NOT_FOUND', `${arg} does not exist`);
  const tty = Boolean(process.stderr.isTTY) && !opts.json;
  const say: Say = { info: (line) => process.stderr.write(`${line}\n`) };
  const p = await openCliPipeline();
  try {
    try {
      if (!(await p.store.bucketExists(p.config.bucket))) {
        throw new OukError('STORE_UNAVAILABLE', `bucket ${p.config.bucket} does not exist on ${p.config.s3Endpoint}: create it (npm run dev:up does locally) or set OUK_BUCKET`);
      }
    } catch (e) {
      if (e instanceof OukError) throw e;
      throw storeUnavailable(e);
    }

    const manifest = await readManifestOf(src);
    if (manifest) {
      const size = src.isUrl ? 0 : fs.statSync(src.name).size;
      const check = await preflight(p, manifest, size);
      for (const n of check.notes) say.info(`preflight: ${n}`);
      say.info(`bundle ${manifest.bundleVersion} (${manifest.kind}), ${manifest.members.length} members`);
    } else {
      say.info('preflight: could not read the manifest ahead of the upload; space not checked (verify will still check everything)');
    }

    if (!(await uploadSmall(p, src, '.sig', say))) {
      say.info(`warning: no ${src.key}.sig beside the tarball: the import waits for ${src.key}.sig to appear in bucket ${p.config.bucket}`);
    }
    await uploadSmall(p, src, '.sigstore.json', say);
    const up = await uploadTarball(p, src, tty);
    say.info(`uploaded ${src.key} (${up.size} bytes) to bucket ${p.config.bucket}`);

    const flags = { allowDowngrade: opts.allowDowngrade, force: opts.force };
    const ing = await ingestObject(p.deps, { bucket: p.config.bucket, key: src.key, etag: up.etag, size: up.size }, flags);
    const before = await getImport(p.pool, ing.importId);
    if (!ing.created && before?.state === 'failed' && !ing.retried) {
      say.info(`this bundle failed before (${before.errorCode}); retrying it from its failed stage`);
      await retryImport(p.deps, ing.importId);
    }
    say.info(`import ${ing.importId}${ing.created ? '' : ' (this object was seen before)'}`);
    if (!opts.wait) {
      process.stdout.write(opts.json ? `${JSON.stringify({ importId: ing.importId, key: src.key, state: before?.state ?? 'queued' })}\n` : `${ing.importId}\n`);
      return 0;
    }

    const done = await followImport(p, ing.importId, { tty, timeoutSeconds: opts.timeout, flags });
    const rec = done.record;
    if (rec.stages.activate?.state !== 'done') throw importFailure(rec);
    const already = !ing.created && before?.stages.activate?.state === 'done';
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ importId: rec.id, version: rec.version, kind: rec.kind, state: rec.state, already, stages: stageSummary(rec) }, null, 2)}\n`);
    } else {
      if (already && rec.state !== 'active') say.info(`note: this bundle was imported before and is now ${rec.state}`);
      process.stdout.write(`activated ${rec.version}\n`);
    }
    return 0;
  } finally {
    await p.close();
  }
}

export function registerOukImport(ouk: Command): void {
  ouk
    .command('import')
    .description('upload a bundle (FILE or http(s) URL) with its signature files and follow verify → unpack → load → activate')
    .argument('<file-or-url>', 'the bundle tarball (*.tar.gz), a path or an intranet mirror URL')
    .option('--allow-downgrade', 'accept a bundle not newer than the active DB', false)
    .option('--force', 'accept an expired bundle', false)
    .option('--no-wait', 'return once the import is queued (prints its id)')
    .option('--json', 'machine-readable result on stdout', false)
    .option('--timeout <seconds>', 'give up following after this long', (v) => Number.parseInt(v, 10), 3600)
    .action(async (arg: string, opts: ImportOptions) => {
      process.exitCode = await runImport(arg, opts);
    });
}
