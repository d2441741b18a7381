/**
 * Sessions, the sign-in page, roles, CSRF, lockout and the audit trail's
 * person: the API's own routes (api/session-routes.ts, api/access.ts, the
 * dashboard, api/operator-routes.ts) in an in-process fastify listening on a
 * loopback port, against real PostgreSQL (its own database) and Redis (its own
 * prefix, for the dashboard's queues). People sign in with the break-glass
 * account and with a PasswordAuthenticator written here (the directory's
 * shape; a real directory is not the point of these tests). The clock is
 * injected: timeouts and lockouts are reached by moving it, never by waiting.
 * The apps trust X-Forwarded-For (as behind a reverse proxy), so each test
 * signs in from its own address and no test's failures lock another's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportPKCS8, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createAccess } from '../api/access.ts';
import { dashboardPlugin } from '../api/dashboard.ts';
import { operatorRoutes } from '../api/operator-routes.ts';
import { sessionRoutes } from '../api/session-routes.ts';
import { sbomRoutes } from '../api/sbom-routes.ts';
import { tokenRoutes } from '../api/token-routes.ts';
import { readPasswordLine, requestPersonalToken } from '../cli/token/request.ts';
import { Readable } from 'node:stream';
import { safeNext } from '../api/sign-in-page.ts';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import { listAudit } from '../infra/audit.ts';
import { pruneSessions } from '../infra/sessions.ts';
import type { PasswordAuthenticator, Person } from '../identity/person.ts';
import { loadConfig, pipelineSettings, signInConfig, type Config } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import type { Role } from '../lib/tokens.ts';
import { createRedis } from '../queue/connection.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { createTestDatabase, testConfig, testRedisPrefix, type TestDatabase, type TestRedisPrefix } from './helpers/services.ts';

const KEEPER = 'keeper';
const KEEPER_PW = 'break-glass-pw-7c1f';
const PASSWORDS: Record<string, { password: string; roles: Role[] }> = {
  alice: { password: 'alice-pw-3f9a', roles: ['viewer'] },
  olaf: { password: 'olaf-pw-81bd', roles: ['operator'] },
  norole: { password: 'norole-pw-55e0', roles: [] },
};
const SECRETS = [KEEPER_PW, ...Object.values(PASSWORDS).map((p) => p.password), 'wrong-pw-9d2e'];

/** The directory's shape, written for the test: three people, and a switch that takes it down. */
class TestDirectory implements PasswordAuthenticator {
  down = false;
  async authenticate(username: string, password: string): Promise<Person> {
    if (this.down) throw new OukError('DIRECTORY_UNAVAILABLE', 'the directory does not answer (test)', { retryable: true });
    const entry = PASSWORDS[username];
    if (!entry || entry.password !== password) throw new OukError('LOGIN_FAILED', 'the user name or the password is wrong (or the account may not sign in here): check both and try again');
    return { sub: `uid=${username},ou=people,dc=example,dc=org`, username, roles: entry.roles, via: 'ldap' };
  }
}

