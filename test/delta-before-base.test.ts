/**
 * A delta dropped before its base: `cp *.tar.gz` puts
 * `stella-ouk-2026-12-11.1.tar.gz` (the delta) into the bucket before
 * `stella-ouk-2026-12-11.tar.gz` (its base). The API and a worker run as
 * processes, the bucket (s3rver) posts MinIO webhooks to the API; nobody runs
 * `stella ouk retry`.
 *
 *  - the base nowhere yet: the delta is refused, DELTA_BASE_MISMATCH naming
 *    its version and its base; once the base is dropped and active, the
 *    reconciler resumes the delta: both activate, in order;
 *  - the base being imported when the delta arrives: the delta waits for it
 *    (its verify stage `waiting`, never failed), then applies;
 *  - in-process: a base in the bucket with no import yet is waited for too,
 *    and a base whose import failed is not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import pg from 'pg';
import { verify } from '../functions/verify.ts';
import { getImport } from '../infra/import-records/index.ts';
import { isOukError, OukWait } from '../lib/errors.ts';
import { recordImport } from '../queue/ingest.ts';
import type { SyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { startService, type ServiceProcess } from './helpers/processes.ts';
import { freePort, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { activeCounts, FAST_RETRIES, fixtureEnv, makeBundle, pipelineFixture, putBundle, putFile, registerImport, stageContext, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const TOKEN = 'delta-before-base-token';
const ADVISORIES = 400;

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let api: ServiceProcess;
let worker: ServiceProcess;

before(async () => {
  const apiPort = await freePort();
  fx = await pipelineFixture('delta-before-base', { webhook: { url: `http://127.0.0.1:${apiPort}/hooks/minio`, token: TOKEN, attempts: 3, backoffMs: 100 }, log: () => undefined });
  redis = testRedisPrefix('delta-before-base');
  const env = fixtureEnv(fx, redis, {
    ...FAST_RETRIES,
    STELLA_AIRGAP: 'true',
    OUK_TRUSTED_KEYS: fx.publicKey,
    OUK_WEBHOOK_TOKEN: TOKEN,
    STELLA_API_PORT: String(apiPort),
    OUK_RECONCILE_SECONDS: '1',
    LOG_LEVEL: 'info',
  });
  api = startService('api', env, fx.dir);
  worker = startService('worker', env, fx.dir);
  await waitFor('the API to answer', () => fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false), 60_000, 200);
});

after(async () => {
  await worker?.stop();
  await api?.stop();
  await redis?.cleanup();
  await fx?.close();
});

const logs = (): string => `${api.log()}\n${worker.log()}`;

/** A full kit of `version` and a delta `<version>.1` built on it. */
async function pair(version: string, seed: number): Promise<{ base: SyntheticBundle; delta: SyntheticBundle }> {
  const base = await makeBundle(fx, `stella-ouk-${version}.tar.gz`, { version, advisories: ADVISORIES, seed });
  const delta = await makeBundle(fx, `stella-ouk-${version}.1.tar.gz`, {
    version: `${version}.1`,
    advisories: 0,
    seed: seed + 100,
    delta: { base: { version, advisories: ADVISORIES, seed }, changed: [1, 2, 40], added: 3, removed: [7] },
  });
  return { base, delta };
}

/** As `cp` does it: the .sig, then the tarball, under the kit's own file name. */
async function drop(kit: SyntheticBundle): Promise<string> {
  const key = kit.path.slice(kit.path.lastIndexOf('/') + 1);
  return (await putBundle(fx, kit.path, key)).importId;
}

async function activeVersion(): Promise<string | null> {
  return (await fx.pool.query<{ active_version: string | null }>('SELECT active_version FROM ouk_meta.active_db')).rows[0]?.active_version ?? null;
}

async function activations(): Promise<string[]> {
  return (await fx.pool.query<{ version: string }>(`SELECT version FROM ouk_meta.activations WHERE action = 'activate' ORDER BY seq`)).rows.map((r) => r.version);
}

