/**
 * A worker killed in the middle of load (SIGKILL: no cleanup, no goodbye),
 * then a new worker: the stalled load job runs again, drops the half-built
 * schema (no `done` record, not live) and builds it again, and the import
 * completes with the whole DB, every row once. The workers are real processes (queue/worker-main.ts).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { getImport, type ImportRecord } from '../infra/import-records/index.ts';
import { schemaFor } from '../functions/context.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { pipelineSettings } from '../lib/config.ts';
import { registry } from '../lib/metrics.ts';
import { watchQueueMetrics } from '../queue/metrics-hooks.ts';
import { activeCounts, makeBundle, pipelineFixture, putBundle, type PipelineFixture, fixtureEnv } from './pipeline-fixtures.ts';
import { repoRoot, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
const children = new Set<ChildProcess>();

const workerEnv = (): NodeJS.ProcessEnv => fixtureEnv(fx, redis, {
  S3_ACCESS_KEY: 'S3RVER',
  S3_SECRET_KEY: 'S3RVER',
  OUK_TRUSTED_KEYS: fx.publicKey,
  OUK_LOCK_MS: '2000',
  OUK_STALLED_MS: '1000',
  OUK_STAGE_ATTEMPTS: '3',
  OUK_STAGE_BACKOFF_MS: '200',
  OUK_RECONCILE_SECONDS: '3600',
  LOG_LEVEL: 'warn',
});

function startWorker(tag: string): ChildProcess {
  const log = fs.openSync(path.join(fx.dir, `${tag}.log`), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', 'queue/worker-main.ts'], { cwd: repoRoot, env: workerEnv(), stdio: ['ignore', log, log] });
  fs.closeSync(log);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

before(async () => {
  fx = await pipelineFixture('pipeline-crash');
  redis = testRedisPrefix('pipeline-crash');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; worker logs in ${fx.dir}`);
    await sleep(everyMs);
  }
}

test('a worker SIGKILLed mid-load: a new worker completes the import, and the DB is whole', async () => {
  const b = await makeBundle(fx, 'crash.tar.gz', { version: '2026-11-20', advisories: 20_000 });
  const p = await putBundle(fx, b.path, 'stella-ouk-crash.tar.gz');
  const settings = pipelineSettings({ OUK_STAGE_ATTEMPTS: '3', OUK_STAGE_BACKOFF_MS: '200' });
  // What /metrics reports, fed from BullMQ's event stream as in the API process.
  const watcher = await watchQueueMetrics({ connection: { url: redis.redisUrl }, prefix: redis.prefix, queues: Object.values(queues.queues), pool: fx.pool });
  const stalls = async () => ((await registry.getSingleMetric('ouk_import_stage_stalls_total')?.get())?.values ?? []).find((v) => v.labels.stage === 'load')?.value ?? 0;
  const stallsBefore = await stalls();
  await ingestObject({ pool: fx.pool, queues, settings }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });

  const first = startWorker('worker-1');
  // Kill it once load is streaming rows into PostgreSQL.
  await waitFor(
    'load to be copying rows',
    async () => {
      const job = await queues.queues.load.getJob(`${p.importId}-load`);
      const prog = job?.progress as { done?: number } | undefined;
      return (await job?.getState()) === 'active' && prog && (prog.done ?? 0) > 0;
    },
    60_000,
    10,
  );
  first.kill('SIGKILL');
  await once(first, 'exit');
  const mid = (await getImport(fx.pool, p.importId)) as ImportRecord;
  assert.notEqual(mid.stages.load?.state, 'done', 'the worker died before load committed (else this test proves nothing)');
  // the load is not one transaction: a half-built schema may be there, but nothing points at it
  assert.notEqual((await readActivePointer(fx.pool)).activeSchema, schemaFor(p.importId), 'the half-built schema is not live');

  const second = startWorker('worker-2');
  const rec = await waitFor(
    'the import to finish',
    async () => {
      const r = await getImport(fx.pool, p.importId);
      return r && (r.state === 'active' || r.state === 'failed') ? r : null;
    },
    90_000,
  );
  assert.equal(rec.state, 'active', `${rec.errorCode}: ${rec.error}`);
  await waitFor('the stall to be counted', async () => (await stalls()) > stallsBefore, 10_000);
  assert.equal((await stalls()) - stallsBefore, 1, 'ouk_import_stage_stalls_total{stage="load"} counts the dead worker\'s job');
  await watcher.close();
  const active = await activeCounts(fx.pool);
  assert.deepEqual(active.counts, b.counts, 'every row of every table is there');
  const pk = await fx.pool.query(`SELECT count(*)::int AS n FROM (SELECT advisory_id FROM ${schemaFor(p.importId)}.advisories GROUP BY 1 HAVING count(*) > 1) d`);
  assert.equal(pk.rows[0].n, 0, 'no row was loaded twice');

  second.kill('SIGTERM');
  const [code] = (await once(second, 'exit')) as [number | null];
  assert.equal(code, 0, 'the worker stops cleanly on SIGTERM');
});
