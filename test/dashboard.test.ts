/**
 * The job dashboard in a real browser: headless Chromium (Debian's
 * /usr/bin/chromium, driven by playwright-core) against the real API (webhook,
 * dashboard, metrics), real workers, Redis, PostgreSQL and s3rver.
 *
 * A bundle is dropped into the bucket without its .sig: verify refuses it at
 * once (SIGNATURE_MISSING, no retries: the tarball is complete). The operator uploads the
 * .sig (no event: the bucket only notifies for *.tar.gz), opens
 * /admin/queues, is sent to the sign-in page, signs in (the break-glass
 * account, OUK_BREAK_GLASS=true), finds the failed verify job, clicks Retry
 * (the page's request carries the session's CSRF token), the chain runs on to
 * an active DB, the audit trail names who retried, and the operator signs
 * out. Screenshots land in test/out/.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext } from 'playwright-core';
import { buildServer } from '../api/server.ts';
import { dashboardPlugin } from '../api/dashboard.ts';
import { metricsPlugin } from '../api/metrics.ts';
import { createAccess } from '../api/access.ts';
import { sessionRoutes } from '../api/session-routes.ts';
import { listAudit } from '../infra/audit.ts';
import { collectImports } from '../cli/commands/ouk-jobs.ts';
import { getImport } from '../infra/import-records/index.ts';
import type { WebhookTarget } from '../dev/s3rver.ts';
import { createRedis } from '../queue/connection.ts';
import { importIdFor, jobIdFor } from '../queue/identity.ts';
import { watchQueueMetrics, type QueueMetricsWatcher } from '../queue/metrics-hooks.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { createLogger } from '../lib/logger.ts';
import { loadConfig, signInConfig } from '../lib/config.ts';
import { STAGES } from '../lib/stages.ts';
import { Writable } from 'node:stream';
import { makeBundle, pipelineFixture, putFile, type PipelineFixture, fixtureConfig, fastSettings, waitFor } from './pipeline-fixtures.ts';
import { repoRoot, testRedisPrefix, tmpDir, type TestRedisPrefix } from './helpers/services.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUT_DIR = path.join(repoRoot, 'test', 'out');
const TOKEN = 'dashboard-webhook-token';
const USER = 'operator';
const PASSWORD = crypto.randomBytes(12).toString('base64url');

const settings = fastSettings();

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
let watcher: QueueMetricsWatcher;
let app: FastifyInstance;
let base: string;
let browser: BrowserContext | undefined;
const webhook: WebhookTarget = { url: 'http://127.0.0.1:1/unset', token: TOKEN, attempts: 3, backoffMs: 50 };
/** What the dashboard logs (auth refusals, operator actions), as parsed JSON lines. */
const dashboardLog: Record<string, unknown>[] = [];
const dashboardLogger = createLogger('dashboard', {
  destination: new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) dashboardLog.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  }),
});

before(async () => {
  // only bundles notify, like `mc event add --suffix .tar.gz`: the late .sig wakes nothing by itself
  fx = await pipelineFixture('dashboard', { webhook, suffix: '.tar.gz' });
  redis = testRedisPrefix('dashboard');
  const config = fixtureConfig(fx, redis, {
    webhookToken: TOKEN,
    dashboardUser: USER,
    dashboardPassword: PASSWORD,
    signIn: signInConfig({ OUK_BREAK_GLASS: 'true' }),
    // test kits are created 2025-12-01 whatever the clock: no feed budgets, so the active DB is not stale
    freshness: loadConfig({ OUK_MAX_AGE: 'none' }).freshness,
  });
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  const stageQueues = Object.values(queues.queues);
  app = await buildServer({ config, pool: fx.pool, store: fx.s3.store, queues, settings, logger: fx.logger });
  // as api/main.ts mounts them
  const access = createAccess({ config, pool: fx.pool, logger: dashboardLogger });
  await app.register(sessionRoutes, { access, logger: dashboardLogger });
  await app.register(dashboardPlugin, { queues: stageQueues, config, logger: dashboardLogger, pool: fx.pool, access });
  await app.register(metricsPlugin, { pool: fx.pool, queues: stageQueues, freshness: config.freshness, logger: fx.logger });
  watcher = await watchQueueMetrics({ connection: { url: redis.redisUrl }, prefix: redis.prefix, queues: stageQueues, pool: fx.pool, logger: fx.logger });
  await watcher.ready();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  webhook.url = `${base}/hooks/minio`;
  workers = startWorkers(config, { pool: fx.pool, store: fx.s3.store, settings, logger: fx.logger });
  fs.mkdirSync(OUT_DIR, { recursive: true });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await workers?.close();
  await app?.close();
  await watcher?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});