async function untilActive(version: string): Promise<void> {
  await waitFor(`${version} to become the active DB`, async () => (await activeVersion()) === version, 120_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}\n${logs()}`);
  });
}

describe('through the API and a worker, nobody running retry', () => {
  test('the delta first, its base nowhere: refused naming both versions; its base dropped after it, both activate in order', async () => {
    const { base, delta } = await pair('2026-12-11', 1);
    const deltaId = await drop(delta);
    const refused = await waitFor('the delta to be refused', async () => {
      const r = await getImport(fx.pool, deltaId);
      return r?.state === 'failed' ? r : null;
    }, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    assert.equal(refused.errorCode, 'DELTA_BASE_MISMATCH', `${refused.error}`);
    assert.equal(refused.version, '2026-12-11.1', 'the record names the delta by its version, not "(version unknown)"');
    assert.match(refused.error ?? '', /delta 2026-12-11\.1 \(built on 2026-12-11\) cannot apply: no DB is active — import the full kit 2026-12-11 first \(this delta then resumes by itself once 2026-12-11 is active\)/);

    await drop(base);
    await untilActive('2026-12-11.1');
    assert.deepEqual(await activations(), ['2026-12-11', '2026-12-11.1'], 'the base, then the delta');
    assert.deepEqual((await activeCounts(fx.pool)).counts, delta.counts, 'the DB the delta says it yields');
    assert.match(worker.log(200_000), /the base of a refused delta is active now; delta retried/);
  });

  test('the delta while its base is being imported: it waits (never failed), then applies after it', async () => {
    const { base, delta } = await pair('2026-12-12', 2);
    // Hold the base at its switch: activate waits for the state row lock.
    const holder = new pg.Client({ connectionString: fx.db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM ouk_meta.active_db FOR UPDATE');
      const baseId = await drop(base);
      await waitFor('the base to reach its activation', async () => (await getImport(fx.pool, baseId))?.state === 'activating', 60_000);
      const deltaId = await drop(delta);
      const waiting = await waitFor('the delta to wait for its base', async () => {
        const r = await getImport(fx.pool, deltaId);
        assert.notEqual(r?.state, 'failed', `${r?.errorCode}: ${r?.error}`);
        return r?.stages.verify?.state === 'waiting' ? r : null;
      }, 60_000);
      assert.equal(waiting.state, 'verifying');
      assert.match(waiting.stages.verify?.error ?? '', new RegExp(`delta 2026-12-12\\.1 \\(built on 2026-12-12\\) waits for its base: import ${baseId} of stella-ouk-2026-12-12\\.tar\\.gz is activating — it continues by itself once 2026-12-12 is active`));
      // It looks again every few seconds, and a look is no attempt: three looks, none counted (verify has 2 attempts here).
      const verifyQueue = new Queue('verify', { connection: { url: redis.redisUrl }, prefix: redis.prefix });
      try {
        const job = await waitFor('the delta to look for its base three times', async () => {
          const j = await verifyQueue.getJob(`${deltaId}-verify`);
          return j && j.attemptsStarted >= 3 ? j : null;
        }, 60_000, 250);
        assert.equal(job.attemptsMade, 0, 'no attempt counted');
        assert.ok(['delayed', 'active'].includes(await job.getState()), 'waiting, or looking again');
      } finally {
        await verifyQueue.close();
      }
      assert.notEqual((await getImport(fx.pool, deltaId))?.state, 'failed');
      await holder.query('COMMIT');
      await waitFor('the delta to apply', async () => {
        const r = await getImport(fx.pool, deltaId);
        assert.notEqual(r?.state, 'failed', `${r?.errorCode}: ${r?.error}`);
        return r?.state === 'active';
      }, 120_000, 100);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    assert.deepEqual((await activations()).slice(-2), ['2026-12-12', '2026-12-12.1']);
    assert.equal(await activeVersion(), '2026-12-12.1');
  });
});

describe('what the delta waits for (the stage alone)', () => {
  let fx2: PipelineFixture;
  before(async () => {
    fx2 = await pipelineFixture('delta-before-base-stage');
  });
  after(async () => {
    await fx2?.close();
  });

  test('its base in the bucket with no import yet: a wait; that import failed: DELTA_BASE_MISMATCH', async () => {
    const base = await makeBundle(fx2, 'b.tar.gz', { version: '2026-12-13', advisories: 50, seed: 3 });
    const delta = await makeBundle(fx2, 'd.tar.gz', { version: '2026-12-13.1', advisories: 0, seed: 4, delta: { base: { version: '2026-12-13', advisories: 50, seed: 3 }, changed: [1], added: 1, removed: [] } });
    const pd = await putBundle(fx2, delta.path, 'drop/stella-ouk-2026-12-13.1.tar.gz');
    await registerImport(fx2, pd);
    const etag = await putFile(fx2, base.path, 'drop/stella-ouk-2026-12-13.tar.gz'); // no notification, no import yet

    const waited = await verify(pd, stageContext(fx2)).then(() => null, (e: unknown) => e);
    assert.ok(waited instanceof OukWait, `a wait, not ${String(waited)}`);
    assert.match(waited.message, /waits for its base: drop\/stella-ouk-2026-12-13\.tar\.gz is in the bucket, its import not started yet/);

    const { record } = await recordImport(fx2.pool, { bucket: fx2.s3.bucket, key: 'drop/stella-ouk-2026-12-13.tar.gz', etag, size: base.size });
    await fx2.pool.query(`UPDATE ouk_meta.imports SET state = 'failed', error_code = 'SIGNATURE_MISSING' WHERE id = $1`, [record.id]);
    const refused = await verify(pd, stageContext(fx2)).then(() => null, (e: unknown) => e);
    assert.ok(isOukError(refused) && !(refused instanceof OukWait) && refused.code === 'DELTA_BASE_MISMATCH', String(refused));
  });
});
