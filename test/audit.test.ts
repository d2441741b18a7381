/**
 * The audit trail, against real Redis, PostgreSQL, s3rver,
 * the pipeline's workers and `stella` CLI processes: --allow-downgrade and
 * --force need --reason; every override, rollback, retry and gc with grace 0
 * is a row of `stella ouk audit` (actor: the OS user); the table refuses a raw
 * UPDATE, DELETE and TRUNCATE; the dashboard's retry routes are recognised.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { EXIT_CODES } from '../lib/errors.ts';
import { pipelineSettings, signInConfig } from '../lib/config.ts';
import { appendAudit, listAudit } from '../infra/audit.ts';
import Fastify from 'fastify';
import { dashboardPlugin, retryTarget } from '../api/dashboard.ts';
import { createRedis } from '../queue/connection.ts';
import { openPipelineQueues } from '../queue/queues.ts';
import { parseSince } from '../cli/commands/ouk-audit.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { expiredTimes, waitFor, makeBundle, pipelineFixture, fixtureConfig, fixtureEnv, FAST_RETRIES, type PipelineFixture } from './pipeline-fixtures.ts';
import { runStella, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let workers: RunningWorkers;

before(async () => {
  fx = await pipelineFixture('audit');
  redis = testRedisPrefix('audit');
  workers = startWorkers(fixtureConfig(fx, redis), { pool: fx.pool, store: fx.s3.store, settings: pipelineSettings({ ...FAST_RETRIES, OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000' }), logger: fx.logger });
});

after(async () => {
  await workers?.close();
  await redis?.cleanup();
  await fx?.close();
});

function stella(...args: string[]): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn', OUK_TRUSTED_KEYS: fx.publicKey }) });
}

interface Row {
  at: string;
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  outcome: string;
}

async function audit(...extra: string[]): Promise<Row[]> {
  const r = await stella('ouk', 'audit', '--json', ...extra);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Row[];
}

describe('every override on the record', () => {
  const me = os.userInfo().username;
  let started = '';

  test('--allow-downgrade and --force without --reason are refused before anything is uploaded', async () => {
    started = new Date(Date.now() - 1000).toISOString();
    const b = await makeBundle(fx, 'stella-ouk-2026-11-20.tar.gz', { version: '2026-11-20', advisories: 20 });
    for (const flag of ['--allow-downgrade', '--force']) {
      const r = await stella('ouk', 'import', b.path, flag);
      assert.equal(r.code, EXIT_CODES.REASON_REQUIRED, r.stderr);
      assert.match(r.stderr, new RegExp(`error\\[REASON_REQUIRED\\]: ${flag} needs --reason TEXT`));
    }
    const blank = await stella('ouk', 'import', b.path, '--force', '--reason', ' ');
    assert.equal(blank.code, EXIT_CODES.REASON_REQUIRED, blank.stderr);
    const objects: string[] = [];
    for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, '', true)) objects.push((o as { name: string }).name);
    assert.deepEqual(objects, [], 'nothing uploaded');
    assert.equal((await stella('ouk', 'import', b.path)).code, 0);
  });

  test('an expired kit with --force --reason is imported and on the record', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-21.tar.gz', { version: '2026-11-21', advisories: 15, ...expiredTimes() });
    const r = await stella('ouk', 'import', b.path, '--force', '--reason', 'CHG-1234: the newer kit is stuck at the border');
    assert.equal(r.code, 0, r.stderr);
    const rows = await audit();
    assert.deepEqual(rows.map((x) => [x.action, x.target, x.reason, x.outcome, x.actor]), [['import.force', 'stella-ouk-2026-11-21.tar.gz', 'CHG-1234: the newer kit is stuck at the border', 'ok', me]]);
  });

  test('rollback, a re-activation with --allow-downgrade, a refused retry and gc with grace 0 each write a row with their outcome', async () => {
    const rb = await stella('ouk', 'rollback', '--reason', 'findings looked wrong');
    assert.equal(rb.code, 0, rb.stderr);
    const b = await makeBundle(fx, 'stella-ouk-2026-11-21.tar.gz', { version: '2026-11-21', advisories: 15, ...expiredTimes() });
    const again = await stella('ouk', 'import', b.path, '--allow-downgrade', '--force', '--reason', 'they were right after all');
    assert.equal(again.code, 0, again.stderr);
    const status = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as { imports: Array<{ id: string }> };
    const retry = await stella('ouk', 'retry', status.imports[0]!.id);
    assert.equal(retry.code, EXIT_CODES.NOTHING_TO_RETRY, retry.stderr);
    const gc = await stella('ouk', 'gc', '--grace-hours', '0', '--reason', 'disk nearly full');
    assert.equal(gc.code, 0, gc.stderr);
    const gcDry = await stella('ouk', 'gc', '--grace-hours', '0', '--dry-run');
    assert.equal(gcDry.code, 0, gcDry.stderr);
    const gcGrace = await stella('ouk', 'gc');
    assert.equal(gcGrace.code, 0, gcGrace.stderr);
    const rows = (await audit('--since', started)).slice(1);
    assert.deepEqual(
      rows.map((x) => [x.action, x.reason, x.outcome]),
      [
        ['rollback', 'findings looked wrong', 'ok'],
        ['import.allow-downgrade', 'they were right after all', 'ok'],
        ['import.force', 'they were right after all', 'ok'],
        ['retry', null, 'NOTHING_TO_RETRY'],
        ['gc.grace-0', 'disk nearly full', 'ok'],
      ],
    );
    assert.match(rows[0]!.target ?? '', /^2026-11-21 -> 2026-11-20$/);
    assert.equal(rows[3]!.target, status.imports[0]!.id);
    for (const r of rows) assert.equal(r.actor, me);
    const human = await stella('ouk', 'audit');
    assert.match(human.stdout, new RegExp(`  ${me}  rollback  2026-11-21 -> 2026-11-20  ok  reason: findings looked wrong`));
    // --since: a time after every row, and a span
    assert.deepEqual(await audit('--since', new Date(Date.now() + 60_000).toISOString()), []);
    assert.equal((await audit('--since', '1h')).length, 6);
    const bad = await stella('ouk', 'audit', '--since', 'yesterday-ish');
    assert.equal(bad.code, EXIT_CODES.USAGE, bad.stderr);
  });

  test('the table refuses UPDATE, DELETE and TRUNCATE, whoever asks (the table owner included)', async () => {
    const before = await listAudit(fx.pool);
    assert.ok(before.length >= 6);
    await assert.rejects(fx.pool.query(`UPDATE ouk_meta.audit SET reason = 'nothing to see' WHERE seq = $1`, [before[0]!.seq]), /append-only: UPDATE refused/);
    await assert.rejects(fx.pool.query('DELETE FROM ouk_meta.audit WHERE seq = $1', [before[0]!.seq]), /append-only: DELETE refused/);
    await assert.rejects(fx.pool.query('DELETE FROM ouk_meta.audit'), /append-only: DELETE refused/);
    await assert.rejects(fx.pool.query('TRUNCATE ouk_meta.audit'), /append-only: TRUNCATE refused/);
    assert.deepEqual(await listAudit(fx.pool), before);
    // Appending still works (and bounds what it keeps).
    await appendAudit(fx.pool, { at: new Date(), actor: 'x'.repeat(5000), action: 'dashboard.retry', target: 'verify/abc-verify', reason: null, outcome: 'ok' });
    const last = (await listAudit(fx.pool)).at(-1)!;
    assert.equal(last.actor.length, 2000);
  });

  test('the dashboard: a retry is on the record with the operator as actor; quarantined kits are listed read-only', async () => {
    const queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
    const app = Fastify();
    try {
      await app.register(dashboardPlugin, { queues: Object.values(queues.queues), config: { dashboardUser: 'olga', dashboardPassword: 'pw-for-test', jwtPublicKey: undefined, jwtIssuer: 'stella-ouk', signIn: signInConfig({ OUK_BREAK_GLASS: 'true' }) }, logger: fx.logger, pool: fx.pool, now: () => new Date('2026-12-07T10:00:00Z') });
      const auth = `Basic ${Buffer.from('olga:pw-for-test').toString('base64')}`;
      assert.equal((await app.inject({ method: 'GET', url: '/admin/queues/api/quarantine' })).statusCode, 401);
      const list = await app.inject({ method: 'GET', url: '/admin/queues/api/quarantine', headers: { authorization: auth } });
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(JSON.parse(list.body), { quarantined: [] });
      const page = await app.inject({ method: 'GET', url: '/admin/queues/quarantine', headers: { authorization: auth } });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /Quarantined kits \(0\)/);
      const retry = await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/verify/no-such-job-verify/retry', headers: { authorization: auth } });
      // onResponse runs once the answer is out: wait for its row
      const row = await waitFor('the dashboard retry audit row', async () =>
        (await listAudit(fx.pool, { since: new Date('2026-12-07T10:00:00Z') })).find((r) => r.action === 'dashboard.retry' && r.target === 'verify/no-such-job-verify'), 5000);
      assert.equal(row.actor, 'olga');
      assert.equal(row.via, 'break-glass');
      assert.equal(row.outcome, retry.statusCode < 400 ? 'ok' : `HTTP_${retry.statusCode}`);
    } finally {
      await app.close();
      await queues.close();
      queues.connection.disconnect();
    }
  });

  test('the dashboard: its retry routes are what it audits; --since parses dates, times and spans', () => {
    assert.equal(retryTarget('PUT', '/admin/queues/api/queues/verify/abc-verify/retry'), 'verify/abc-verify');
    assert.equal(retryTarget('PUT', '/admin/queues/api/queues/load/retry/failed'), 'load/all-failed');
    assert.equal(retryTarget('GET', '/admin/queues/api/queues/verify/abc-verify/retry'), null);
    assert.equal(retryTarget('PUT', '/admin/queues/api/queues/verify/abc-verify/promote'), null);
    const now = new Date('2026-12-07T12:00:00Z');
    assert.equal(parseSince('7d', now).toISOString(), '2026-11-30T12:00:00.000Z');
    assert.equal(parseSince('2026-12-01', now).toISOString(), '2026-12-01T00:00:00.000Z');
    assert.throws(() => parseSince('last week', now), /--since last week/);
  });
});
