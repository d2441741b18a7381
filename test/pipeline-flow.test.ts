/**
 * The whole pipeline on the real services: an object put into s3rver → its
 * MinIO-format event → POST /hooks/minio → queue/ingest → BullMQ flow on real
 * workers → an active DB. Also: duplicate events, a tampered bundle, a
 * signature that never arrives and a retry, a lost notification and the
 * reconciler.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import fs from 'node:fs';
import { buildServer } from '../api/server.ts';
import { getImport, type ImportRecord } from '../infra/import-records.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { createRedis } from '../queue/connection.ts';
import { jobIdFor } from '../queue/identity.ts';
import { ingestObject } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { reconcileOnce } from '../queue/reconciler.ts';
import { resumeFrom, resumeImport } from '../queue/resume.ts';
import { retryImport } from '../queue/retry.ts';
import { pipelineSettings } from '../lib/config.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import type { WebhookTarget } from '../infra/dev/s3rver.ts';
import { activeCounts, makeBundle, pipelineFixture, putBundle, putFile, type PipelineFixture, fixtureConfig, waitFor } from './pipeline-fixtures.ts';
import { repoRoot, sharedDir, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { contentPath } from '../bundle/member-codec.ts';

const TOKEN = 'test-webhook-token';
const settings = pipelineSettings({
  OUK_VERIFY_ATTEMPTS: '3',
  OUK_VERIFY_BACKOFF_MS: '150',
  OUK_STAGE_ATTEMPTS: '3',
  OUK_STAGE_BACKOFF_MS: '150',
  OUK_LOCK_MS: '5000',
  OUK_STALLED_MS: '2000',
});

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
let app: FastifyInstance;
let hookUrl: string;
const webhook: WebhookTarget = { url: 'http://127.0.0.1:1/unset', token: TOKEN, attempts: 3, backoffMs: 50 };

before(async () => {
  fx = await pipelineFixture('pipeline-flow', { webhook });
  redis = testRedisPrefix('pipeline-flow');
  const config = fixtureConfig(fx, redis, {
    webhookToken: TOKEN,
  });
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  app = await buildServer({ config, pool: fx.pool, store: fx.s3.store, queues, settings, logger: fx.logger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  hookUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks/minio`;
  webhook.url = hookUrl;
  workers = startWorkers(config, { pool: fx.pool, store: fx.s3.store, settings, logger: fx.logger });
});

after(async () => {
  await workers?.close();
  await app?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});


async function waitForState(id: string, states: string[]): Promise<ImportRecord> {
  return waitFor(`import ${id} to reach ${states.join('|')}`, async () => {
    const r = await getImport(fx.pool, id);
    return r && states.includes(r.state) ? r : null;
  });
}

async function postHook(body: unknown, token: string | null = TOKEN): Promise<Response> {
  return fetch(hookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

describe('pipeline flow', () => {
  let firstId: string;

  test('a bundle put into the bucket becomes the active DB through the webhook and the workers', async () => {
    const b = await makeBundle(fx, 'flow-1.tar.gz', { version: '2026-11-20', advisories: 250 });
    const p = await putBundle(fx, b.path, 'drop/stella-ouk-2026-11-20.tar.gz');
    firstId = p.importId;
    await fx.s3.idle();
    const delivered = fx.s3.events.filter((e) => e.Key.endsWith('stella-ouk-2026-11-20.tar.gz'));
    assert.equal(delivered.length, 1, 'one event for the tarball');
    const rec = await waitForState(p.importId, ['active', 'failed']);
    assert.equal(rec.state, 'active', `${rec.errorCode}: ${rec.error}`);
    for (const s of ['verify', 'unpack', 'load', 'activate'] as const) assert.equal(rec.stages[s]?.state, 'done', s);
    const active = await activeCounts(fx.pool);
    assert.equal(active.version, '2026-11-20');
    assert.deepEqual(active.counts, b.counts);
    const job = await queues.queues.load.getJob(jobIdFor(p.importId, 'load'));
    assert.ok(job?.progress && typeof job.progress === 'object', 'load reported its progress');
  });

  test('duplicate and repeated events start nothing new', async () => {
    const event = fx.s3.events.find((e) => e.Key.endsWith('stella-ouk-2026-11-20.tar.gz'))!;
    const answers = await Promise.all([postHook(event), postHook(event), postHook(event)]);
    for (const a of answers) assert.equal(a.status, 200);
    const bodies = (await Promise.all(answers.map((a) => a.json()))) as Array<{ accepted: Array<{ importId: string; created: boolean; flowAdded: boolean }> }>;
    for (const body of bodies) {
      assert.equal(body.accepted[0].importId, firstId);
      assert.equal(body.accepted[0].flowAdded, false);
    }
    const direct = await ingestObject({ pool: fx.pool, queues, settings }, { bucket: fx.s3.bucket, key: 'drop/stella-ouk-2026-11-20.tar.gz', etag: `"${(await getImport(fx.pool, firstId))!.etag}"` });
    assert.equal(direct.importId, firstId);
    assert.equal(direct.flowAdded, false);
    await sleep(300);
    const n = await fx.pool.query(`SELECT count(*)::int AS n FROM ouk_meta.activations WHERE import_id = $1`, [firstId]);
    assert.equal(n.rows[0].n, 1, 'activated once');
    const rows = await fx.pool.query(`SELECT count(*)::int AS n FROM ouk_meta.imports WHERE object_key = 'drop/stella-ouk-2026-11-20.tar.gz'`);
    assert.equal(rows.rows[0].n, 1, 'one import record');
    const verifyJobs = await queues.queues.verify.getJobs(['completed', 'waiting', 'active', 'delayed', 'failed']);
    assert.equal(verifyJobs.filter((j) => j.data.importId === firstId).length, 1, 'one verify job');
  });

  test('a caller holding a record read before a stage finished does not run that stage again', async () => {
    // The race CI once hit: ingest read the record while the images step was
    // still running, and looked at the jobs after it had completed.
    const done = await waitFor('the images step of the first import to be done', async () => {
      const r = await getImport(fx.pool, firstId);
      return r?.stages.images?.state === 'done' ? r : null;
    });
    assert.equal((await queues.queues.images.getJob(jobIdFor(firstId, 'images')))?.id !== undefined, true);
    const stale: ImportRecord = { ...done, stages: { ...done.stages, images: { ...done.stages.images!, state: 'running' } } };
    assert.equal(resumeFrom(stale), 'images', 'the stale record owes the images step');
    const out = await resumeImport({ pool: fx.pool, queues, settings }, stale);
    assert.deepEqual(out, { resumed: false, reason: 'finished' });
    assert.equal(await queues.queues.images.getJobState(jobIdFor(firstId, 'images')), 'completed', 'the completed job is left as it was');
  });

  test('the webhook wants the bearer token; non-bundles are ignored', async () => {
    const event = fx.s3.events[0];
    assert.equal((await postHook(event, null)).status, 401);
    assert.equal((await postHook(event, 'wrong')).status, 401);
    assert.equal((await postHook({ Records: [null] }, null)).status, 401, 'the token is checked before the body');
    const other = JSON.parse(JSON.stringify(event)) as typeof event;
    other.Records[0].s3.object.key = 'staged%2Fabc%2Fimages%2Fx.tar.gz';
    const r = await postHook(other);
    assert.equal(r.status, 200);
    assert.deepEqual(((await r.json()) as { ignored: Array<{ key: string }> }).ignored.map((i) => i.key), ['staged/abc/images/x.tar.gz']);
  });

  test('a hostile webhook body is a 400 or is ignored, and never creates an import', async () => {
    const count = async () => Number((await fx.pool.query<{ n: string }>('SELECT count(*) AS n FROM ouk_meta.imports')).rows[0]!.n);
    const before = await count();
    // not a MinIO event: 400 (MinIO does not redeliver a 4xx), with the reason
    for (const body of [{ Records: [null] }, { Records: 'x' }, {}, [], { Records: [{ s3: { bucket: { name: 7 }, object: { key: 'a.tar.gz' } } }] }]) {
      const r = await postHook(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(((await r.json()) as { message: string }).message, /not a MinIO bucket event \(body/);
    }
    const rec = (bucket: string, key: string) => ({ eventName: 's3:ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key, eTag: 'feed', size: 1 } } });
    // more records than MinIO ever posts at once
    const flood = await postHook({ EventName: 's3:ObjectCreated:Put', Records: Array.from({ length: 2000 }, (_, i) => rec(fx.s3.bucket, `kit-${i}.tar.gz`)) });
    assert.equal(flood.status, 400);
    // another bucket, and objects that do not exist: ignored, each with its reason
    const r = await postHook({ EventName: 's3:ObjectCreated:Put', Records: [rec('elsewhere', 'stella-ouk-2026-12-01.tar.gz'), rec(fx.s3.bucket, 'ghost%2Fstella-ouk-2026-12-02.tar.gz')] });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { accepted: unknown[]; ignored: Array<{ key: string; reason: string }> };
    assert.deepEqual(body.accepted, []);
    assert.deepEqual(body.ignored, [
      { key: 'elsewhere/stella-ouk-2026-12-01.tar.gz', reason: `not the configured bucket ${fx.s3.bucket}` },
      { key: 'ghost/stella-ouk-2026-12-02.tar.gz', reason: 'no such object in the bucket' },
    ]);
    assert.equal(await count(), before, 'no import record was created');
  });

  test('a tampered bundle stops at verify, for good (quarantined), and the old DB stays active', async () => {
    const b = await makeBundle(fx, 'flow-bad.tar.gz', { version: '2026-11-21', advisories: 30 });
    const buf = fs.readFileSync(b.path);
    buf[200] ^= 0x01;
    fs.writeFileSync(b.path, buf);
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-21.tar.gz');
    // failed, then its kit moved under quarantine/ (test/quarantine.test.ts has the details)
    const rec = await waitForState(p.importId, ['quarantined', 'active']);
    assert.equal(rec.state, 'quarantined');
    assert.equal(rec.errorCode, 'SIGNATURE_MISMATCH');
    assert.equal(rec.stages.verify?.state, 'failed');
    const job = await queues.queues.verify.getJob(jobIdFor(p.importId, 'verify'));
    assert.equal(await job!.getState(), 'failed');
    assert.equal(job!.attemptsMade, 1, 'a bad signature is not retried');
    assert.equal(await (await queues.queues.unpack.getJob(jobIdFor(p.importId, 'unpack')))!.getState(), 'waiting-children');
    assert.equal((await readActivePointer(fx.pool)).activeImport, firstId);
  });

  test('a missing .sig is refused at once, not retried; after upload, retry resumes the chain', async () => {
    const b = await makeBundle(fx, 'flow-late.tar.gz', { version: '2026-11-22', advisories: 40 });
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-22.tar.gz', false);
    const rec = await waitForState(p.importId, ['failed', 'active']);
    assert.equal(rec.errorCode, 'SIGNATURE_MISSING');
    assert.match(rec.error ?? '', /no signature stella-ouk-2026-11-22\.tar\.gz\.sig beside the tarball.*resumes by itself.*stella ouk retry/);
    const job = await queues.queues.verify.getJob(jobIdFor(p.importId, 'verify'));
    assert.equal(job!.attemptsMade, 1, 'a complete tarball without its .sig is not a transient fault');

    await putFile(fx, `${b.path}.sig`, 'stella-ouk-2026-11-22.tar.gz.sig.pending');
    const r = await retryImport({ pool: fx.pool, queues, settings }, p.importId);
    assert.equal(r.stage, 'verify');
    const again = await waitForState(p.importId, ['failed', 'active']);
    assert.equal(again.errorCode, 'SIGNATURE_MISSING', 'still no .sig under its name');
    webhook.url = 'http://127.0.0.1:1/down'; // resumed by hand below, not by the .sig event
    await putFile(fx, `${b.path}.sig`, 'stella-ouk-2026-11-22.tar.gz.sig');
    await fx.s3.idle();
    webhook.url = hookUrl;
    await retryImport({ pool: fx.pool, queues, settings }, p.importId);
    const done = await waitForState(p.importId, ['active']);
    assert.equal(done.state, 'active', `${done.errorCode}: ${done.error}`);
    assert.equal((await activeCounts(fx.pool)).version, '2026-11-22');
    assert.equal((await getImport(fx.pool, firstId))?.state, 'superseded');
  });

  test('a .sig uploaded after the refusal resumes the import by itself: through its bucket event, or the reconciler', async () => {
    for (const [version, path] of [
      ['2026-11-22.1', 'event'],
      ['2026-11-22.2', 'reconciler'],
    ] as const) {
      const b = await makeBundle(fx, `flow-wake-${path}.tar.gz`, { version, advisories: 15 });
      const p = await putBundle(fx, b.path, `stella-ouk-${version}.tar.gz`, false);
      assert.equal((await waitForState(p.importId, ['failed', 'active'])).errorCode, 'SIGNATURE_MISSING');
      if (path === 'reconciler') webhook.url = 'http://127.0.0.1:1/down'; // the .sig event is lost
      await putFile(fx, `${b.path}.sig`, `${p.key}.sig`);
      await fx.s3.idle();
      webhook.url = hookUrl;
      if (path === 'reconciler') {
        const r = await reconcileOnce({ pool: fx.pool, queues, settings, store: fx.s3.store, bucket: fx.s3.bucket });
        assert.deepEqual(r.retried, [p.importId]);
      }
      const rec = await waitForState(p.importId, ['active']);
      assert.equal(rec.state, 'active', `${path}: ${rec.errorCode}: ${rec.error}`);
    }
  });

  test('a lost notification is picked up by the reconciler', async () => {
    webhook.url = 'http://127.0.0.1:1/down';
    const b = await makeBundle(fx, 'flow-lost.tar.gz', { version: '2026-11-23', advisories: 35 });
    const p = await putBundle(fx, b.path, 'lost/stella-ouk-2026-11-23.tar.gz');
    await fx.s3.idle();
    webhook.url = hookUrl;
    assert.equal(await getImport(fx.pool, p.importId), null, 'the event was lost');
    const r = await reconcileOnce({ pool: fx.pool, queues, settings, store: fx.s3.store, bucket: fx.s3.bucket });
    assert.deepEqual(r.ingested, [p.importId]);
    const again = await reconcileOnce({ pool: fx.pool, queues, settings, store: fx.s3.store, bucket: fx.s3.bucket });
    assert.deepEqual(again.ingested, [], 'a second pass starts nothing');
    const rec = await waitForState(p.importId, ['active', 'failed']);
    assert.equal(rec.state, 'active', `${rec.errorCode}: ${rec.error}`);
  });

  test('a bundle built from ../shared/feeds by `stella ouk build` is imported whole', async () => {
    const out = path.join(fx.dir, 'stella-ouk-2026-11-28.tar.gz');
    await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/stella.js'), 'ouk', 'build', '--feeds', path.join(sharedDir, 'feeds'), '--key', fx.privateKey, '--out', out, '--version', '2026-11-28', '--expires-days', '3650'], {
      cwd: fx.dir,
      maxBuffer: 16 << 20,
    });
    const p = await putBundle(fx, out, 'real/stella-ouk-2026-11-28.tar.gz');
    const rec = await waitForState(p.importId, ['active', 'failed']);
    assert.equal(rec.state, 'active', `${rec.errorCode}: ${rec.error}`);
    const rows = Object.fromEntries(rec.manifest!.members.filter((m) => m.role === 'db').map((m) => [contentPath(m).replace(/^db\/|\.tsv$/g, ''), m.rows]));
    const active = await activeCounts(fx.pool);
    assert.equal(active.version, '2026-11-28');
    assert.deepEqual(active.counts, rows, 'every row the builder wrote is in the active DB');
    assert.ok(active.counts.advisories > 1000, `real advisories (${active.counts.advisories})`);
  });
});

describe('webhook body', () => {
  test('record keys are unescaped the way MinIO escapes them; the top-level Key is a fallback', async () => {
    const { createdObjects } = await import('../infra/minio-event.ts');
    const rec = (eventName: string, key: string) => ({ eventName, s3: { bucket: { name: 'ouk' }, object: { key, eTag: 'abc', size: 3 } } });
    assert.deepEqual(
      createdObjects({ EventName: 's3:ObjectCreated:Put', Key: 'ouk/kits/a b+c.tar.gz', Records: [rec('s3:ObjectCreated:Put', 'kits%2Fa+b%2Bc.tar.gz')] }),
      [{ bucket: 'ouk', key: 'kits/a b+c.tar.gz', etag: 'abc', size: 3 }],
    );
    assert.deepEqual(createdObjects({ EventName: 's3:ObjectRemoved:Delete', Key: 'ouk/x.tar.gz', Records: [rec('s3:ObjectRemoved:Delete', 'x.tar.gz')] }), []);
    assert.deepEqual(createdObjects({ EventName: 's3:ObjectCreated:Copy', Key: 'ouk/kits/x y.tar.gz' }), [{ bucket: 'ouk', key: 'kits/x y.tar.gz', etag: null, size: null }]);
  });
});
