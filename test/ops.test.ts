/**
 * What an operator relies on: logs without secrets and with the import id,
 * operator authentication in front of the dashboard (and only there),
 * freshness in /readyz and status, and `stella ouk jobs` against real PostgreSQL and Redis.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import { Queue, Worker, type Job } from 'bullmq';
import { SignJWT, exportSPKI, generateKeyPair, type CryptoKey } from 'jose';
import { createLogger, safeUrl, withImport } from '../lib/logger.ts';
import { formatAge } from '../lib/freshness.ts';
import { loadConfig, signInConfig } from '../lib/config.ts';
import { createOperatorAuthenticator, parseBasic, safeEqual } from '../api/auth.ts';
import { dashboardPlugin, formatProgress } from '../api/dashboard.ts';
import { collectImports, renderImports } from '../cli/commands/ouk-jobs.ts';
import { STAGES, type StageName } from '../functions/context.ts';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import { OukError } from '../lib/errors.ts';
import { Redis } from 'ioredis';
import { healthRoutes } from '../api/health-routes.ts';
import { collectStatus } from '../cli/commands/ouk-status.ts';
import { createTestDatabase, hoursAgo, repoRoot, startTestS3, testConfig, testRedisPrefix, type TestDatabase, type TestRedisPrefix } from './helpers/services.ts';

const execFileP = promisify(execFile);

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('logs are JSON, carry the import id, and never carry secrets', () => {
  const out = capture();
  const log = createLogger('ops-test', { destination: out.stream, level: 'debug' });
  const ilog = withImport(log, 'imp-42', { stage: 'verify' });
  ilog.info(
    {
      req: { headers: { authorization: 'Bearer eyJhbGciOi.secret.sig', cookie: 'sid=1' } },
      token: 'tok-123',
      config: { webhookToken: 'wh-456', dashboardPassword: 'pw-789', store: { secretKey: 'sk-000' } },
      job: { data: { password: 'nested-pw' } },
    },
    'stage started',
  );
  ilog.child({ attempt: 2 }).warn('retrying');
  const lines = out.lines();
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.equal(l.importId, 'imp-42');
    assert.equal(l.name, 'ops-test');
    assert.equal(typeof l.time, 'string');
  }
  const text = JSON.stringify(lines);
  for (const secret of ['eyJhbGciOi', 'sid=1', 'tok-123', 'wh-456', 'pw-789', 'sk-000', 'nested-pw']) {
    assert.ok(!text.includes(secret), `secret ${secret} leaked into a log line`);
  }
  assert.match(text, /\[redacted\]/);
  assert.equal(safeUrl('postgres://postgres:hunter2@db:5432/x'), 'postgres://db:5432/x');
});

test('ages are printed in their two largest units', () => {
  assert.equal(formatAge(59), '59s');
  assert.equal(formatAge(3 * 3600 + 120), '3h 2m');
  assert.equal(formatAge(2 * 86400 + 2 * 3600 + 59), '2d 2h');
});

test('basic credentials: parsed, compared in constant time (timingSafeEqual on equal-length digests, user and password both), wrong ones refused', async (t) => {
  assert.deepEqual(parseBasic(`Basic ${Buffer.from('ops:pa:ss').toString('base64')}`), { user: 'ops', password: 'pa:ss' });
  assert.equal(parseBasic('Basic !!!'), null);
  // a spy on the real crypto.timingSafeEqual (api/auth.ts calls it through the same module object)
  const cmp = t.mock.method(crypto, 'timingSafeEqual');
  /** the lengths of what each comparison since the last call compared */
  const compared = (): number[][] => {
    const out = cmp.mock.calls.map((c) => c.arguments.map((b) => (b as Uint8Array).byteLength));
    cmp.mock.resetCalls();
    return out;
  };
  assert.equal(safeEqual('a', 'a'), true);
  assert.equal(safeEqual('a', 'ab'), false);
  assert.deepEqual(compared(), [[32, 32], [32, 32]], 'strings of any length are compared as SHA-256 digests, never with an early exit on length');
  const auth = createOperatorAuthenticator({ dashboardUser: 'ops', dashboardPassword: 'secret' });
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  assert.equal((await auth(basic('ops', 'secret'))).ok, true);
  assert.deepEqual(compared(), [[32, 32], [32, 32]]);
  assert.equal((await auth(basic('ops', 'Secret'))).ok, false);
  assert.deepEqual(compared(), [[32, 32], [32, 32]]);
  assert.equal((await auth(basic('root', 'a much longer wrong password'))).ok, false);
  assert.deepEqual(compared(), [[32, 32], [32, 32]], 'a wrong user name still compares the password: no early exit');
  assert.equal((await auth(undefined)).ok, false);
  // no JWT key configured: a bearer token is refused
  assert.equal((await auth('Bearer abc.def.ghi')).ok, false);
  assert.deepEqual(compared(), [], 'nothing to compare without basic credentials');
});

