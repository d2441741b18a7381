/**
 * PostgreSQL is the record; the queue is derived from it. Against real Redis,
 * PostgreSQL and s3rver, with real BullMQ workers:
 *
 *  - a replayed stage (Retry on a completed job, as the dashboard offers) is a
 *    no-op, and the live DB schema is never dropped or rewritten;
 *  - an import stranded by lost Redis state resumes from its first stage not
 *    done — by `retry`, by the reconciler, or by importing the object again;
 *  - a failure a worker could not write (PostgreSQL away) is recorded by the
 *    reconciler;
 *  - an activation that finds its loaded DB gone sends the import back to load;
 *  - garbage collection removes what no import needs and keeps the rest;
 *  - importing a superseded kit again is refused, not reported as activated.
 *
 * Every test sets up its own workers and imports, so each can run alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UnrecoverableError, Worker } from 'bullmq';
import { collectGarbage } from '../functions/gc.ts';
import { planGc } from '../functions/gc.ts';
import { stagedPrefix } from '../functions/context.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { connect } from '../infra/db.ts';
import { dropSchema } from '../infra/db-schema.ts';
import { getImport, type ImportRecord } from '../infra/import-records.ts';
import { objectExists, putSmallObject } from '../infra/store.ts';
import { EXIT_CODES, isOukError } from '../lib/errors.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { reconcileOnce } from '../queue/reconciler.ts';
import { retryImport } from '../queue/retry.ts';
import { jobIdFor } from '../queue/identity.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import type { StageName } from '../functions/context.ts';
import { runStella, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, fixtureConfig, fixtureEnv, FAST_RETRIES, makeBundle, pipelineFixture, putBundle, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
const settings = fastSettings();
let running: RunningWorkers[] = [];

before(async () => {
  fx = await pipelineFixture('pipeline-integrity');
  redis = testRedisPrefix('pipeline-integrity');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
});

after(async () => {
  await stopWorkers();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});

function workers(stages?: StageName[]): RunningWorkers {
  const w = startWorkers(fixtureConfig(fx, redis), { pool: fx.pool, store: fx.s3.store, settings, logger: fx.logger, ...(stages ? { stages } : {}) });
  running.push(w);
  return w;
}

async function stopWorkers(): Promise<void> {
  await Promise.all(running.map((w) => w.close()));
  running = [];
}

const deps = () => ({ pool: fx.pool, queues, settings, logger: fx.logger });
const reconcilerDeps = () => ({ ...deps(), store: fx.s3.store, bucket: fx.s3.bucket });

async function rec(id: string): Promise<ImportRecord> {
  return (await getImport(fx.pool, id))!;
}

async function until(id: string, states: string[], what = states.join('|')): Promise<ImportRecord> {
  return waitFor(`import ${id} to be ${what}`, async () => {
    const r = await getImport(fx.pool, id);
    // an active import has settled once its images step (after activate) is done or failed too
    const settled = r && (r.state !== 'active' || ['done', 'failed'].includes(r.stages.images?.state ?? ''));
    return r && states.includes(r.state) && settled ? r : null;
  });
}

/** Puts a signed bundle of `version` into the bucket and ingests it (no webhook here). */
async function drop(version: string, advisories = 20): Promise<string> {
  const b = await makeBundle(fx, `integrity-${version}.tar.gz`, { version, advisories });
  const p = await putBundle(fx, b.path, `stella-ouk-${version}.tar.gz`);
  const r = await ingestObject(deps(), { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
  return r.importId;
}

async function importActive(version: string): Promise<string> {
  workers();
  const id = await drop(version);
  const r = await until(id, ['active', 'failed']);
  assert.equal(r.state, 'active', `${r.errorCode}: ${r.error}`);
  await stopWorkers();
  return id;
}

/** Deletes every queue key of this test's prefix: what a wiped or failed-over Redis leaves. */
async function wipeRedis(): Promise<void> {
  await redis.cleanup();
}

async function schemaOid(name: string): Promise<string | null> {
  return (await fx.pool.query<{ oid: string }>('SELECT oid::text FROM pg_namespace WHERE nspname = $1', [name])).rows[0]?.oid ?? null;
}

describe('integrity', () => {
  test('replaying a completed stage of the active import changes nothing; the live DB is never dropped', async () => {
    const id = await importActive('2026-11-10');
    const before = await rec(id);
    const pointer = await readActivePointer(fx.pool);
    assert.equal(pointer.activeImport, id);
    const oid = await schemaOid(pointer.activeSchema!);
    const activations = async () => Number((await fx.pool.query<{ n: string }>('SELECT count(*) AS n FROM ouk_meta.activations')).rows[0]!.n);
    const activationsBefore = await activations();

    workers();
    for (const stage of ['load', 'verify', 'unpack', 'activate'] as const) {
      const job = await queues.queues[stage].getJob(jobIdFor(id, stage));
      assert.ok(job, `${stage} job kept`);
      const finishedBefore = job.finishedOn;
      await job.retry('completed'); // what the dashboard's Retry on a completed job does
      await waitFor(`${stage} replay to finish`, async () => {
        const j = await queues.queues[stage].getJob(jobIdFor(id, stage));
        return j && (await j.getState()) === 'completed' && j.finishedOn !== finishedBefore;
      });
    }
    await stopWorkers();

    const after = await rec(id);
    assert.equal(after.state, 'active');
    for (const stage of ['verify', 'unpack', 'load', 'activate'] as const) {
      assert.deepEqual(after.stages[stage], before.stages[stage], `${stage}'s record is untouched by its replay`);
    }
    assert.equal(await schemaOid(pointer.activeSchema!), oid, 'the active schema was never dropped and rebuilt');
    assert.equal(await activations(), activationsBefore, 'no second activation');

    // and nothing else may drop it either
    const client = await connect(fx.pool);
    try {
      await assert.rejects(dropSchema(client, pointer.activeSchema!), (e) => isOukError(e) && e.code === 'IMPORT_FAILED' && /live DB/.test(e.message));
    } finally {
      client.release();
    }
  });

  test('an import stranded by lost Redis state resumes from its first stage not done: by retry, by the reconciler, by importing it again', async () => {
    for (const how of ['retry', 'reconciler', 'import again'] as const) {
      const version = { retry: '2026-11-11', reconciler: '2026-11-12', 'import again': '2026-11-13' }[how];
      workers(['verify', 'unpack']); // load and activate have no worker yet
      const id = await drop(version);
      await waitFor(`${how}: unpack to be done`, async () => (await rec(id)).stages.unpack?.state === 'done');
      await stopWorkers();
      const beforeWipe = await rec(id);
      await wipeRedis(); // the import is `unpacking`, with no job anywhere

      if (how === 'retry') {
        const r = await retryImport(deps(), id);
        assert.deepEqual([r.stage, r.mode], ['load', 'new-flow']);
      } else if (how === 'reconciler') {
        const r = await reconcileOnce(reconcilerDeps());
        assert.deepEqual(r.resumed, [id]);
        assert.deepEqual((await reconcileOnce(reconcilerDeps())).resumed, [], 'a second pass finds its jobs live');
      } else {
        const o = (await getImport(fx.pool, id))!;
        const r = await ingestObject(deps(), { bucket: o.bucket, key: o.objectKey, etag: o.etag, size: o.size });
        assert.equal(r.flowAdded, true, 'the same object imported again re-creates the stranded flow');
      }
      workers();
      const done = await until(id, ['active', 'failed']);
      await stopWorkers();
      assert.equal(done.state, 'active', `${how}: ${done.errorCode}: ${done.error}`);
      assert.deepEqual(done.stages.verify, beforeWipe.stages.verify, `${how}: verify did not run again`);
      assert.deepEqual(done.stages.unpack, beforeWipe.stages.unpack, `${how}: unpack did not run again`);
      assert.equal((await readActivePointer(fx.pool)).activeVersion, version);
    }
  });

  test('a stage failure the worker could not write (PostgreSQL away) is recorded by the reconciler', async () => {
    const b = await makeBundle(fx, 'integrity-pgdown.tar.gz', { version: '2026-11-14', advisories: 5 });
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-14.tar.gz');
    const { importId } = await ingestObject(deps(), { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
    // A worker whose PostgreSQL is gone: its verify fails for good and cannot say so.
    const blind = new Worker(
      'verify',
      async () => {
        throw new UnrecoverableError('DATABASE_UNAVAILABLE: PostgreSQL cannot be reached (connection refused)');
      },
      { connection: { url: redis.redisUrl }, prefix: redis.prefix },
    );
    try {
      await waitFor('verify to fail in BullMQ', async () => (await queues.queues.verify.getJob(jobIdFor(importId, 'verify')))?.getState().then((s) => s === 'failed'));
    } finally {
      await blind.close();
    }
    assert.equal((await rec(importId)).state, 'queued', 'the record does not know (the failure could not be written)');
    const r = await reconcileOnce(reconcilerDeps());
    assert.deepEqual(r.failuresRecorded, [importId]);
    const after = await rec(importId);
    assert.deepEqual([after.state, after.errorCode, after.stages.verify?.state], ['failed', 'DATABASE_UNAVAILABLE', 'failed']);
    assert.match(after.error ?? '', /PostgreSQL cannot be reached/);
  });

  test('an activation that finds its loaded DB gone sends the import back to load; retry completes it', async () => {
    workers(['verify', 'unpack', 'load']);
    const id = await drop('2026-11-15');
    const loaded = await waitFor('load to be done', async () => {
      const r = await rec(id);
      return r.stages.load?.state === 'done' ? r : null;
    });
    await stopWorkers();
    await fx.pool.query(`DROP SCHEMA ${loaded.schemaName} CASCADE`); // by hand, behind the pipeline's back
    workers(['activate']);
    const failed = await until(id, ['failed']);
    await stopWorkers();
    assert.equal(failed.stages.load?.state, 'failed', 'load is no longer done: what it made is gone');
    assert.match(failed.error ?? '', /is gone .*stella ouk retry/);
    const r = await retryImport(deps(), id);
    assert.equal(r.stage, 'load');
    workers();
    const done = await until(id, ['active', 'failed']);
    await stopWorkers();
    assert.equal(done.state, 'active', `${done.errorCode}: ${done.error}`);
  });

  test('garbage collection removes what no import needs, keeps the active and previous DBs and imports in flight', async () => {
    const prev = await importActive('2026-11-16');
    const active = await importActive('2026-11-17');
    // a failed import with staged members and a loaded schema
    workers(['verify', 'unpack', 'load']);
    const failedId = await drop('2026-11-18');
    await waitFor('load to be done', async () => (await rec(failedId)).stages.load?.state === 'done');
    await stopWorkers();
    await fx.pool.query(`UPDATE ouk_meta.imports SET state = 'failed', error_code = 'IMPORT_FAILED' WHERE id = $1`, [failedId]);
    // an import in flight (unpacked, waiting for load) and a staged prefix nobody knows
    workers(['verify', 'unpack']);
    const inFlight = await drop('2026-11-19');
    await waitFor('unpack to be done', async () => (await rec(inFlight)).stages.unpack?.state === 'done');
    await stopWorkers();
    const orphan = `staged/${'ab'.repeat(32)}/${'cd'.repeat(12)}/`;
    await putSmallObject(fx.s3.store, fx.s3.bucket, `${orphan}db/advisories.tsv`, Buffer.from('x\n'));

    const gc = (dryRun: boolean, graceHours: number) =>
      collectGarbage({ pool: fx.pool, store: fx.s3.store, bucket: fx.s3.bucket, logger: fx.logger, now: new Date(), graceHours, dryRun });
    const young = await gc(true, 24);
    assert.deepEqual(young.schemas.map((s) => s.name), [], 'within the grace period the failed import keeps its DB');
    const staged = (r: { staged: { name: string }[] }) => r.staged.map((s) => s.name).sort();
    assert.deepEqual(staged(young), [], 'activation removed its own staged members; the rest is in flight or within the grace period');

    const plan = await gc(true, 0);
    assert.ok(plan.schemas.some((s) => s.name === `ouk_db_${failedId}`));
    assert.ok(!plan.schemas.some((s) => s.name === `ouk_db_${active}` || s.name === `ouk_db_${prev}`), 'the active and previous DBs stay');
    assert.ok(!plan.staged.some((s) => s.name.includes(inFlight)), 'an import in flight keeps its members');
    assert.ok(plan.staged.some((s) => s.name === orphan));
    assert.equal(await schemaOid(`ouk_db_${failedId}`) !== null, true, 'a dry run removes nothing');

    const done = await gc(false, 0);
    assert.deepEqual(done.busy, []);
    assert.equal(await schemaOid(`ouk_db_${failedId}`), null);
    assert.ok(await schemaOid(`ouk_db_${active}`));
    assert.ok(await schemaOid(`ouk_db_${prev}`));
    assert.equal(await objectExists(fx.s3.store, fx.s3.bucket, `${orphan}db/advisories.tsv`), false);
    const flight = await rec(inFlight);
    assert.ok(await objectExists(fx.s3.store, fx.s3.bucket, `${stagedPrefix(flight.digest!, inFlight)}.complete`), 'in-flight members kept');
    const again = await gc(true, 0);
    assert.deepEqual([again.schemas.length, again.staged.length], [0, 0], 'nothing is left behind');

    // by hand, through the CLI
    const cli = await runStella(['ouk', 'gc', '--dry-run', '--grace-hours', '0'], { cwd: fx.dir, env: fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn' }) });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, 'nothing to remove: every staged member and DB schema is still needed\n');
  });

  test('planGc decides from the facts alone', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const id = (n: number) => String(n).padStart(24, '0');
    const plan = planGc(
      {
        live: new Set([`ouk_db_${id(1)}`]),
        imports: new Map([
          [id(1), { state: 'active', updatedAt: now }],
          [id(2), { state: 'failed', updatedAt: new Date('2026-05-31T12:00:00Z') }],
          [id(3), { state: 'loading', updatedAt: new Date('2026-01-01T00:00:00Z') }],
          [id(4), { state: 'superseded', updatedAt: now }],
          // failed during its load (a full disk, say) an hour ago: its half-filled schema goes at once
          [id(5), { state: 'failed', updatedAt: new Date('2026-05-31T23:00:00Z'), loadDone: false }],
          // failed after its load (at activation): kept for the grace period, a retry uses it
          [id(6), { state: 'failed', updatedAt: new Date('2026-05-31T23:00:00Z'), loadDone: true }],
        ]),
        schemas: [`ouk_db_${id(1)}`, `ouk_db_${id(2)}`, `ouk_db_${id(3)}`, `ouk_db_${id(4)}`, `ouk_delta_${id(1)}`, `ouk_db_${id(9)}`, `ouk_db_${id(5)}`, `ouk_db_${id(6)}`],
        staged: [],
      },
      now,
      24,
    );
    assert.deepEqual(
      plan.schemas.map((s) => `${s.name}: ${s.why}`),
      [
        `ouk_db_${id(4)}: import superseded`,
        `ouk_delta_${id(1)}: delta rows already applied`,
        `ouk_db_${id(9)}: no import record`,
        `ouk_db_${id(5)}: import failed before its load was done: the schema is incomplete`,
      ],
    );
  });

  test('importing a superseded kit again is refused with DOWNGRADE_REFUSED; --allow-downgrade makes it active again', async () => {
    const first = await importActive('2026-11-20');
    await importActive('2026-11-21');
    assert.equal((await rec(first)).state, 'superseded');
    workers();
    try {
      const env = fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn', OUK_TRUSTED_KEYS: fx.publicKey });
      const kit = `${fx.dir}/integrity-2026-11-20.tar.gz`;
      // the CLI uploads under the kit's own file name: the same bytes under the same key are the same import
      const { copyFileSync } = await import('node:fs');
      copyFileSync(kit, `${fx.dir}/stella-ouk-2026-11-20.tar.gz`);
      copyFileSync(`${kit}.sig`, `${fx.dir}/stella-ouk-2026-11-20.tar.gz.sig`);
      const refused = await runStella(['ouk', 'import', 'stella-ouk-2026-11-20.tar.gz'], { cwd: fx.dir, env });
      assert.equal(refused.code, EXIT_CODES.DOWNGRADE_REFUSED, refused.stderr);
      assert.match(refused.stderr, /was imported before and is now superseded; the active DB is 2026-11-21, and 2026-11-20 was NOT activated — pass --allow-downgrade/);
      assert.doesNotMatch(refused.stdout, /activated/);
      assert.equal((await readActivePointer(fx.pool)).activeVersion, '2026-11-21');

      const again = await runStella(['ouk', 'import', 'stella-ouk-2026-11-20.tar.gz', '--allow-downgrade', '--reason', 'test: activate it again'], { cwd: fx.dir, env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'activated 2026-11-20\n');
      assert.equal((await readActivePointer(fx.pool)).activeVersion, '2026-11-20');
    } finally {
      await stopWorkers();
    }
  });
});
