/**
 * Signing in, end to end: the API's sign-in routes as api/main.ts mounts them
 * (api/sign-in.ts: the directory, single sign-on, one way a session starts),
 * the dashboard, real PostgreSQL (its own database) and Redis (its own
 * prefix), a real OpenLDAP (test/helpers/slapd.ts, over TLS) and a real
 * OpenID provider (test/helpers/oidc-provider.ts), and headless Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core).
 *
 * In the browser: alice (LDAP, ouk-operators) signs in on the sign-in page,
 * retries a failed verify job on the dashboard (the audit trail names her DN
 * and `ldap`) and signs out; olivia signs in through the provider's own login
 * and consent pages and lands on the dashboard page she asked for, /auth/me
 * saying `oidc`; bob
 * (LDAP, a viewer through a nested group) sees the dashboard and is refused the
 * retry (403 ROLE_REQUIRED). Against the API: a filter-injection user name is
 * LOGIN_FAILED, an account locked by the lockout is 429 LOGIN_LOCKED (the clock
 * is injected and moved, never waited on), the directory stopped is 503
 * DIRECTORY_UNAVAILABLE.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { Worker } from 'bullmq';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createAccess } from '../api/access.ts';
import { dashboardPlugin } from '../api/dashboard.ts';
import { registerSignIn } from '../api/sign-in.ts';
import { LdapAuthenticator } from '../identity/ldap/index.ts';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import { listAudit } from '../infra/audit.ts';
import { ldapSettings, oidcSettings, signInConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { bullConnection, createRedis } from '../queue/connection.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startSlapd, type TestSlapd } from './helpers/slapd.ts';
import { startTestProvider, type TestProvider } from './helpers/oidc-provider.ts';
import { createTestDatabase, freePort, repoRoot, testConfig, testRedisPrefix, tmpDir, type TestDatabase, type TestRedisPrefix } from './helpers/services.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUT_DIR = path.join(repoRoot, 'test', 'out');
const ALICE_DN = 'uid=alice,ou=people,dc=example,dc=org';
const OPERATORS = 'cn=ouk-operators,ou=groups,dc=example,dc=org';
const JOB_ID = 'identity-e2e-verify';

let db: TestDatabase;
let pool: Pool;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let slapd: TestSlapd;
let provider: TestProvider;
let app: FastifyInstance;
let base: string;
let browser: BrowserContext | undefined;
let clock = new Date('2026-12-07T10:00:00Z');
const logLines: string[] = [];
const logger = createLogger('api', {
  destination: new Writable({
    write(chunk: Buffer, _e, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  }),
});

/** A verify job that failed for good, as a bundle without its .sig leaves one. */
async function failedVerifyJob(): Promise<void> {
  const queue = queues.queues.verify;
  const worker = new Worker(queue.name, async () => {
    throw new Error('SIGNATURE_MISSING: the bundle has no .sig (test)');
  }, { connection: bullConnection({ kind: 'server', url: redis.redisUrl }), prefix: redis.prefix, autorun: false });
  const failed = new Promise<void>((resolve) => worker.once('failed', () => resolve()));
  await queue.add('verify', { test: true }, { jobId: JOB_ID, attempts: 1 });
  void worker.run();
  await failed;
  await worker.close();
  assert.equal(await queue.getJobState(JOB_ID), 'failed');
}