test('operator JWT: only a valid, operator-role token signed by the configured key opens the dashboard', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pem = await exportSPKI(publicKey);
  const other = await generateKeyPair('ES256');
  const auth = createOperatorAuthenticator({ jwtPublicKey: pem, jwtIssuer: 'stella-ouk' });
  const sign = (claims: Record<string, unknown>, key: CryptoKey = privateKey, iss = 'stella-ouk', exp = '10m'): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(iss).setSubject('alice').setIssuedAt().setExpirationTime(exp).sign(key);

  const ok = await auth(`Bearer ${await sign({ role: 'operator' })}`);
  assert.deepEqual(ok, { ok: true, principal: { method: 'jwt', subject: 'alice' } });
  assert.equal((await auth(`Bearer ${await sign({ scope: 'scan operator' })}`)).ok, true);

  const refused = async (token: string, why: RegExp): Promise<void> => {
    const r = await auth(`Bearer ${token}`);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, why);
  };
  await refused(await sign({ tier: 1000 }), /not an operator token/); // a scan token
  await refused(await sign({ role: 'operator' }, other.privateKey), /signature/);
  await refused(await sign({ role: 'operator' }, privateKey, 'someone-else'), /iss/);
  await refused(await sign({ role: 'operator' }, privateKey, 'stella-ouk', '-1m'), /exp/);
  // alg none
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ role: 'operator', iss: 'stella-ouk' })}.`, /refused/);
  // key confusion: HS256 "signed" with the public key's PEM as the secret
  const header = b64({ alg: 'HS256', typ: 'JWT' });
  const payload = b64({ role: 'operator', iss: 'stella-ouk', exp: Math.floor(Date.now() / 1000) + 600 });
  const mac = crypto.createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
  await refused(`${header}.${payload}.${mac}`, /refused/);
});

test('the dashboard answers 401 without credentials, leaves other routes alone, and is off (404) with none configured', async () => {
  const redis = testRedisPrefix('ops-dash');
  const queues = ['verify', 'unpack', 'load', 'activate'].map((n) => new Queue(n, { connection: { url: redis.redisUrl }, prefix: redis.prefix }));
  const out = capture();
  const logger = createLogger('api', { destination: out.stream });
  const app = Fastify();
  app.post('/hooks/minio', async () => ({ accepted: true }));
  app.get('/healthz', async () => ({ ok: true }));
  // the shared account is break-glass only: on with OUK_BREAK_GLASS=true
  await app.register(dashboardPlugin, { queues, config: testConfig({ dashboardUser: 'ops', dashboardPassword: 'pw', signIn: signInConfig({ OUK_BREAK_GLASS: 'true' }) }), logger });
  const off = Fastify();
  await off.register(dashboardPlugin, { queues, config: testConfig({ dashboardUser: undefined, dashboardPassword: undefined, jwtPublicKey: undefined }), logger });
  try {
    const anon = await app.inject({ url: '/admin/queues' });
    assert.equal(anon.statusCode, 401);
    assert.match(String(anon.headers['www-authenticate']), /^Basic realm=/);
    assert.equal((await app.inject({ url: '/admin/queues/api/queues' })).statusCode, 401);
    assert.equal((await app.inject({ url: '/admin/queues/static/favicon.ico' })).statusCode, 401);
    const basic = `Basic ${Buffer.from('ops:pw').toString('base64')}`;
    const page = await app.inject({ url: '/admin/queues', headers: { authorization: basic } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<html/i);
    const api = await app.inject({ url: '/admin/queues/api/queues', headers: { authorization: basic } });
    assert.equal(api.statusCode, 200);
    const names = (api.json() as { queues: { name: string; readOnlyMode: boolean; allowRetries: boolean }[] }).queues.map((q) => q.name);
    assert.deepEqual(names, ['verify', 'unpack', 'load', 'activate']);
    for (const q of (api.json() as { queues: { readOnlyMode: boolean; allowRetries: boolean }[] }).queues) {
      assert.equal(q.readOnlyMode, false);
      assert.equal(q.allowRetries, true);
    }
    // the dashboard's hook does not reach the other routes
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'POST', url: '/hooks/minio', payload: {} })).statusCode, 200);

    const disabled = await off.inject({ url: '/admin/queues' });
    assert.equal(disabled.statusCode, 404);
    assert.equal((await off.inject({ url: '/admin/queues/api/queues' })).statusCode, 404);
    assert.ok(out.lines().some((l) => l.level === 'warn' && /dashboard disabled/.test(String(l.msg))));
    assert.ok(!JSON.stringify(out.lines()).includes('pw'), 'the password reached the log');
  } finally {
    await app.close();
    await off.close();
    for (const q of queues) await q.close();
    await redis.cleanup();
  }
});

test('progress objects get a percentage the dashboard can draw', () => {
  assert.deepEqual(formatProgress({ bytes: 50, total: 200 }), { bytes: 50, total: 200, progress: 25 });
  assert.deepEqual(formatProgress({ progress: 7, rows: 1 }), { progress: 7, rows: 1 });
  assert.equal(formatProgress(42), 42);
});

// ---- stella ouk jobs, against real PostgreSQL and Redis ----

let db: TestDatabase;
let redis: TestRedisPrefix;
let pool: Pool;
let queues: Record<StageName, Queue>;

before(async () => {
  db = await createTestDatabase('ops-jobs');
  redis = testRedisPrefix('ops-jobs');
  pool = createPool(db.url, 2);
  await migrate(pool);
  queues = Object.fromEntries(STAGES.map((s) => [s, new Queue(s, { connection: { url: redis.redisUrl }, prefix: redis.prefix })])) as Record<StageName, Queue>;
});

after(async () => {
  for (const q of Object.values(queues ?? {})) await q.close();
  await pool?.end();
  await db?.drop();
  await redis?.cleanup();
});

/** Runs one job of `stage` through a real Worker until it completes or fails for good. */
async function runJob(stage: StageName, jobId: string, attempts: number, fn: (job: Job) => Promise<unknown>): Promise<void> {
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const worker = new Worker(stage, fn, { connection: { url: redis.redisUrl }, prefix: redis.prefix, autorun: false });
  worker.on('completed', (j) => j.id === jobId && done());
  worker.on('failed', (j) => j?.id === jobId && j.attemptsMade >= attempts && done());
  await queues[stage].add(stage, { importId: jobId.replace(`-${stage}`, '') }, { jobId, attempts, backoff: { type: 'fixed', delay: 10 } });
  void worker.run();
  await finished;
  await worker.close();
}

test('`stella ouk jobs` lists each stage with state, attempts, duration and error; --failed filters', async () => {
  await pool.query(
    `INSERT INTO ouk_meta.imports (id, bucket, object_key, etag, version, state, stages, created_at)
     VALUES ('good1', 'b', 'stella-ouk-2026-11-27.tar.gz', 'e1', '2026.11.27', 'active', $1, $2),
            ('bad1', 'b', 'stella-ouk-2026-11-28.tar.gz', 'e2', NULL, 'failed', '{}', $3)`,
    [JSON.stringify({ verify: { state: 'completed', attempts: 1, startedAt: '2026-11-29T10:00:00Z', finishedAt: '2026-11-29T10:00:02.5Z' } }), hoursAgo(1), new Date()],
  );
  for (const stage of STAGES.slice(1)) {
    await runJob(stage, `good1-${stage}`, 1, async (job) => {
      await job.updateProgress({ rows: 10, total: 10 });
      return { ok: true };
    });
  }
  await runJob('verify', 'bad1-verify', 2, async () => {
    throw new OukError('SIGNATURE_MISSING', 'stella-ouk-2026-11-28.tar.gz.sig has not arrived: upload it, then retry');
  });

  const all = await collectImports({ pool, queues }, {});
  assert.deepEqual(all.map((v) => v.id), ['bad1', 'good1']);
  const good = all[1];
  // verify's job is gone from Redis here: the record answers
  assert.deepEqual({ ...good.stages[0], durationSeconds: good.stages[0].durationSeconds }, {
    stage: 'verify', state: 'completed', attempts: 1, maxAttempts: null, durationSeconds: 2.5, error: null, progress: null, source: 'record',
  });
  for (const s of good.stages.slice(1)) {
    assert.equal(s.state, 'completed');
    assert.equal(s.attempts, 1);
    assert.equal(s.source, 'queue');
    assert.equal(typeof s.durationSeconds, 'number');
  }
  const bad = all[0];
  assert.equal(bad.stages[0].state, 'failed');
  assert.equal(bad.stages[0].attempts, 2);
  assert.equal(bad.stages[0].maxAttempts, 2);
  assert.match(bad.stages[0].error ?? '', /\.sig has not arrived/);
  assert.equal(bad.stages[1].state, '-');

  const failed = await collectImports({ pool, queues }, { failed: true });
  assert.deepEqual(failed.map((v) => v.id), ['bad1']);
  const table = renderImports(failed, true);
  assert.match(table, /verify\s+failed\s+attempts 2\/2/);
  assert.match(table, /stella ouk retry bad1/);

  // the command itself, as an operator runs it
  const bin = path.join(repoRoot, 'bin', 'stella.js');
  const env = { ...process.env, DATABASE_URL: db.url, REDIS_URL: redis.redisUrl, OUK_QUEUE_PREFIX: redis.prefix, STELLA_STATE_DIR: path.join(repoRoot, 'test', 'out', 'ops-state') };
  const { stdout } = await execFileP(process.execPath, [bin, 'ouk', 'jobs', '--failed', '--json'], { env, cwd: repoRoot });
  const parsed = JSON.parse(stdout) as { imports: { id: string; stages: { stage: string; state: string; attempts: number; error: string | null }[] }[] };
  assert.deepEqual(parsed.imports.map((i) => i.id), ['bad1']);
  assert.equal(parsed.imports[0].stages[0].state, 'failed');
  const human = await execFileP(process.execPath, [bin, 'ouk', 'jobs'], { env, cwd: repoRoot });
  assert.match(human.stdout, /good1 {2}2026\.11\.27 {2}ACTIVE/);
  assert.match(human.stdout, /load\s+completed\s+attempts 1\/1/);
});

test('/readyz and `stella ouk status` agree on freshness: not ready without a DB, a warning when a feed is over its budget', async () => {
  const s3 = await startTestS3('ops-readyz');
  const conn = new Redis(redis.redisUrl, { maxRetriesPerRequest: 1 });
  const app = Fastify();
  const { freshness } = loadConfig({ OUK_MAX_AGE: 'nvd:2d' });
  await app.register(healthRoutes, { pool, redis: conn, store: s3.store, bucket: s3.bucket, freshness, airgap: false });
  const manifest = (nvdHoursAgo: number) => JSON.stringify({ created: hoursAgo(nvdHoursAgo).toISOString(), feeds: [{ name: 'nvd', snapshot: hoursAgo(nvdHoursAgo).toISOString(), records: 3, skipped: 0 }] });
  try {
    const health = await app.inject({ url: '/healthz' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok', airgap: { mode: 'connected', guard: false } });
    await pool.query(`UPDATE ouk_meta.active_db SET active_import = NULL, active_version = NULL, active_schema = NULL, activated_at = NULL`);
    const none = await app.inject({ url: '/readyz' });
    assert.equal(none.statusCode, 503);
    assert.match(JSON.stringify(none.json()), /activeDb: no vulnerability DB is active/);

    await pool.query(`UPDATE ouk_meta.imports SET manifest = $1 WHERE id = 'good1'`, [manifest(3)]);
    await pool.query(`UPDATE ouk_meta.active_db SET active_import = 'good1', active_version = '2026.11.27', active_schema = 'ouk_db_x', activated_at = $1`, [hoursAgo(3)]);
    const fresh = await app.inject({ url: '/readyz' });
    assert.equal(fresh.statusCode, 200);
    assert.deepEqual((fresh.json() as { warnings: string[] }).warnings, []);

    await pool.query(`UPDATE ouk_meta.imports SET manifest = $1 WHERE id = 'good1'`, [manifest(50)]);
    const old = await app.inject({ url: '/readyz' });
    assert.equal(old.statusCode, 200, 'an old DB still serves scans');
    const body = old.json() as { warnings: string[]; checks: { activeDb: { stale: boolean }; freshness: { stale: string[] } } };
    assert.equal(body.checks.activeDb.stale, true);
    assert.deepEqual(body.checks.freshness.stale, ['nvd']);
    assert.equal(body.warnings.length, 1);
    assert.match(body.warnings[0], /feed nvd is 2d 2h old .*over its budget of 2d \(OUK_MAX_AGE\)/);
    const status = await collectStatus(pool, freshness, 5);
    assert.deepEqual(status.warnings, body.warnings);
    assert.equal(status.active?.stale, true);
  } finally {
    await app.close();
    conn.disconnect();
    await s3.close();
  }
});
