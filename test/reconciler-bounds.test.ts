/**
 * A reconciler pass is bounded and goes on past an error.
 * In-process passes (queue/reconciler.ts reconcileOnce) against this file's
 * own database, Redis prefix and s3rver; the store is the real client, its
 * calls counted by a transparent wrapper.
 *
 *   - 1,000 tiny unsigned objects in the bucket: a pass ingests at most its
 *     limit (the next pass goes on); once they are all refused for their
 *     missing .sig, a pass lists the bucket once and checks no object one by
 *     one — the .sig that arrives is found in the listing and its import
 *     retried; after the objects are deleted, a pass still costs one listing;
 *   - a listing that fails (no such bucket) is recorded as the `list` step's
 *     error, and the other steps still run (a stranded import is resumed);
 *   - unfinished imports beyond a pass's limit are taken by the next passes,
 *     from where the previous one stopped;
 *   - the re-scan planning job is queued once per activation, not planned
 *     every pass, and again when Redis lost it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRedis } from '../queue/connection.ts';
import { ingestObject, recordImport } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { reconcileOnce, type ReconcileCursor, type ReconcilerDeps } from '../queue/reconciler.ts';
import { planJobId } from '../queue/rescan.ts';
import type { ObjectStore } from '../infra/store.ts';
import { testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, makeBundle, pipelineFixture, putBundle, registerImport, runStages, stageContext, type PipelineFixture } from './pipeline-fixtures.ts';

const settings = fastSettings();
let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
const calls: Record<string, number> = {};
let counted: ObjectStore;

/** The real store client; every method call counted by name. */
function countingStore(store: ObjectStore): ObjectStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls[String(key)] = (calls[String(key)] ?? 0) + 1;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function deps(over: Partial<ReconcilerDeps> = {}): ReconcilerDeps {
  return { pool: fx.pool, queues, settings, store: counted, bucket: fx.s3.bucket, logger: fx.logger, ...over };
}

function resetCalls(): void {
  for (const k of Object.keys(calls)) delete calls[k];
}

/** Store calls other than the one listing a pass makes. */
function perObjectCalls(): Record<string, number> {
  return Object.fromEntries(Object.entries(calls).filter(([k]) => k !== 'listObjects'));
}

const JUNK = Array.from({ length: 1000 }, (_, i) => `junk/stella-ouk-junk-${String(i).padStart(4, '0')}.tar.gz`);

before(async () => {
  fx = await pipelineFixture('reconciler-bounds');
  redis = testRedisPrefix('reconciler-bounds');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  counted = countingStore(fx.s3.store);
});

after(async () => {
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});

