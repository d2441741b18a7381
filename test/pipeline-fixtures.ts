/**
 * Shared set-up for the pipeline tests (test/pipeline*.test.ts): a database,
 * an s3rver with a bucket, a signing key pair the host trusts, signed synthetic
 * bundles, and stage contexts — all on the real services, isolated per file.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { loadTrustedKeys, generateKeyPair } from '../signing/index.ts';
import { writeSyntheticBundle, type SyntheticBundle, type SyntheticOptions } from './fixtures/synthetic-bundle.ts';
import type { StageContext, StagePayload, StageProgress } from '../functions/context.ts';
import { uploadStream } from '../infra/store.ts';
import { importIdFor } from '../queue/identity.ts';
import { recordImport, type IngestFlags } from '../queue/ingest.ts';
import type { ActivateResult } from '../functions/activate.ts';
import { STAGES } from '../lib/stages.ts';
import { STAGE_FUNCTIONS } from '../queue/workers.ts';
import { pipelineSettings, type Config, type PipelineSettings } from '../lib/config.ts';
import { childBaseEnv, createTestDatabase, startTestS3, testConfig, tmpDir, type TestDatabase, type TestRedisPrefix, type TestS3, type TestS3Options } from './helpers/services.ts';

export interface PipelineFixture {
  db: TestDatabase;
  pool: Pool;
  s3: TestS3;
  dir: string;
  privateKey: string;
  publicKey: string;
  logger: Logger;
  close(): Promise<void>;
}

export async function pipelineFixture(tag: string, s3opts: TestS3Options = {}): Promise<PipelineFixture> {
  const db = await createTestDatabase(tag);
  const pool = createPool(db.url, 8);
  await migrate(pool);
  const s3 = await startTestS3(tag, s3opts);
  const dir = tmpDir(tag);
  const kp = await generateKeyPair();
  const privateKey = path.join(dir, 'cosign.key');
  const publicKey = path.join(dir, 'cosign.pub');
  fs.writeFileSync(privateKey, kp.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(publicKey, kp.publicKeyPem);
  const logger = createLogger(`test-${tag}`, { level: process.env.LOG_LEVEL ?? 'silent' });
  return {
    db,
    pool,
    s3,
    dir,
    privateKey,
    publicKey,
    logger,
    async close() {
      await s3.close().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await db.drop().catch(() => undefined);
    },
  };
}

/** Short retries and lock times, so failure paths finish in seconds. */
export const FAST_RETRIES = {
  OUK_VERIFY_ATTEMPTS: '2',
  OUK_VERIFY_BACKOFF_MS: '100',
  OUK_STAGE_ATTEMPTS: '2',
  OUK_STAGE_BACKOFF_MS: '100',
} as const;