before(async () => {
  db = await createTestDatabase('identity-e2e');
  pool = createPool(db.url, 4);
  await migrate(pool);
  redis = testRedisPrefix('identity-e2e');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  slapd = await startSlapd('identity-e2e');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  provider = await startTestProvider({
    redirectUri: `${base}/auth/oidc/callback`,
    accounts: { olivia: { groups: [OPERATORS], name: 'Olivia Sso' } },
  });
  const secretFile = path.join(tmpDir('identity-e2e-oidc'), 'client-secret');
  fs.writeFileSync(secretFile, `${provider.clientSecret}\n`, { mode: 0o600 });
  const env = slapd.env({
    OUK_OIDC_ISSUER: provider.issuer,
    OUK_OIDC_CLIENT_ID: provider.clientId,
    OUK_OIDC_CLIENT_SECRET_FILE: secretFile,
    OUK_OIDC_REDIRECT_URI: `${base}/auth/oidc/callback`,
    OUK_OIDC_DISPLAY_NAME: 'Test Provider',
  });
  const config = testConfig({ signIn: signInConfig({ OUK_LOGIN_MAX_FAILURES: '3', OUK_LOGIN_MAX_ADDRESS_FAILURES: '50', OUK_LOGIN_LOCK_SECONDS: '900' }) });
  const directory = await LdapAuthenticator.create(ldapSettings(env)!);
  const access = createAccess({ config, pool, directory, now: () => clock, logger });
  app = Fastify({ trustProxy: true, loggerInstance: logger }) as unknown as FastifyInstance;
  // as api/main.ts mounts them
  await registerSignIn(app, { access, logger, oidc: oidcSettings(env) });
  await app.register(dashboardPlugin, { queues: Object.values(queues.queues), config, logger, pool, access });
  await app.listen({ port, host: '127.0.0.1' });
  await failedVerifyJob();
  fs.mkdirSync(OUT_DIR, { recursive: true });
  browser = await chromium.launchPersistentContext(tmpDir('identity-e2e-chromium'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await app?.close();
  await provider?.close();
  await slapd?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await pool?.end();
  await db?.drop();
});

async function signInWithPassword(page: Page, username: string, password: string, next: string): Promise<void> {
  await page.goto(`${base}${next}`);
  assert.match(page.url(), /\/auth\/login\?next=/, 'a page request without a session is sent to the sign-in page');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  const landed = page.waitForURL(`${base}${next}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await landed;
}

async function me(page: Page): Promise<Record<string, unknown>> {
  await page.goto(`${base}/auth/me`);
  return JSON.parse(await page.locator('body').innerText()) as Record<string, unknown>;
}

async function signOut(page: Page): Promise<void> {
  await page.goto(`${base}/admin/queues`);
  await page.locator('#ouk-session').getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/auth\/login$/);
  await page.goto(`${base}/admin/queues`);
  assert.match(page.url(), /\/auth\/login\?next=/, 'signed out: the dashboard sends to the sign-in page again');
}

test('in Chromium: an operator signs in through LDAP and retries a failed stage; single sign-on through the OpenID provider; a viewer is refused the retry', async () => {
  const page = await browser!.newPage();

  // 1. alice, through the directory: the dashboard, the failed verify job, Retry
  await signInWithPassword(page, 'alice', 'alice-pw', '/admin/queues/queue/verify?status=failed');
  await page.locator('#ouk-session').getByText('alice (operator)').waitFor({ timeout: 10_000 });
  const card = page.locator('[class*="card-"]').filter({ has: page.getByText(JOB_ID, { exact: true }) });
  await card.waitFor({ state: 'visible', timeout: 20_000 });
  const retry = card.locator('button:has(svg.lucide-refresh-cw)');
  await retry.click();
  const dialog = page.getByRole('alertdialog').or(page.getByRole('dialog'));
  await dialog.getByText(/retry this job/i).waitFor({ timeout: 5000 });
  const answered = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith(`/verify/${JOB_ID}/retry`));
  await dialog.getByRole('button', { name: /^(confirm|retry|yes|ok)$/i }).click();
  assert.equal((await answered).status(), 204);
  // the retried job leaves the failed list (no worker runs here: it waits)
  assert.equal(await queues.queues.verify.getJobState(JOB_ID), 'waiting');
  const retried = (await listAudit(pool)).find((r) => r.action === 'dashboard.retry' && r.target === `verify/${JOB_ID}`);
  assert.ok(retried, 'the retry is on the audit trail');
  assert.deepEqual([retried.actor, retried.via, retried.outcome], [ALICE_DN, 'ldap', 'ok']);
  await page.screenshot({ path: path.join(OUT_DIR, 'identity-ldap-operator.png'), fullPage: true });
  const alice = await me(page);
  assert.deepEqual([alice.sub, alice.via, alice.roles], [ALICE_DN, 'ldap', ['operator']]);
  await signOut(page);

  // 2. olivia, through single sign-on: the link on the sign-in page, the provider's own pages, back on the dashboard
  // asked for a page of the dashboard: the sign-in page keeps it as `next`, across the provider too
  const asked = '/admin/queues/queue/verify?status=waiting';
  await page.goto(`${base}${asked}`);
  const sso = page.getByRole('link', { name: 'Sign in with Test Provider' });
  await sso.click();
  await page.waitForURL((u) => u.href.startsWith(provider.issuer));
  await page.locator('input[name="login"]').fill('olivia');
  await page.locator('input[name="password"]').fill('any password: the development login form checks none');
  await page.locator('button[type="submit"]').click();
  // the consent page (the first time this client asks), then back to OUK
  await page.waitForURL((u) => u.href.startsWith(base) || /interaction/.test(u.pathname));
  if (!page.url().startsWith(base)) {
    await page.locator('button[type="submit"]').click();
  }
  await page.waitForURL(`${base}${asked}`);
  await page.locator('#ouk-session').getByText('olivia (operator)').waitFor({ timeout: 10_000 });
  await page.screenshot({ path: path.join(OUT_DIR, 'identity-oidc.png'), fullPage: true });
  const olivia = await me(page);
  assert.equal(olivia.via, 'oidc');
  assert.equal(olivia.username, 'olivia');
  assert.deepEqual(olivia.roles, ['operator']);
  assert.ok(String(olivia.sub).startsWith(provider.issuer.replace(/\/$/, '')), `the sub names the issuer: ${String(olivia.sub)}`);
  await signOut(page);

  // 3. bob, a viewer through a nested group: the dashboard yes, the retry no
  await signInWithPassword(page, 'bob', 'bob-pw', '/admin/queues');
  await page.locator('#ouk-session').getByText('bob (viewer)').waitFor({ timeout: 10_000 });
  // the page's own fetch (the session bar adds the CSRF token), as the Retry button sends it
  const refused = await page.evaluate(async (url) => {
    const r = await fetch(url, { method: 'PUT' });
    return { status: r.status, body: await r.text() };
  }, `${base}/admin/queues/api/queues/verify/${JOB_ID}/retry`);
  assert.equal(refused.status, 403, refused.body);
  assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'ROLE_REQUIRED');
  await signOut(page);
  await page.close();
  assert.ok(!logLines.join('').includes('alice-pw') && !logLines.join('').includes('bob-pw'), 'no password in the log');
});

function login(username: string, password: string, from: string): Promise<Response> {
  return fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from }, body: JSON.stringify({ username, password }) });
}

async function code(r: Response): Promise<string> {
  return ((await r.json()) as { error?: { code?: string } }).error?.code ?? `(no error: ${r.status})`;
}

test('against the API: a filter injection fails, a locked account is 429, single sign-on alone opens the dashboard, the directory down is 503', async () => {
  // `al*` would find alice if the name reached the filter unescaped, and her password would sign her in
  const injected = await login('al*', 'alice-pw', '198.51.100.1');
  assert.equal(injected.status, 401);
  assert.equal(await code(injected), 'LOGIN_FAILED');
  const orInjected = await login('x)(uid=alice', 'alice-pw', '198.51.100.1');
  assert.equal(orInjected.status, 401);
  assert.equal(await code(orInjected), 'LOGIN_FAILED');

  // erin fails three times (the clock moves past each back-off): locked, her right password included
  for (let i = 0; i < 3; i++) {
    const r = await login('erin', 'not-her-password', '198.51.100.2');
    assert.equal(r.status, 401, `attempt ${i + 1}`);
    clock = new Date(clock.getTime() + 10_000);
  }
  const locked = await login('erin', 'erin-pw', '198.51.100.3');
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  assert.equal(await code(locked), 'LOGIN_LOCKED');

  // single sign-on alone is a way to sign in: the dashboard is served (sent to the sign-in page), not disabled
  const ssoOnly = Fastify() as unknown as FastifyInstance;
  const ssoAccess = createAccess({ config: testConfig({ signIn: signInConfig({}) }), pool, singleSignOn: true, now: () => clock, logger });
  await ssoOnly.register(dashboardPlugin, { queues: Object.values(queues.queues), config: testConfig(), logger, pool, access: ssoAccess });
  const page = await ssoOnly.inject({ url: '/admin/queues', headers: { accept: 'text/html' } });
  await ssoOnly.close();
  assert.equal(page.statusCode, 303);
  assert.match(String(page.headers.location), /^\/auth\/login\?next=/);

  // the directory stops: 503 with a code, never a sign-in and never a 500
  await slapd.close();
  const down = await login('alice', 'alice-pw', '198.51.100.4');
  assert.equal(down.status, 503);
  assert.equal(await code(down), 'DIRECTORY_UNAVAILABLE');
});