describe('a reconciler pass is bounded', () => {
  test('1,000 tiny unsigned objects: ingested a pass-limit at a time; once refused, a pass is one listing — no check per object, before or after they are deleted', async (t) => {
    const body = Buffer.from('not a kit at all');
    for (let i = 0; i < JUNK.length; i += 20) {
      await Promise.all(JUNK.slice(i, i + 20).map((k) => fx.s3.store.putObject(fx.s3.bucket, k, body, body.length)));
    }
    resetCalls();
    const first = await reconcileOnce(deps());
    assert.equal(first.bundles, 1000);
    assert.equal(first.ingested.length, 50, 'at most the ingest limit in one pass');
    assert.ok(first.more.includes('ingest'), 'the next pass goes on');
    assert.deepEqual(first.errors, []);
    assert.equal(calls.listObjects, 1);

    // The rest as ingest records them, and all of them refused for their missing .sig (what verify does at once).
    for (const key of JUNK) {
      const stat = await fx.s3.store.statObject(fx.s3.bucket, key);
      const r = await recordImport(fx.pool, { bucket: fx.s3.bucket, key, etag: stat.etag, size: stat.size }, {}, 'reconciler');
      await fx.pool.query(
        `UPDATE ouk_meta.imports SET state = 'failed', error_code = 'SIGNATURE_MISSING', error = 'no .sig', flow_added_at = COALESCE(flow_added_at, now()) WHERE id = $1`,
        [r.record.id],
      );
    }
    const ids = (await fx.pool.query<{ id: string; object_key: string }>(`SELECT id, object_key FROM ouk_meta.imports WHERE error_code = 'SIGNATURE_MISSING'`)).rows;
    assert.equal(ids.length, 1000);

    resetCalls();
    let t0 = performance.now();
    const idle = await reconcileOnce(deps());
    t.diagnostic(`pass with 1,000 refused unsigned objects: ${Math.round(performance.now() - t0)} ms`);
    assert.deepEqual([idle.ingested, idle.retried, idle.errors, idle.more], [[], [], [], []]);
    assert.equal(calls.listObjects, 1);
    assert.deepEqual(perObjectCalls(), {}, 'no store call per refused import');

    // One .sig arrives: the listing shows it, that import alone is retried.
    const seventh = ids.find((r) => r.object_key === JUNK[7])!;
    await fx.s3.store.putObject(fx.s3.bucket, `${JUNK[7]}.sig`, Buffer.from('sig'), 3);
    resetCalls();
    const arrived = await reconcileOnce(deps());
    assert.deepEqual([arrived.retried, arrived.errors], [[seventh.id], []]);
    assert.deepEqual(perObjectCalls(), {});

    // Deleted: the refused records stay, a pass still costs one listing.
    for (const k of [...JUNK, `${JUNK[7]}.sig`]) await fx.s3.store.removeObject(fx.s3.bucket, k);
    resetCalls();
    t0 = performance.now();
    const gone = await reconcileOnce(deps());
    t.diagnostic(`pass after the 1,000 objects were deleted: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(gone.bundles, 0);
    assert.deepEqual([gone.retried, gone.errors], [[], []]);
    assert.equal(calls.listObjects, 1);
    assert.deepEqual(perObjectCalls(), {});
    // the junk is done with: refused for good, so later passes leave it
    await fx.pool.query(`UPDATE ouk_meta.imports SET state = 'failed', error_code = 'ARCHIVE_CORRUPT' WHERE object_key LIKE 'junk/%'`);
  });

  test('a listing that fails is the list step\'s error: the other steps still run', async () => {
    const rec = await recordImport(fx.pool, { bucket: fx.s3.bucket, key: 'stranded/stella-ouk-2026-11-05.tar.gz', etag: 'e'.repeat(32), size: 10 });
    await fx.pool.query(`UPDATE ouk_meta.imports SET flow_added_at = now() WHERE id = $1`, [rec.record.id]); // queued, its jobs lost
    const r = await reconcileOnce(deps({ bucket: 'no-such-bucket-here' }));
    assert.deepEqual(r.errors.map((e) => e.step), ['list']);
    assert.match(r.errors[0]!.error, /^STORE_UNAVAILABLE: /);
    assert.deepEqual(r.resumed, [rec.record.id], 'the repair step ran');
    await fx.pool.query(`UPDATE ouk_meta.imports SET state = 'failed', error_code = 'ARCHIVE_CORRUPT' WHERE id = $1`, [rec.record.id]);
  });

  test('unfinished imports beyond a pass\'s limit: the next passes go on from where it stopped', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      const rec = await recordImport(fx.pool, { bucket: fx.s3.bucket, key: `stranded/stella-ouk-2026-11-1${i}.tar.gz`, etag: `${i}`.repeat(32), size: 10 });
      await fx.pool.query(`UPDATE ouk_meta.imports SET flow_added_at = now() WHERE id = $1`, [rec.record.id]);
      mine.push(rec.record.id);
    }
    // all within one millisecond, to the microsecond (as imports recorded together are): the cursor must get past them
    await fx.pool.query(`UPDATE ouk_meta.imports SET created_at = '2026-11-01 00:00:00.123456+00' WHERE id = ANY($1::text[])`, [mine]);
    const cursor: ReconcileCursor = { repairAfter: null };
    const resumed = new Set<string>();
    let passes = 0;
    const errors: string[] = [];
    while (mine.some((id) => !resumed.has(id)) && passes < 10) {
      const r = await reconcileOnce(deps(), { limits: { repair: 2 }, cursor });
      passes++;
      errors.push(...r.errors.map((e) => `${e.step}: ${e.error}`));
      assert.ok(r.resumed.length <= 2, `a pass resumed ${r.resumed.length}`);
      for (const id of r.resumed) {
        assert.ok(!resumed.has(id), 'each resumed once');
        resumed.add(id);
      }
    }
    assert.ok(mine.every((id) => resumed.has(id)), `every stranded import was resumed (${resumed.size} of ${mine.length} in ${passes} passes; errors: ${JSON.stringify(errors.slice(0, 5))})`);
    assert.ok(passes >= 3, `${passes} passes`);
    await fx.pool.query(`UPDATE ouk_meta.imports SET state = 'failed', error_code = 'ARCHIVE_CORRUPT' WHERE id = ANY($1::text[])`, [mine]);
  });

  test('the re-scan planning job: queued once per activation (not planned every pass), again when Redis lost it', async () => {
    const b = await makeBundle(fx, 'full.tar.gz', { version: '2026-11-20', advisories: 30 });
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-20.tar.gz');
    await registerImport(fx, p);
    await runStages(p, stageContext(fx));
    await ingestObject({ pool: fx.pool, queues, settings }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size }); // known to the reconciler
    const seq = Number((await fx.pool.query<{ seq: string }>('SELECT max(seq) AS seq FROM ouk_meta.activations')).rows[0]!.seq);
    assert.equal((await reconcileOnce(deps())).rescanPlanned, seq, 'no planning job yet: queued');
    const job = await queues.rescan.getJob(planJobId(seq));
    assert.ok(job);
    assert.equal(job.name, 'plan');
    for (let i = 0; i < 3; i++) assert.equal((await reconcileOnce(deps())).rescanPlanned, null, 'the job is there: nothing to plan');
    await job.remove(); // Redis lost it
    assert.equal((await reconcileOnce(deps())).rescanPlanned, seq);
  });
});
