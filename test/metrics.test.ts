/**
 * Prometheus metrics: stage durations and failures of real BullMQ workers, seen
 * through BullMQ's event stream (queue/metrics-hooks.ts), the active DB read from real PostgreSQL at scrape
 * time, scans by mode, and the default process metrics, served at /metrics.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { metricsPlugin } from '../api/metrics.ts';
import { countScan, failureReason, registry } from '../lib/metrics.ts';
import { attachWorkerLogging, importIdOf, isFinalFailure, watchQueueMetrics, type QueueMetricsWatcher } from '../queue/metrics-hooks.ts';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import { OukError } from '../lib/errors.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createTestDatabase, hoursAgo, testRedisPrefix, type TestDatabase, type TestRedisPrefix } from './helpers/services.ts';

let db: TestDatabase;
let redis: TestRedisPrefix;
let pool: Pool;
let app: FastifyInstance;
let watcher: QueueMetricsWatcher;
const queues: Queue[] = [];
const logLines: Record<string, unknown>[] = [];
const logger = createLogger('worker', {
  destination: new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  }),
});

before(async () => {
  db = await createTestDatabase('metrics');
  redis = testRedisPrefix('metrics');
  pool = createPool(db.url, 2);
  await migrate(pool);
  for (const name of ['verify', 'unpack', 'load', 'activate']) queues.push(new Queue(name, { connection: { url: redis.redisUrl }, prefix: redis.prefix }));
  watcher = await watchQueueMetrics({ connection: { url: redis.redisUrl }, prefix: redis.prefix, queues, pool });
  await watcher.ready();
  app = Fastify();
  await app.register(metricsPlugin, { pool, queues, freshness: loadConfig({ OUK_MAX_AGE: 'nvd:3d,osv:2d' }).freshness });
  await app.ready();
});

after(async () => {
  await app?.close();
  await watcher?.close();
  for (const q of queues) await q.close();
  await pool?.end();
  await db?.drop();
  await redis?.cleanup();
});

/** Waits until `series` reaches `value` (the metrics follow the event stream, a moment behind the workers). */
async function scrapeUntil(series: string, value: number): Promise<string> {
  for (let i = 0; ; i++) {
    const body = await scrape();
    if (sample(body, series) === value || i >= 100) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function scrape(): Promise<string> {
  const r = await app.inject({ url: '/metrics' });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
  return r.body;
}

/** The value of one sample line, e.g. sample(body, 'ouk_x_total{stage="load"}'); null when absent. */
function sample(body: string, series: string): number | null {
  for (const line of body.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return null;
}

/** Runs jobs through a real Worker with the metrics hooks until each completed or failed for good. */
async function runStage(stage: string, jobs: { id: string; attempts: number }[], processor: (job: Job) => Promise<unknown>): Promise<void> {
  const pending = new Set(jobs.map((j) => j.id));
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const worker = new Worker(stage, processor, { connection: { url: redis.redisUrl }, prefix: redis.prefix, autorun: false });
  attachWorkerLogging(worker, logger);
  const settle = (job: Job | undefined, final: boolean): void => {
    if (job?.id && final) pending.delete(job.id);
    if (pending.size === 0) done();
  };
  worker.on('completed', (job) => settle(job, true));
  worker.on('failed', (job, err) => settle(job, job ? isFinalFailure(job, err) : false));
  const q = queues.find((x) => x.name === stage);
  assert.ok(q);
  for (const j of jobs) await q.add(stage, { importId: j.id.replace(`-${stage}`, '') }, { jobId: j.id, attempts: j.attempts, backoff: { type: 'fixed', delay: 10 } });
  void worker.run();
  await finished;
  await worker.close();
}

test('failure reasons are bounded error codes', () => {
  assert.equal(failureReason(new OukError('SIGNATURE_MISSING', 'x')), 'SIGNATURE_MISSING');
  assert.equal(failureReason(new Error('error[MEMBER_CHECKSUM_MISMATCH]: bad member')), 'MEMBER_CHECKSUM_MISMATCH');
  assert.equal(failureReason(new Error('DIGEST_CHANGED: object replaced')), 'DIGEST_CHANGED');
  assert.equal(failureReason(new Error('NOT_A_CODE: whatever')), 'INTERNAL');
  assert.equal(failureReason(new Error('job stalled more than allowable limit')), 'STALLED');
  assert.equal(importIdOf({ id: 'abc-def-load', data: {}, queueName: 'load' }), 'abc-def');
});

test('stage durations, retries and failures come from the workers; active DB and scans at scrape time', async () => {
  const before = await scrape();
  assert.equal(sample(before, 'ouk_active_db_stale'), 1); // nothing active yet
  assert.doesNotMatch(before, /^ouk_active_db_(info|age_seconds|activated_timestamp_seconds)[{ ]/m);
  assert.match(before, /^process_cpu_user_seconds_total /m);
  assert.match(before, /^nodejs_heap_size_used_bytes /m);

  await runStage('load', [{ id: 'imp1-load', attempts: 1 }, { id: 'imp2-load', attempts: 1 }], async (job) => {
    await job.updateProgress({ rows: 5, total: 5 });
    return { rows: 5 };
  });
  // the pipeline records each stage's error code in the import record; the message itself has none
  await pool.query(
    `INSERT INTO ouk_meta.imports (id, bucket, object_key, etag, state, stages) VALUES ('imp3', 'b', 'k.tar.gz', 'e', 'verifying', $1)`,
    [JSON.stringify({ verify: { state: 'retrying', code: 'SIGNATURE_MISSING', error: 'no .sig yet' } })],
  );
  let attempt = 0;
  await runStage('verify', [{ id: 'imp3-verify', attempts: 3 }, { id: 'imp4-verify', attempts: 3 }], async (job) => {
    if (job.id === 'imp4-verify') throw new UnrecoverableError('MANIFEST_INVALID: manifest.json is not valid');
    attempt += 1;
    throw new OukError('SIGNATURE_MISSING', `no .sig yet (attempt ${attempt})`);
  });

  await scrapeUntil('ouk_import_stage_duration_seconds_count{stage="load"}', 2);
  await scrapeUntil('ouk_import_stage_failures_total{stage="verify",reason="MANIFEST_INVALID"}', 1);
  await scrapeUntil('ouk_import_stage_retries_total{stage="verify",reason="SIGNATURE_MISSING"}', 2);
  const body = await scrapeUntil('ouk_import_stage_failures_total{stage="verify",reason="SIGNATURE_MISSING"}', 1);
  assert.equal(sample(body, 'ouk_import_stage_duration_seconds_count{stage="load"}'), 2);
  assert.ok((sample(body, 'ouk_import_stage_duration_seconds_sum{stage="load"}') ?? -1) >= 0);
  assert.equal(sample(body, 'ouk_import_stage_duration_seconds_bucket{le="+Inf",stage="load"}'), 2);
  assert.equal(sample(body, 'ouk_import_stage_retries_total{stage="verify",reason="SIGNATURE_MISSING"}'), 2);
  assert.equal(sample(body, 'ouk_import_stage_failures_total{stage="verify",reason="SIGNATURE_MISSING"}'), 1);
  assert.equal(sample(body, 'ouk_import_stage_failures_total{stage="verify",reason="MANIFEST_INVALID"}'), 1);
  assert.equal(sample(body, 'ouk_queue_jobs{queue="verify",state="failed"}'), 2);
  assert.equal(sample(body, 'ouk_queue_jobs{queue="load",state="completed"}'), 2);

  // every hook line names its import
  const stageLines = logLines.filter((l) => typeof l.stage === 'string');
  assert.ok(stageLines.length >= 6);
  for (const l of stageLines) assert.match(String(l.importId), /^imp[1-4]$/);
  assert.ok(stageLines.some((l) => l.importId === 'imp3' && l.level === 'error' && l.reason === 'SIGNATURE_MISSING'));

  // the active DB, read from ouk_meta.active_db at scrape time, its feeds from its import's signed manifest
  const manifest = (nvd: Date, osv: Date) => JSON.stringify({ created: hoursAgo(4).toISOString(), feeds: [{ name: 'nvd', snapshot: nvd.toISOString(), records: 1, skipped: 0 }, { name: 'osv', snapshot: osv.toISOString(), records: 1, skipped: 0 }, { name: 'csaf', snapshot: hoursAgo(500).toISOString(), records: 1, skipped: 0 }] });
  await pool.query(`UPDATE ouk_meta.imports SET manifest = $1 WHERE id = 'imp3'`, [manifest(hoursAgo(5), hoursAgo(6))]);
  await pool.query(
    `UPDATE ouk_meta.active_db SET active_import = 'imp3', active_version = '2026.11.27', active_schema = 'ouk_db_imp3', activated_at = $1`,
    [hoursAgo(3)],
  );
  countScan('anonymous');
  countScan('anonymous', true);
  countScan('token');
  const active = await scrape();
  assert.equal(sample(active, 'ouk_active_db_info{version="2026.11.27"}'), 1);
  const age = sample(active, 'ouk_active_db_age_seconds{version="2026.11.27"}') ?? 0;
  assert.ok(age >= 3 * 3600 && age < 4 * 3600, `age ${age}`);
  assert.equal(sample(active, 'ouk_active_db_stale'), 0);
  const nvdAge = sample(active, 'ouk_feed_age_seconds{feed="nvd"}') ?? 0;
  assert.ok(nvdAge >= 5 * 3600 && nvdAge < 6 * 3600, `nvd age ${nvdAge}`);
  assert.equal(sample(active, 'ouk_feed_budget_seconds{feed="nvd"}'), 3 * 86400);
  assert.equal(sample(active, 'ouk_feed_budget_seconds{feed="csaf"}'), null, 'csaf has no budget');
  assert.ok((sample(active, 'ouk_feed_age_seconds{feed="csaf"}') ?? 0) >= 500 * 3600);
  assert.deepEqual(['nvd', 'osv', 'csaf'].map((f) => sample(active, `ouk_feed_stale{feed="${f}"}`)), [0, 0, 0], 'a feed without a budget is never stale');
  assert.equal(sample(active, 'ouk_clock_behind_seconds'), 0);
  assert.equal(sample(active, 'ouk_scans_total{mode="anonymous",over_quota="false"}'), 1);
  assert.equal(sample(active, 'ouk_scans_total{mode="anonymous",over_quota="true"}'), 1);
  assert.equal(sample(active, 'ouk_scans_total{mode="token",over_quota="false"}'), 1);

  // osv's snapshot 50 h old: over its 2d budget
  await pool.query(`UPDATE ouk_meta.imports SET manifest = $1 WHERE id = 'imp3'`, [manifest(hoursAgo(5), hoursAgo(50))]);
  await pool.query(`UPDATE ouk_meta.active_db SET active_version = '2026.11.20', activated_at = $1`, [hoursAgo(72)]);
  const old = await scrape();
  assert.equal(sample(old, 'ouk_active_db_info{version="2026.11.20"}'), 1);
  assert.equal(sample(old, 'ouk_active_db_info{version="2026.11.27"}'), null, 'the previous version must leave the gauge');
  assert.equal(sample(old, 'ouk_active_db_stale'), 1);
  assert.equal(sample(old, 'ouk_feed_stale{feed="osv"}'), 1);
  assert.equal(sample(old, 'ouk_feed_stale{feed="nvd"}'), 0);
  assert.ok(registry.getSingleMetric('ouk_import_stage_duration_seconds'));
});
