/**
 * A bad day for the queue (a wiped Redis, a starved reconciler), against real processes: a worker process (with the
 * re-scan worker, as compose runs it) on a Redis of this file's own
 * (test/helpers/private-services.ts: FLUSHALL there disturbs no other test),
 * this file's database and s3rver (no webhook: only the reconciler finds what
 * is dropped), the `stella` CLI.
 *
 *   - FLUSHALL in the middle of a load: the reconcile and gc schedulers come
 *     back within seconds, with no restart; the load finishes in PostgreSQL
 *     while its job is gone ("Missing key for job"), and the reconciler
 *     resumes the import, which activates once;
 *   - `stella ouk jobs` hints at an unfinished import whose stage has no live
 *     job;
 *   - re-scan planning runs after the switch, in its own job: with the
 *     planning held (ouk_meta.sboms locked by this test), `stella ouk import`
 *     says "activated" anyway, the plan job waits, reconcile passes go on,
 *     and the stored SBOM is re-scanned once the lock is released.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { readActivePointer } from '../infra/active-db.ts';
import { latestActivation } from '../infra/activations.ts';
import { recordImport } from '../queue/ingest.ts';
import { MAINTENANCE_QUEUE, RECONCILE_QUEUE, RESCAN_QUEUE } from '../queue/queues.ts';
import { planJobId } from '../queue/rescan.ts';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { repoRoot, runStella, sharedDir } from './helpers/services.ts';
import { startPrivateRedis, type PrivateRedis } from './helpers/private-services.ts';
import { fixtureEnv, pipelineFixture, putBundle, TEST_BUNDLE_EXPIRES, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const PREFIX = 'ouk';
let fx: PipelineFixture;
let redis: PrivateRedis;
let worker: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;

function workerLog(): string {
  const f = path.join(fx.dir, 'worker.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
}

async function stopWorker(): Promise<void> {
  const child = worker;
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, sleep(20_000).then(() => child.kill('SIGKILL'))]);
}

async function kit(version: string, advisories: number, seed: number): Promise<string> {
  const file = path.join(fx.dir, `stella-ouk-${version}.tar.gz`);
  await writeSyntheticBundle(file, { version, advisories, seed, expires: TEST_BUNDLE_EXPIRES }, fx.privateKey);
  return file;
}

async function activeVersion(): Promise<string | null> {
  return (await readActivePointer(fx.pool)).activeVersion;
}

async function untilActive(version: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(`${version} to become the active DB`, async () => (await activeVersion().catch(() => null)) === version, timeoutMs, 250).catch((e: Error) => {
    throw new Error(`${e.message}\n${workerLog().slice(-4000)}`);
  });
}

function queue(name: string, connection: Redis): Queue {
  const q = new Queue(name, { connection, prefix: PREFIX });
  q.on('error', () => undefined);
  return q;
}

before(async () => {
  fx = await pipelineFixture('queue-faults');
  redis = await startPrivateRedis();
  env = fixtureEnv(fx, { redisUrl: redis.url, prefix: PREFIX, cleanup: async () => undefined }, {
    OUK_TRUSTED_KEYS: fx.publicKey,
    STELLA_AIRGAP: 'true',
    OUK_RECONCILE_SECONDS: '1',
    OUK_LOCK_MS: '4000',
    OUK_STALLED_MS: '1000',
    OUK_STAGE_ATTEMPTS: '8',
    OUK_STAGE_BACKOFF_MS: '500',
    OUK_VERIFY_ATTEMPTS: '8',
    OUK_VERIFY_BACKOFF_MS: '500',
    LOG_LEVEL: 'info',
  });
  const log = fs.openSync(path.join(fx.dir, 'worker.log'), 'a');
  worker = spawn(process.execPath, ['--import', 'tsx', 'queue/worker-main.ts'], { cwd: repoRoot, env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
});

after(async () => {
  await stopWorker();
  await redis?.close();
  await fx?.close();
});

describe('Redis loses everything (FLUSHALL) in the middle of a load', () => {
  test('the schedulers come back within seconds without a restart; the import whose job vanished is resumed and activates once', async () => {
    const file = await kit('2026-11-02', 25_000, 2);
    await putBundle(fx, file, path.basename(file)); // no webhook: the reconciler finds it
    await waitFor(
      'the load to be copying rows',
      async () => (await fx.pool.query<{ state: string | null }>(`SELECT stages -> 'load' ->> 'state' AS state FROM ouk_meta.imports WHERE version = '2026-11-02'`)).rows[0]?.state === 'running',
      120_000,
      20,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${workerLog().slice(-4000)}`);
    });
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const reconcile = queue(RECONCILE_QUEUE, admin);
    const gc = queue(MAINTENANCE_QUEUE, admin);
    try {
      await admin.flushall();
      const flushed = Date.now();
      // (not asserted missing here: the worker's re-ensure timer may already have put it back; the log line below proves it was missing)
      await waitFor('the reconcile and gc schedulers to be back', async () => (await reconcile.getJobScheduler('reconcile')) && (await gc.getJobScheduler('gc')), 20_000, 100);
      const back = (Date.now() - flushed) / 1000;
      assert.ok(back < 15, `the schedulers came back after ${back} s`);
      await untilActive('2026-11-02');
      const n = await fx.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ouk_meta.activations WHERE version = '2026-11-02' AND action = 'activate'`);
      assert.equal(Number(n.rows[0]!.n), 1, 'activated once');
      // and the reconciler keeps running on the re-created scheduler
      const seen = (await reconcile.getJobs(['completed'], 0, 200)).filter((j) => j.finishedOn && j.finishedOn > flushed);
      assert.ok(seen.length > 0, 'reconcile passes ran after the flush');
      assert.match(workerLog(), /"msg":"maintenance schedulers were missing \(Redis lost them\?\): re-created"/);
      assert.match(workerLog(), /"msg":"reconciler: import had no live job \(Redis lost it\?\); flow re-created from its first stage not done"/);
    } finally {
      await reconcile.close();
      await gc.close();
      admin.disconnect();
    }
  });
});

describe('re-scan planning runs after the switch, in its own job', () => {
  test('with the planning held, `stella ouk import` says activated; the plan job waits; reconcile goes on; the SBOM is re-scanned once released', async () => {
    assert.ok(await activeVersion(), 'a DB is active (the test before)');
    const sbom = path.join(sharedDir, 'sboms', 'juice-shop-v11.1.2-bom.json');
    const add = await runStella(['sbom', 'add', sbom, '--name', 'juice-shop'], { cwd: fx.dir, env });
    assert.equal(add.code, 0, add.stderr);
    const file = await kit('2026-11-03', 2_000, 3);

    // Planning reads ouk_meta.sboms: hold it (nothing else of an import touches it).
    const holder = await fx.pool.connect();
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const rescan = queue(RESCAN_QUEUE, admin);
    const reconcile = queue(RECONCILE_QUEUE, admin);
    let released = false;
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE ouk_meta.sboms IN ACCESS EXCLUSIVE MODE');
      const locked = Date.now();
      const r = await runStella(['ouk', 'import', file, '--timeout', '120'], { cwd: fx.dir, env });
      assert.equal(r.code, 0, `${r.stderr}\n${workerLog().slice(-3000)}`);
      assert.match(r.stdout, /activated 2026-11-03/);
      const act = (await latestActivation(fx.pool))!;
      assert.equal(act.version, '2026-11-03');
      const plan = await rescan.getJob(planJobId(act.seq));
      assert.ok(plan, 'the activation added its planning job');
      await waitFor('the planning job to be running (held by the lock), outside the activate job', async () => (await plan.getState()) === 'active', 20_000, 100);
      // the reconciler does not plan: its passes are not held by the lock
      await waitFor('a reconcile pass while the planning is held', async () => (await reconcile.getJobs(['completed'], 0, 100)).some((j) => (j.processedOn ?? 0) > locked), 20_000, 200);
      await holder.query('ROLLBACK');
      released = true;
      await waitFor(
        'the SBOM re-scanned at the new activation',
        async () => (await fx.pool.query('SELECT 1 FROM ouk_meta.sbom_results WHERE sbom = $1 AND activation_seq = $2', ['juice-shop', act.seq])).rowCount === 1,
        60_000,
        250,
      );
      assert.equal(await (await rescan.getJob(planJobId(act.seq)))!.getState(), 'completed');
    } finally {
      if (!released) await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await rescan.close();
      await reconcile.close();
      admin.disconnect();
    }
  });
});

describe('stella ouk jobs: an unfinished import with no live job', () => {
  test('hints that the reconciler resumes it, or `stella ouk retry`', async () => {
    await stopWorker(); // nothing resumes it while we look
    const rec = await recordImport(fx.pool, { bucket: fx.s3.bucket, key: 'stella-ouk-2026-11-09.tar.gz', etag: 'f'.repeat(32), size: 10 });
    await fx.pool.query(
      `UPDATE ouk_meta.imports SET state = 'loading', flow_added_at = now(), stages = '{"verify":{"state":"done"},"unpack":{"state":"done"},"load":{"state":"running","attempts":1}}'::jsonb WHERE id = $1`,
      [rec.record.id],
    );
    const r = await runStella(['ouk', 'jobs'], { cwd: fx.dir, env });
    assert.equal(r.code, 0, r.stderr);
    const block = r.stdout.split(/\n(?=\S)/).find((b) => b.startsWith(rec.record.id))!;
    assert.match(block, new RegExp(`^ {2}→ no live job: the reconciler resumes it, or run \`stella ouk retry ${rec.record.id}\`$`, 'm'));
    const activeBlock = r.stdout.split(/\n(?=\S)/).find((b) => /\bACTIVE\b/.test(b.split('\n')[0]!))!;
    assert.doesNotMatch(activeBlock, /no live job/, 'an active import has no hint');
    const json = await runStella(['ouk', 'jobs', '--json'], { cwd: fx.dir, env });
    const views = (JSON.parse(json.stdout) as { imports: Array<{ id: string; hint?: string }> }).imports;
    assert.match(views.find((v) => v.id === rec.record.id)?.hint ?? '', /^no live job/);
  });
});