let db: TestDatabase;
let pool: Pool;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let app: FastifyInstance;
let plain: FastifyInstance;
let base: string;
let plainBase: string;
let privateKey: CryptoKey;
const directory = new TestDirectory();
let clock = new Date('2026-12-07T10:00:00Z');
const advance = (seconds: number): void => {
  clock = new Date(clock.getTime() + seconds * 1000);
};
const logLines: string[] = [];
const logger = createLogger('api', {
  destination: new Writable({
    write(chunk: Buffer, _e, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  }),
});
const SIGN_IN = signInConfig({ OUK_BREAK_GLASS: 'true', OUK_SESSION_IDLE_SECONDS: '600', OUK_SESSION_MAX_SECONDS: '3600', OUK_LOGIN_MAX_FAILURES: '3', OUK_LOGIN_MAX_ADDRESS_FAILURES: '5' });

async function serve(config: Config, dir: PasswordAuthenticator | undefined): Promise<{ server: FastifyInstance; url: string }> {
  const server = Fastify({ trustProxy: true, loggerInstance: logger }) as unknown as FastifyInstance;
  const access = createAccess({ config, pool, directory: dir, now: () => clock, logger });
  await server.register(sessionRoutes, { access, logger });
  await server.register(dashboardPlugin, { queues: Object.values(queues.queues), config, logger, pool, access });
  await server.register(operatorRoutes, { access, pool, queues, settings: pipelineSettings({}), logger });
  await server.register(sbomRoutes, { pool, config, logger, access });
  await server.register(tokenRoutes, { access, config, logger });
  await server.listen({ port: 0, host: '127.0.0.1' });
  const addr = server.server.address();
  return { server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

before(async () => {
  db = await createTestDatabase('sessions');
  pool = createPool(db.url, 4);
  await migrate(pool);
  redis = testRedisPrefix('sessions');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  const keys = await generateKeyPair('ES256', { extractable: true });
  privateKey = keys.privateKey;
  const common = { dashboardUser: KEEPER, dashboardPassword: KEEPER_PW, jwtPublicKey: await exportSPKI(keys.publicKey), jwtIssuer: 'stella-ouk' };
  // people issue their own tokens with the key of STELLA_JWT_PUBLIC_KEY
  ({ server: app, url: base } = await serve(testConfig({ ...common, signIn: { ...SIGN_IN, tokenSigningKey: await exportPKCS8(keys.privateKey) } }), directory));
  // break-glass off (the default), served behind TLS: Secure cookies
  ({ server: plain, url: plainBase } = await serve(testConfig({ ...common, signIn: signInConfig({ OUK_SECURE_COOKIES: 'true' }) }), directory));
});

after(async () => {
  await app?.close();
  await plain?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await pool?.end();
  await db?.drop();
});

let nextAddress = 10;
/** A fresh client address (X-Forwarded-For) for one test's requests. */
const address = (): string => `192.0.2.${nextAddress++}`;

interface Session {
  cookie: string;
  csrf: string;
  from: string;
}

function login(username: string, password: string, from: string, at = base): Promise<Response> {
  return fetch(`${at}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from }, body: JSON.stringify({ username, password }), redirect: 'manual' });
}

async function signIn(username: string, password: string, from = address()): Promise<Session> {
  const r = await login(username, password, from);
  assert.equal(r.status, 200, await r.clone().text());
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const body = (await r.json()) as { csrfToken: string };
  return { cookie, csrf: body.csrfToken, from };
}

function as(s: Session, path: string, init: { method?: string; csrf?: string | null; accept?: string; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = { cookie: s.cookie, 'x-forwarded-for': s.from };
  const csrf = init.csrf === undefined ? s.csrf : init.csrf;
  if (csrf !== null) headers['x-csrf-token'] = csrf;
  if (init.accept) headers.accept = init.accept;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), redirect: 'manual' });
}

async function errorOf(r: Response): Promise<{ code: string; message: string }> {
  return ((await r.json()) as { error: { code: string; message: string } }).error;
}

describe('signing in', () => {
  test('the break-glass account signs in (audited); the cookie is HttpOnly, SameSite=Strict, and Secure behind TLS; /auth/me names the person', async () => {
    const from = address();
    const r = await login(KEEPER, KEEPER_PW, from);
    assert.equal(r.status, 200);
    const setCookie = r.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^ouk_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    const me = await fetch(`${base}/auth/me`, { headers: { cookie: setCookie.split(';')[0]!, 'x-forwarded-for': from } });
    assert.equal(me.status, 200);
    const body = (await me.json()) as Record<string, unknown>;
    assert.deepEqual({ sub: body.sub, username: body.username, roles: body.roles, via: body.via }, { sub: KEEPER, username: KEEPER, roles: ['admin'], via: 'break-glass' });
    const row = (await listAudit(pool)).find((a) => a.action === 'auth.break-glass' && a.target === from);
    assert.ok(row, 'a break-glass sign-in is on the audit trail');
    assert.equal(row.actor, KEEPER);
    assert.equal(row.via, 'break-glass');
    // only the hash of the id is stored
    const id = setCookie.split(';')[0]!.split('=')[1]!;
    const stored = await pool.query<{ id_hash: Buffer }>('SELECT id_hash FROM ouk_meta.sessions');
    assert.ok(stored.rows.length >= 1 && stored.rows.every((x) => !x.id_hash.toString('latin1').includes(id) && x.id_hash.length === 32));

    // a directory person: /auth/me with the directory's sub
    const olaf = await signIn('olaf', PASSWORDS.olaf!.password);
    const who = (await (await as(olaf, '/auth/me')).json()) as Record<string, unknown>;
    assert.equal(who.sub, 'uid=olaf,ou=people,dc=example,dc=org');
    assert.deepEqual(who.roles, ['operator']);
    assert.equal(who.via, 'ldap');

    // behind TLS (OUK_SECURE_COOKIES=true): Secure; and break-glass is off by default there
    const off = await login(KEEPER, KEEPER_PW, address(), plainBase);
    assert.equal(off.status, 401);
    assert.equal((await errorOf(off)).code, 'LOGIN_FAILED');
    const tls = await login('alice', PASSWORDS.alice!.password, address(), plainBase);
    assert.equal(tls.status, 200);
    assert.match(tls.headers.get('set-cookie') ?? '', /^ouk_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
  });

  test('an unknown user, a wrong password and a person without a role get the same 401 LOGIN_FAILED; a directory that is down is 503', async () => {
    const answers = await Promise.all([login('nobody-here', 'wrong-pw-9d2e', address()), login('alice', 'wrong-pw-9d2e', address()), login('norole', PASSWORDS.norole!.password, address())]);
    const bodies = await Promise.all(answers.map((r) => r.text()));
    for (const r of answers) assert.equal(r.status, 401);
    assert.equal(new Set(bodies).size, 1, `one answer for all three: ${bodies.join(' | ')}`);
    assert.equal((JSON.parse(bodies[0]!) as { error: { code: string } }).error.code, 'LOGIN_FAILED');
    for (const r of answers) assert.equal(r.headers.get('set-cookie'), null);

    directory.down = true;
    try {
      const down = await login('alice', PASSWORDS.alice!.password, address());
      assert.equal(down.status, 503);
      assert.equal((await errorOf(down)).code, 'DIRECTORY_UNAVAILABLE');
      assert.equal(down.headers.get('set-cookie'), null);
    } finally {
      directory.down = false;
    }
    // malformed bodies are 400, never a 500
    for (const body of ['{"username": 1, "password": "x"}', '[]', '{"username": "a\\u001b[2J", "password": "x"}']) {
      const r = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': address() }, body });
      assert.equal(r.status, 400, body);
    }
  });

  test('the sign-in page: a page request without a session is sent there, the form signs in and returns to it; a sign-in from another site is refused', async () => {
    const from = address();
    const dash = await fetch(`${base}/admin/queues/queue/verify?status=failed`, { headers: { accept: 'text/html', 'x-forwarded-for': from }, redirect: 'manual' });
    assert.equal(dash.status, 303);
    assert.equal(dash.headers.get('location'), `/auth/login?next=${encodeURIComponent('/admin/queues/queue/verify?status=failed')}`);
    // a script without a session gets 401, not a page
    const api = await fetch(`${base}/admin/queues/api/queues`, { headers: { 'x-forwarded-for': from } });
    assert.equal(api.status, 401);
    assert.equal((await errorOf(api)).code, 'SESSION_REQUIRED');

    const page = await fetch(`${base}${dash.headers.get('location')}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<form method="post" action="\/auth\/login">/);
    assert.match(html, /name="next" value="\/admin\/queues\/queue\/verify\?status=failed"/);

    const form = (fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from, ...headers }, body: new URLSearchParams(fields).toString(), redirect: 'manual' });
    const wrong = await form({ username: 'olaf', password: 'wrong-pw-9d2e', next: '/admin/queues' });
    assert.equal(wrong.status, 401);
    const wrongPage = await wrong.text();
    assert.match(wrongPage, /the user name or the password is wrong/);
    assert.ok(!wrongPage.includes('wrong-pw-9d2e'), 'the password is never echoed');
    const ok = await form({ username: 'alice', password: PASSWORDS.alice!.password, next: '/admin/queues/queue/verify?status=failed' }, { origin: base });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/admin/queues/queue/verify?status=failed');
    const cookie = (ok.headers.get('set-cookie') ?? '').split(';')[0]!;
    const board = await fetch(`${base}/admin/queues`, { headers: { cookie, accept: 'text/html', 'x-forwarded-for': from } });
    assert.equal(board.status, 200);
    const boardHtml = await board.text();
    assert.match(boardHtml, /id="ouk-session"/);
    assert.match(boardHtml, /alice \(viewer\)/);
    assert.match(boardHtml, /name="_csrf" value="[A-Za-z0-9_-]{43}"/);

    const forged = await form({ username: 'alice', password: PASSWORDS.alice!.password }, { origin: 'http://evil.example' });
    assert.equal(forged.status, 403);
    assert.equal(forged.headers.get('set-cookie'), null);
    // next is only ever a path here
    assert.equal(safeNext('//evil.example/x'), '/admin/queues');
    assert.equal(safeNext('https://evil.example/'), '/admin/queues');
    assert.equal(safeNext('/\\evil.example'), '/admin/queues');
    assert.equal(safeNext('/admin/queues/quarantine'), '/admin/queues/quarantine');
  });
});