const waitLong = <T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> => waitFor(what, fn, timeoutMs);

function sample(body: string, series: string): number | null {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

async function launchChromium(): Promise<BrowserContext> {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  return chromium.launchPersistentContext(tmpDir('chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
  });
}

test('an operator retries a failed import from the dashboard in a real browser, and the import completes', async (t) => {
  // 1. a bundle arrives without its signature: verify fails it for good, at once
  const version = '2026-11-20';
  const key = `stella-ouk-${version}.tar.gz`;
  const bundle = await makeBundle(fx, key, { version, advisories: 300 });
  const etag = await putFile(fx, bundle.path, key);
  const importId = importIdFor(fx.s3.bucket, key, etag);
  const failed = await waitLong('the import to fail at verify', async () => {
    const rec = await getImport(fx.pool, importId);
    return rec?.state === 'failed' ? rec : null;
  });
  assert.equal(failed.errorCode, 'SIGNATURE_MISSING');
  assert.equal(await queues.queues.verify.getJobState(jobIdFor(importId, 'verify')), 'failed');
  assert.equal(await queues.queues.unpack.getJobState(jobIdFor(importId, 'unpack')), 'waiting-children');

  // 2. the dashboard is closed to anyone without credentials
  const anon = await fetch(`${base}/admin/queues`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic /);
  assert.equal((await fetch(`${base}/admin/queues/api/queues`)).status, 401);

  // 3. the operator fixes the cause: the .sig goes up (no notification for it)
  await putFile(fx, `${bundle.path}.sig`, `${key}.sig`);
  await sleep(300);
  assert.equal((await getImport(fx.pool, importId))?.state, 'failed', 'nothing but the operator may restart the import');

  // 4. in the browser: sent to the sign-in page, sign in, find the failed verify job, Retry
  browser = await launchChromium();
  const page = await browser.newPage();
  const jobId = jobIdFor(importId, 'verify');
  await page.goto(`${base}/admin/queues/queue/verify?status=failed`);
  assert.match(page.url(), /\/auth\/login\?next=/);
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  const signedIn = page.waitForURL(`${base}/admin/queues/queue/verify?status=failed`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedIn;
  const cookie = (await browser.cookies(base)).find((c) => c.name === 'ouk_session');
  assert.ok(cookie?.httpOnly && cookie.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
  const card = page.locator('[class*="card-"]').filter({ has: page.getByText(jobId, { exact: true }) });
  await card.waitFor({ state: 'visible', timeout: 20_000 });
  await card.getByText('Error', { exact: true }).click();
  await page.getByText(/SIGNATURE_MISSING/).first().waitFor({ timeout: 10_000 });
  const before = path.join(OUT_DIR, 'dashboard-failed.png');
  await page.screenshot({ path: before, fullPage: true });

  const retry = card.locator('button:has(svg.lucide-refresh-cw)');
  await retry.hover();
  await page.getByText('Retry', { exact: true }).first().waitFor({ timeout: 5000 }); // its tooltip
  await retry.click();
  // bull-board asks for confirmation in a dialog
  const dialog = page.getByRole('alertdialog').or(page.getByRole('dialog'));
  await dialog.getByText(/retry this job/i).waitFor({ timeout: 5000 });
  await dialog.getByRole('button', { name: /^(confirm|retry|yes|ok)$/i }).click();

  // 5. the chain resumes from verify and the import becomes the active DB
  const active = await waitLong('the import to become active', async () => {
    const rec = await getImport(fx.pool, importId);
    return rec?.state === 'active' ? rec : null;
  });
  assert.equal(active.version, version);
  // the record turns active inside the activate job, a moment before BullMQ marks that job completed
  for (const stage of ['verify', 'unpack', 'load', 'activate'] as const) {
    await waitLong(`the ${stage} job to complete`, async () => (await queues.queues[stage].getJobState(jobIdFor(importId, stage))) === 'completed', 10_000);
  }

  // the retried verify job, now completed (with its progress), and the activate job that closed the chain
  await page.goto(`${base}/admin/queues/queue/verify?status=completed`);
  await page.getByText(jobId, { exact: true }).waitFor({ timeout: 20_000 });
  const shot = path.join(OUT_DIR, 'dashboard-retry.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 10_000);
  await page.goto(`${base}/admin/queues/queue/activate?status=completed`);
  await page.getByText(jobIdFor(importId, 'activate'), { exact: true }).waitFor({ timeout: 20_000 });
  const activeShot = path.join(OUT_DIR, 'dashboard-active.png');
  await page.screenshot({ path: activeShot, fullPage: true });
  t.diagnostic(`screenshot: ${path.relative(repoRoot, shot)} (before the retry: ${path.relative(repoRoot, before)}; the activate job: ${path.relative(repoRoot, activeShot)})`);

  // the retry is in the log, with who did it, and no credential anywhere
  const action = dashboardLog.find((l) => l.msg === 'dashboard action' && String(l.url).includes(jobId));
  assert.ok(action, 'the retry was not logged');
  assert.equal(action.operator, USER);
  assert.equal(action.via, 'break-glass');
  assert.match(String(action.url), /\/api\/queues\/verify\/[0-9a-f]+-verify\/retry/);
  assert.ok(!JSON.stringify(dashboardLog).includes(PASSWORD));
  const audit = await listAudit(fx.pool);
  assert.ok(audit.some((r) => r.action === 'auth.break-glass' && r.actor === USER), 'the break-glass sign-in is on the audit trail');
  const retried = audit.find((r) => r.action === 'dashboard.retry' && r.target === `verify/${jobId}`);
  assert.ok(retried, 'the retry is on the audit trail');
  assert.deepEqual([retried.actor, retried.via, retried.outcome], [USER, 'break-glass', 'ok']);

  // sign out from the dashboard's bar: the next page request is sent to the sign-in page again
  await page.goto(`${base}/admin/queues`);
  await page.locator('#ouk-session').getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/auth\/login$/);
  await page.goto(`${base}/admin/queues`);
  assert.match(page.url(), /\/auth\/login\?next=/);

  // 6. what `stella ouk jobs` shows for it now
  const [view] = await collectImports({ pool: fx.pool, queues: queues.queues }, { limit: 1 });
  assert.equal(view.id, importId);
  assert.equal(view.state, 'active');
  assert.deepEqual(view.stages.map((s) => s.state), STAGES.map(() => 'completed'));
  // BullMQ keeps counting across a manual retry: the refused attempt, then the one that passed
  assert.equal(view.stages[0].attempts, 2);
  assert.equal(view.stages[0].error, null);

  // 7. the metrics saw it: stage durations, the failure and its reason, the active DB
  const metrics = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
  const body = await waitLong('the activate duration in /metrics', async () => {
    const b = await metrics();
    return (sample(b, 'ouk_import_stage_duration_seconds_count{stage="activate"}') ?? 0) >= 1 ? b : null;
  }, 10_000);
  for (const stage of ['verify', 'unpack', 'load', 'activate']) {
    assert.equal(sample(body, `ouk_import_stage_duration_seconds_count{stage="${stage}"}`), 1, stage);
  }
  assert.equal(sample(body, 'ouk_import_stage_failures_total{stage="verify",reason="SIGNATURE_MISSING"}'), 1);
  assert.equal(sample(body, 'ouk_import_stage_retries_total{stage="verify",reason="SIGNATURE_MISSING"}'), null, 'a missing .sig is not retried');
  assert.equal(sample(body, 'ouk_imports_activated_total'), 1);
  assert.equal(sample(body, `ouk_active_db_info{version="${version}"}`), 1);
  assert.equal(sample(body, 'ouk_active_db_stale'), 0);
});