export function fastSettings(overrides: Record<string, string> = {}): PipelineSettings {
  return pipelineSettings({ ...FAST_RETRIES, OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000', ...overrides });
}

/** The environment of a `stella` or worker child process pointed at this fixture. */
export function fixtureEnv(fx: PipelineFixture, redis: TestRedisPrefix, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return childBaseEnv({
    REDIS_URL: redis.redisUrl,
    OUK_QUEUE_PREFIX: redis.prefix,
    DATABASE_URL: fx.db.url,
    S3_ENDPOINT: fx.s3.endpoint,
    OUK_BUCKET: fx.s3.bucket,
    STELLA_STATE_DIR: path.join(fx.dir, 'state'),
    ...extra,
  });
}

/** Polls `fn` until it returns something truthy; fails the test naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The configuration of a pipeline on this fixture: its database, bucket, trusted key and Redis prefix. */
export function fixtureConfig(fx: PipelineFixture, redis: TestRedisPrefix, overrides: Partial<Config> = {}): Config {
  return testConfig({
    redisUrl: redis.redisUrl,
    queuePrefix: redis.prefix,
    databaseUrl: fx.db.url,
    bucket: fx.s3.bucket,
    store: fx.s3.storeConfig,
    trustedKeys: [fx.publicKey],
    ...overrides,
  });
}

/**
 * Test bundles are dated by their version tag (2026-11-20 …) but stay valid
 * until 2126, so no test depends on the day it runs: the pipeline checks
 * `expires` against the real clock (or faketime's). Tests of expiry pass an
 * `expires` relative to the clock instead (see `expiredTimes`).
 */
export const TEST_BUNDLE_EXPIRES = '2126-01-01T00:00:00Z';

/**
 * And created before any clock a test runs at (the faketime runs start at
 * 2026-01-01), whatever their version: a kit created after the site's clock is
 * refused (BUNDLE_FROM_FUTURE). Tests of that pass a `created` of their own.
 */
export const TEST_BUNDLE_CREATED = '2025-12-01T00:00:00Z';

/** `created` and `expires` of a kit that expired a day before `now`. */
export function expiredTimes(now = new Date()): { created: string; expires: string } {
  const day = 86_400_000;
  const t = Math.floor(now.getTime() / 1000) * 1000;
  return { created: new Date(t - 60 * day).toISOString(), expires: new Date(t - day).toISOString() };
}

/** A signed synthetic bundle in the fixture's directory. */
export async function makeBundle(fx: PipelineFixture, name: string, opts: SyntheticOptions, sign = true): Promise<SyntheticBundle> {
  return writeSyntheticBundle(path.join(fx.dir, name), { expires: TEST_BUNDLE_EXPIRES, created: TEST_BUNDLE_CREATED, ...opts }, sign ? fx.privateKey : undefined);
}

/** Uploads a file to the bucket (streamed, known size); returns its ETag. */
export async function putFile(fx: Pick<PipelineFixture, 's3'>, file: string, key: string): Promise<string> {
  const size = fs.statSync(file).size;
  const r = await uploadStream(fx.s3.store, fx.s3.bucket, key, fs.createReadStream(file), size);
  return r.etag;
}

/** Uploads `<file>.sig` (when `sig`) and then the tarball; returns the stage payload for it. */
export async function putBundle(fx: PipelineFixture, file: string, key: string, sig = true): Promise<StagePayload & { size: number }> {
  if (sig) await putFile(fx, `${file}.sig`, `${key}.sig`);
  const etag = await putFile(fx, file, key);
  return { importId: importIdFor(fx.s3.bucket, key, etag), bucket: fx.s3.bucket, key, etag, size: fs.statSync(file).size };
}

/** The import record for an uploaded bundle, as ingest writes it (queue/ingest.ts recordImport), with the operator's flags. */
export async function registerImport(fx: PipelineFixture, p: StagePayload & { size: number }, flags: IngestFlags = {}): Promise<void> {
  await recordImport(fx.pool, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size }, flags);
}

/** Every stage in flow order (lib/stages.ts), the product's stage functions on one context; returns activate's result. */
export async function runStages(p: StagePayload, ctx: StageContext): Promise<ActivateResult> {
  let activated: ActivateResult | undefined;
  for (const stage of STAGES) {
    const result = await STAGE_FUNCTIONS[stage](p, ctx);
    if (stage === 'activate') activated = result as ActivateResult;
  }
  return activated!;
}

export interface TestContext extends StageContext {
  reports: StageProgress[];
}

export function stageContext(fx: PipelineFixture, over: Partial<StageContext> = {}): TestContext {
  const reports: StageProgress[] = [];
  return {
    store: fx.s3.store,
    pool: fx.pool,
    config: { bucket: fx.s3.bucket, trustedKeys: [fx.publicKey] },
    trustedKeys: () => loadTrustedKeys([fx.publicKey]),
    logger: fx.logger,
    progress: (p) => reports.push(p),
    attempt: { number: 1, max: 3 },
    now: () => new Date(),
    reports,
    ...over,
  };
}

/** Rows per table of the active DB, read in one snapshot. */
export async function activeCounts(pool: Pool): Promise<{ version: string; counts: Record<string, number> }> {
  const { withActiveSnapshot, ident } = await import('../infra/db.ts');
  return withActiveSnapshot(pool, async (client, active) => {
    const counts: Record<string, number> = {};
    for (const t of ['advisories', 'aliases', 'affected', 'cpes']) {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(active.schema)}.${ident(t)}`);
      counts[t] = Number(r.rows[0].n);
    }
    return { version: active.version, counts };
  });
}