describe('timeouts and sign-out', () => {
  test('a session ends after its idle timeout, and after its absolute timeout however busy', async () => {
    const idle = await signIn('alice', PASSWORDS.alice!.password);
    advance(599);
    assert.equal((await as(idle, '/auth/me')).status, 200, 'used within the idle timeout');
    advance(599);
    assert.equal((await as(idle, '/auth/me')).status, 200, 'each use moves the idle timeout on');
    advance(601);
    const gone = await as(idle, '/auth/me');
    assert.equal(gone.status, 401);
    assert.equal((await errorOf(gone)).code, 'SESSION_REQUIRED');

    const busy = await signIn('alice', PASSWORDS.alice!.password);
    for (let t = 0; t < 3500; t += 500) {
      advance(500);
      assert.equal((await as(busy, '/auth/me')).status, 200, `still in at ${t + 500} s`);
    }
    advance(200);
    assert.equal((await as(busy, '/auth/me')).status, 401, 'past OUK_SESSION_MAX_SECONDS whatever the use');
    // ended sessions are pruned a day later
    advance(2 * 86_400);
    assert.ok((await pruneSessions(pool, clock, SIGN_IN.sessionIdleSeconds)) >= 2);
  });

  test('sign-out needs the CSRF token, ends the session everywhere and clears the cookie', async () => {
    const s = await signIn('olaf', PASSWORDS.olaf!.password);
    const forged = await as(s, '/auth/logout', { method: 'POST', csrf: null });
    assert.equal(forged.status, 403);
    assert.equal((await errorOf(forged)).code, 'CSRF_REJECTED');
    assert.equal((await as(s, '/auth/me')).status, 200, 'a forged sign-out ends nothing');
    const out = await as(s, '/auth/logout', { method: 'POST' });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^ouk_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    assert.equal((await as(s, '/auth/me')).status, 401, 'the old cookie no longer signs anyone in');
    // the form's sign-out (the dashboard's bar) works the same, with _csrf in the body
    const t = await signIn('olaf', PASSWORDS.olaf!.password);
    const formOut = await fetch(`${base}/auth/logout`, { method: 'POST', headers: { cookie: t.cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': t.from }, body: `_csrf=${t.csrf}`, redirect: 'manual' });
    assert.equal(formOut.status, 303);
    assert.equal(formOut.headers.get('location'), '/auth/login');
    assert.equal((await as(t, '/auth/me')).status, 401);
  });
});

describe('roles, CSRF and the audit trail', () => {
  const missing = 'ab12cd34ef56ab12cd34ef56';

  test('a viewer is refused on retry and on the dashboard retry (403 ROLE_REQUIRED naming operator)', async () => {
    const alice = await signIn('alice', PASSWORDS.alice!.password);
    const r = await as(alice, `/api/v1/imports/${missing}/retry`, { method: 'POST', body: {} });
    assert.equal(r.status, 403);
    const e = await errorOf(r);
    assert.equal(e.code, 'ROLE_REQUIRED');
    assert.match(e.message, /needs the operator role/);
    const board = await as(alice, '/admin/queues/api/queues/verify/some-job-verify/retry', { method: 'PUT' });
    assert.equal(board.status, 403);
    assert.equal((await errorOf(board)).code, 'ROLE_REQUIRED');
    assert.equal((await as(alice, '/admin/queues/api/queues')).status, 200, 'a viewer sees the dashboard');
  });

  test('stored SBOMs with a session: a viewer reads, only an operator removes, and only with the CSRF token', async () => {
    const alice = await signIn('alice', PASSWORDS.alice!.password);
    const olaf = await signIn('olaf', PASSWORDS.olaf!.password);
    const list = await as(alice, '/api/v1/sboms');
    assert.notEqual(list.status, 401);
    assert.notEqual(list.status, 403);
    const viewer = await as(alice, '/api/v1/sboms/web-frontend', { method: 'DELETE' });
    assert.equal(viewer.status, 403);
    assert.equal((await errorOf(viewer)).code, 'ROLE_REQUIRED');
    const forged = await as(olaf, '/api/v1/sboms/web-frontend', { method: 'DELETE', csrf: null });
    assert.equal(forged.status, 403);
    assert.equal((await errorOf(forged)).code, 'CSRF_REJECTED');
    const gone = await as(olaf, '/api/v1/sboms/web-frontend', { method: 'DELETE' });
    assert.equal(gone.status, 404);
    assert.equal((await errorOf(gone)).code, 'SBOM_NOT_FOUND');
    // no session, no token: still 401 TOKEN_REQUIRED
    assert.equal((await fetch(`${base}/api/v1/sboms`)).status, 401);
  });

  test('a state-changing request with a session cookie needs its CSRF token; a Bearer token needs none', async () => {
    const olaf = await signIn('olaf', PASSWORDS.olaf!.password);
    const other = await signIn('olaf', PASSWORDS.olaf!.password);
    for (const csrf of [null, '', 'x'.repeat(43), other.csrf]) {
      const r = await as(olaf, `/api/v1/imports/${missing}/retry`, { method: 'POST', csrf, body: {} });
      assert.equal(r.status, 403, `token ${csrf}`);
      assert.equal((await errorOf(r)).code, 'CSRF_REJECTED');
    }
    const board = await as(olaf, '/admin/queues/api/queues/verify/some-job-verify/retry', { method: 'PUT', csrf: null });
    assert.equal(board.status, 403);
    assert.equal((await errorOf(board)).code, 'CSRF_REJECTED');

    const token = await new SignJWT({ role: 'operator' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('stella-ouk').setSubject('ci-robot').setIssuedAt(Math.floor(clock.getTime() / 1000)).setExpirationTime(Math.floor(clock.getTime() / 1000) + 600).sign(privateKey);
    const bearer = await fetch(`${base}/api/v1/imports/${missing}/retry`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(bearer.status, 404, 'past the guard: the import does not exist');
    const viewerToken = await new SignJWT({ role: 'viewer' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('stella-ouk').setSubject('ci-robot').setIssuedAt(Math.floor(clock.getTime() / 1000)).setExpirationTime(Math.floor(clock.getTime() / 1000) + 600).sign(privateKey);
    assert.equal((await fetch(`${base}/api/v1/rollback`, { method: 'POST', headers: { authorization: `Bearer ${viewerToken}` } })).status, 403);
  });

  test("an operator's retry, from the API and from the dashboard, is on the audit trail with the person and how they signed in", async () => {
    const olaf = await signIn('olaf', PASSWORDS.olaf!.password);
    const since = clock;
    const r = await as(olaf, `/api/v1/imports/${missing}/retry`, { method: 'POST', body: { reason: 'the .sig is there now' } });
    assert.equal(r.status, 404);
    assert.equal((await errorOf(r)).code, 'IMPORT_NOT_FOUND');
    const board = await as(olaf, '/admin/queues/api/queues/verify/some-job-verify/retry', { method: 'PUT' });
    assert.ok(board.status >= 400, 'no such job (bull-board says so), but the attempt is on record');
    const rollback = await as(olaf, '/api/v1/rollback', { method: 'POST' });
    assert.equal(rollback.status, 409);
    assert.equal((await errorOf(rollback)).code, 'NOTHING_ACTIVE');

    const rows = (await listAudit(pool, { since })).filter((a) => a.actor === 'uid=olaf,ou=people,dc=example,dc=org');
    const retry = rows.find((a) => a.action === 'retry');
    assert.ok(retry);
    assert.deepEqual({ via: retry.via, target: retry.target, reason: retry.reason, outcome: retry.outcome }, { via: 'ldap', target: missing, reason: 'the .sig is there now', outcome: 'IMPORT_NOT_FOUND' });
    // onResponse writes the dashboard's row once the answer is out
    let dash;
    for (let i = 0; i < 50 && !dash; i++) {
      dash = (await listAudit(pool, { since })).find((a) => a.action === 'dashboard.retry' && a.actor === 'uid=olaf,ou=people,dc=example,dc=org');
      if (!dash) await new Promise((res) => setImmediate(res));
    }
    assert.ok(dash, 'the dashboard retry is on the audit trail');
    assert.equal(dash.target, 'verify/some-job-verify');
    assert.equal(dash.via, 'ldap');
    assert.ok(rows.some((a) => a.action === 'rollback' && a.outcome === 'NOTHING_ACTIVE'));
  });
});

describe('personal tokens', () => {
  test('a signed-in person issues a token for themself, with a role no higher than theirs; it works as Bearer and its use is audited with them', async () => {
    const olaf = await signIn('olaf', PASSWORDS.olaf!.password);
    const since = clock;
    assert.equal((await as(olaf, '/auth/tokens', { method: 'POST', csrf: null, body: {} })).status, 403, 'CSRF applies');
    const r = await as(olaf, '/auth/tokens', { method: 'POST', body: { role: 'operator', ttl: '7d' } });
    assert.equal(r.status, 201, await r.clone().text());
    const issued = (await r.json()) as { token: string; sub: string; role: string; jti: string; expiresAt: string };
    assert.equal(issued.sub, 'uid=olaf,ou=people,dc=example,dc=org');
    assert.equal(issued.role, 'operator');
    assert.equal(issued.expiresAt, new Date(Math.floor(clock.getTime() / 1000) * 1000 + 7 * 86_400_000).toISOString());
    const use = await fetch(`${base}/api/v1/imports/ab12cd34ef56ab12cd34ef99/retry`, { method: 'POST', headers: { authorization: `Bearer ${issued.token}` } });
    assert.equal(use.status, 404, 'past the guard');
    const rows = (await listAudit(pool, { since })).filter((a) => a.actor === issued.sub);
    assert.ok(rows.some((a) => a.action === 'token.issue' && a.via === 'ldap' && a.target === `jti ${issued.jti} role operator until ${issued.expiresAt}`));
    assert.ok(rows.some((a) => a.action === 'retry' && a.via === 'token'));

    const higher = await as(olaf, '/auth/tokens', { method: 'POST', body: { role: 'admin' } });
    assert.equal(higher.status, 403);
    assert.equal((await errorOf(higher)).code, 'ROLE_REQUIRED');
    const tooLong = await as(olaf, '/auth/tokens', { method: 'POST', body: { ttl: '400d' } });
    assert.equal(tooLong.status, 400);
    assert.equal((await as(olaf, '/auth/tokens', { method: 'POST', body: { role: 'root' } })).status, 400);
    // a token never mints another
    const chain = await fetch(`${base}/auth/tokens`, { method: 'POST', headers: { authorization: `Bearer ${issued.token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(chain.status, 403);
    // without OUK_TOKEN_SIGNING_KEY: off
    const elsewhere = await login('alice', PASSWORDS.alice!.password, address(), plainBase);
    const cookie = (elsewhere.headers.get('set-cookie') ?? '').split(';')[0]!;
    const csrf = ((await elsewhere.json()) as { csrfToken: string }).csrfToken;
    const off = await fetch(`${plainBase}/auth/tokens`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json', 'x-forwarded-for': address() }, body: '{}' });
    assert.equal(off.status, 503);
    assert.equal((await errorOf(off)).code, 'PERSONAL_TOKENS_OFF');
  });

  test('stella token request: signs in, asks for the token, signs out; the password comes from stdin', async () => {
    const password = await readPasswordLine(Readable.from([`${PASSWORDS.alice!.password}\n`]));
    const mine = await requestPersonalToken({ api: base, user: 'alice', password, ttl: '1d' });
    assert.equal(mine.role, 'viewer');
    assert.equal(mine.sub, 'uid=alice,ou=people,dc=example,dc=org');
    const list = await fetch(`${base}/api/v1/sboms`, { headers: { authorization: `Bearer ${mine.token}` } });
    assert.notEqual(list.status, 401);
    await assert.rejects(requestPersonalToken({ api: base, user: 'alice', password, role: 'operator' }), (e: OukError) => e.code === 'ROLE_REQUIRED');
    await assert.rejects(requestPersonalToken({ api: base, user: 'alice', password: 'wrong-pw-9d2e' }), (e: OukError) => e.code === 'LOGIN_FAILED');
    await assert.rejects(readPasswordLine(Readable.from([''])), (e: OukError) => e.code === 'USAGE');
    // its sessions ended: none of alice's is left open by the command
    const open = await pool.query("SELECT count(*)::int AS n FROM ouk_meta.sessions WHERE username = 'alice' AND ended_at IS NULL AND address = '127.0.0.1'");
    assert.equal(open.rows[0].n, 0);
  });
});

describe('abuse', () => {
  test('an account backs off, then locks after OUK_LOGIN_MAX_FAILURES, for a name that exists and one that does not alike', async () => {
    for (const [user, good] of [
      ['olaf', PASSWORDS.olaf!.password],
      ['ghost', null],
    ] as const) {
      const from = () => address();
      assert.equal((await login(user, 'wrong-pw-9d2e', from())).status, 401);
      assert.equal((await login(user, 'wrong-pw-9d2e', from())).status, 401);
      // two failures: no attempt is checked for 1 s (the right password included), from any address
      const backoff = await login(user, good ?? 'x', from());
      assert.equal(backoff.status, 429, user);
      assert.equal((await errorOf(backoff)).code, 'LOGIN_LOCKED');
      assert.equal(backoff.headers.get('retry-after'), '1');
      advance(2);
      assert.equal((await login(user, 'wrong-pw-9d2e', from())).status, 401);
      // the third failure locks the account for OUK_LOGIN_LOCK_SECONDS
      advance(60);
      const locked = await login(user, good ?? 'x', from());
      assert.equal(locked.status, 429);
      assert.equal(locked.headers.get('retry-after'), String(900 - 60));
      advance(900);
      if (good) assert.equal((await login(user, good, from())).status, 200, 'the lockout ends');
    }
  });

  test('an address locks after OUK_LOGIN_MAX_ADDRESS_FAILURES, whichever names it tries; other addresses are not held back', async () => {
    const from = address();
    for (let i = 0; i < 5; i++) assert.equal((await login(`spray-${i}`, 'wrong-pw-9d2e', from)).status, 401);
    const r = await login('alice', PASSWORDS.alice!.password, from);
    assert.equal(r.status, 429);
    assert.equal((await errorOf(r)).code, 'LOGIN_LOCKED');
    assert.equal((await login('alice', PASSWORDS.alice!.password, address())).status, 200);
    // break-glass over HTTP Basic is counted the same way
    const basicFrom = address();
    const basic = (pw: string): Promise<Response> => fetch(`${base}/admin/queues/api/queues`, { headers: { authorization: `Basic ${Buffer.from(`${KEEPER}:${pw}`).toString('base64')}`, 'x-forwarded-for': basicFrom } });
    assert.equal((await basic(KEEPER_PW)).status, 200);
    advance(3600);
    for (let i = 0; i < 5; i++) assert.equal((await basic('wrong-pw-9d2e')).status, i < 2 ? 401 : 429);
    assert.equal((await basic(KEEPER_PW)).status, 429);
  });

  test('no password reaches the log', () => {
    const text = logLines.join('');
    assert.ok(text.length > 0);
    for (const s of SECRETS) assert.ok(!text.includes(s), `a password reached the log: ${s.slice(0, 5)}…`);
  });
});

test('the settings: break-glass is off unless OUK_BREAK_GLASS=true; cookies are Secure when told (OUK_SECURE_COOKIES)', () => {
  assert.equal(loadConfig({}).signIn.breakGlass, false);
  assert.equal(loadConfig({ OUK_BREAK_GLASS: 'true' }).signIn.breakGlass, true);
  assert.equal(loadConfig({}).signIn.secureCookies, false);
  assert.equal(loadConfig({ OUK_SECURE_COOKIES: 'true' }).signIn.secureCookies, true);
  assert.throws(() => loadConfig({ OUK_SESSION_IDLE_SECONDS: 'soon' }), /OUK_SESSION_IDLE_SECONDS=soon/);
  // behind a reverse proxy: whose X-Forwarded-For is believed
  assert.equal(loadConfig({}).trustProxy, undefined);
  assert.deepEqual(loadConfig({ STELLA_TRUST_PROXY: '10.0.0.1, 10.1.0.0/16' }).trustProxy, ['10.0.0.1', '10.1.0.0/16']);
  assert.throws(() => loadConfig({ STELLA_TRUST_PROXY: 'true' }), /STELLA_TRUST_PROXY=true/);
});
