/**
 * A bad day for the API (hostile bodies and tokens, roles), against the real API process (api/main.ts) and a
 * real worker (queue/worker-main.ts), air-gapped, on a DB of real OSV records,
 * the real Redis, PostgreSQL and an s3rver:
 *
 *   - stored SBOMs need a role: a scan token is 403 ROLE_REQUIRED on every
 *     read and write, a viewer token reads, an operator token writes;
 *   - the token is checked before the body is read: four anonymous 32 MiB
 *     `[[[[…` bodies are answered 401 while the client has sent 1 MiB of
 *     each, and /healthz answers meanwhile; an anonymous scan may send at most
 *     STELLA_SCAN_ANON_MAX_BYTES (declared or chunked);
 *   - a JWT whose `sub` is an object or empty is 401 TOKEN_INVALID;
 *   - a 5,000-character SBOM name is answered with a short escaped excerpt;
 *   - the API holds at most STELLA_API_BODY_BUDGET_BYTES of bodies at once:
 *     two held 32 MiB uploads fill it, the next request is 503 SCAN_BUSY with
 *     Retry-After, unread, and closing them frees it; twelve concurrent 32 MiB
 *     scans are served within it (the API's RSS before and after is logged);
 *   - a stage job added through the dashboard for an import that failed
 *     verify with BUNDLE_EXPIRED fails JOB_INVALID, and the record keeps
 *     BUNDLE_EXPIRED; a job with `data: null` or a field missing fails
 *     JOB_INVALID at once, never retried.
 *
 * No timing is asserted: "before the body is read" is shown by the answer
 * arriving while most of the body is still unsent.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, type Job } from 'bullmq';
import * as jose from 'jose';
import { getImport } from '../infra/import-records/index.ts';
import { issueToken } from '../lib/tokens.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { createLoadedScanDb, type ScanDb } from './helpers/scan-db.ts';
import { freePort, repoRoot, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { expiredTimes, fastSettings, fixtureEnv, makeBundle, putBundle, waitFor } from './pipeline-fixtures.ts';

const FEEDS = { files: ['osv/npm/GHSA-35jh-r3h4-6jhm.json', 'osv/npm/GHSA-jf85-cpcp-j695.json'] };
const MiB = 1024 * 1024;
const MAX = 32 * MiB; // STELLA_SCAN_MAX_BYTES (the default)
const BUDGET = 64 * MiB; // STELLA_API_BODY_BUDGET_BYTES (the default)
const ANON_MAX = 4 * MiB; // STELLA_SCAN_ANON_MAX_BYTES (the default)
const USER = 'operator';
const PASSWORD = 'bad-day-dashboard-password';

let sdb: ScanDb;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let apiPort: number;
let api: ChildProcess | null = null;
let worker: ChildProcess | null = null;
let jwtPriv: string;
const tokens: Record<'operator' | 'viewer' | 'scan', string> = { operator: '', viewer: '', scan: '' };

function logPath(name: string): string {
  return path.join(sdb.fx.dir, `${name}.log`);
}

function logs(): string {
  return ['api', 'worker'].map((n) => `--- ${n}\n${fs.existsSync(logPath(n)) ? fs.readFileSync(logPath(n), 'utf8').slice(-3000) : ''}`).join('\n');
}

function startService(name: 'api' | 'worker', env: NodeJS.ProcessEnv): ChildProcess {
  const log = fs.openSync(logPath(name), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', name === 'api' ? 'api/main.ts' : 'queue/worker-main.ts'], { cwd: repoRoot, env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return child;
}

async function stopService(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, sleep(20_000).then(() => child.kill('SIGKILL'))]);
}

/** The API's resident memory now and at its peak (kB, from /proc). */
function apiMemory(): { rssKb: number; peakKb: number } {
  const status = fs.readFileSync(`/proc/${api!.pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), peakKb: kb('VmHWM') };
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const basic = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

async function call(method: string, url: string, headers: Record<string, string> = {}, body?: unknown): Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown>; headers: Headers }> {
  const r = await fetch(`http://127.0.0.1:${apiPort}${url}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as never) : ({} as never), headers: r.headers };
}

interface Answer {
  status: number;
  code: string | null;
  message: string;
  retryAfter: string | undefined;
  /** body bytes the client had written when the answer arrived */
  sent: number;
  ms: number;
}

/**
 * A POST whose body is written in 1 MiB chunks (respecting back-pressure),
 * `declared` as its Content-Length or sent chunked; with `hold`, only the first
 * `hold` bytes are written and the request stays open until `abort()`.
 */
function post(url: string, o: { headers?: Record<string, string>; body: Buffer; chunked?: boolean; hold?: number }): { answer: Promise<Answer>; abort(): void } {
  const t0 = performance.now();
  let sent = 0;
  let answered = false;
  const req = http.request({
    host: '127.0.0.1',
    port: apiPort,
    path: url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(o.chunked ? {} : { 'content-length': String(o.body.length) }), ...o.headers },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      answered = true;
      const at = sent;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const body = (text ? JSON.parse(text) : {}) as { error?: { code: string; message: string } };
        resolve({ status: res.statusCode!, code: body.error?.code ?? null, message: body.error?.message ?? '', retryAfter: res.headers['retry-after'] as string | undefined, sent: at, ms: Math.round(performance.now() - t0) });
      });
    });
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
  });
  void (async () => {
    const end = o.hold ?? o.body.length;
    for (let at = 0; at < end && !answered && !req.destroyed; at += MiB) {
      const chunk = o.body.subarray(at, Math.min(end, at + MiB));
      sent += chunk.length;
      if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
    }
    if (o.hold === undefined && !answered && !req.destroyed) req.end();
  })().catch(() => undefined);
  return { answer, abort: () => req.destroy() };
}

/** Polls /metrics until ouk_api_request_body_bytes reads `bytes`. */
async function bodyBytesHeld(bytes: number): Promise<void> {
  await waitFor(`ouk_api_request_body_bytes to read ${bytes}`, async () => {
    const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
    return Number(/^ouk_api_request_body_bytes (\S+)$/m.exec(text)?.[1]) === bytes;
  }, 30_000, 50);
}

/** The job `id` of `q` once it has failed (read after it did: its failed reason and attempts are final). */
async function failedJob(q: Queue, id: string): Promise<Job> {
  await waitFor(`job ${id} of ${q.name} to fail`, async () => (await q.getJobState(id)) === 'failed', 60_000);
  return (await q.getJob(id))!;
}

/** A CycloneDX SBOM of about `bytes` bytes: lodash 4.17.15 (affected by the DB's real advisories) and padded components. */
function bigSbom(bytes: number): Buffer {
  const pad = 'p'.repeat(16 * 1024);
  const components: unknown[] = [{ type: 'library', 'bom-ref': 'lodash', name: 'lodash', version: '4.17.15', purl: 'pkg:npm/lodash@4.17.15' }];
  let size = 200;
  for (let i = 0; size < bytes - 20 * 1024; i++) {
    const c = { type: 'library', 'bom-ref': `c${i}`, name: `c${i}`, version: '1.0.0', purl: `pkg:npm/c${i}@1.0.0`, description: pad };
    size += JSON.stringify(c).length + 1;
    components.push(c);
  }
  return Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components }));
}

before(async () => {
  sdb = await createLoadedScanDb('api-bad-day', FEEDS);
  redis = testRedisPrefix('api-bad-day');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  apiPort = await freePort();
  const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  jwtPriv = path.join(sdb.fx.dir, 'jwt.key');
  const jwtPub = path.join(sdb.fx.dir, 'jwt.pub');
  fs.writeFileSync(jwtPriv, jwt.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(jwtPub, jwt.publicKey.export({ type: 'spki', format: 'pem' }));
  tokens.operator = (await issueToken({ privateKey: jwtPriv, sub: 'inventory-bot', role: 'operator', ttl: '1h' })).token;
  tokens.viewer = (await issueToken({ privateKey: jwtPriv, sub: 'security-dashboard', role: 'viewer', ttl: '1h' })).token;
  tokens.scan = (await issueToken({ privateKey: jwtPriv, sub: 'ci-runner', ttl: '1h' })).token;
  const env = fixtureEnv(sdb.fx, redis, {
    STELLA_AIRGAP: 'true',
    OUK_TRUSTED_KEYS: sdb.fx.publicKey,
    OUK_WEBHOOK_TOKEN: 'bad-day-webhook-token',
    STELLA_API_PORT: String(apiPort),
    STELLA_API_HOST: '127.0.0.1',
    STELLA_JWT_PUBLIC_KEY: jwtPub,
    DASHBOARD_USER: USER,
    DASHBOARD_PASSWORD: PASSWORD,
    // the shared account is break-glass only: on with OUK_BREAK_GLASS=true
    OUK_BREAK_GLASS: 'true',
    STELLA_QUOTA_PREFIX: `${redis.prefix}-quota`,
    QUOTA_ANON: '100000',
    QUOTA_TOKEN: '100000',
    // the test drives every import itself
    OUK_RECONCILE_SECONDS: '3600',
    OUK_VERIFY_ATTEMPTS: '2',
    OUK_VERIFY_BACKOFF_MS: '100',
    OUK_STAGE_ATTEMPTS: '2',
    OUK_STAGE_BACKOFF_MS: '100',
    LOG_LEVEL: 'info',
  });
  api = startService('api', env);
  worker = startService('worker', env);
  await waitFor('the API to answer', () => fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false), 90_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}\n${logs()}`);
  });
});

after(async () => {
  await stopService(worker);
  await stopService(api);
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await sdb?.close();
});

describe('a bad day for the API', () => {
  it('stored SBOMs need a role: a scan token is 403 ROLE_REQUIRED, a viewer reads, an operator writes', async () => {
    const sbom = { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'library', name: 'lodash', version: '4.17.15', purl: 'pkg:npm/lodash@4.17.15' }] };
    const requests: Array<[string, string, unknown?]> = [
      ['POST', '/api/v1/sboms?name=app', sbom],
      ['GET', '/api/v1/sboms'],
      ['GET', '/api/v1/sboms/app/diff'],
      ['DELETE', '/api/v1/sboms/app'],
    ];
    for (const [method, url, body] of requests) {
      const anon = await call(method, url, {}, body);
      assert.deepEqual([anon.status, anon.body.error?.code], [401, 'TOKEN_REQUIRED'], `anonymous ${method} ${url}`);
      const scan = await call(method, url, bearer(tokens.scan), body);
      assert.deepEqual([scan.status, scan.body.error?.code], [403, 'ROLE_REQUIRED'], `scan token ${method} ${url}: ${JSON.stringify(scan.body)}`);
      assert.match(scan.body.error!.message, /needs the (viewer|operator) role or above; this token \(sub "ci-runner"\) has no role/);
    }
    // a viewer reads but cannot change
    const add = await call('POST', '/api/v1/sboms?name=app', bearer(tokens.viewer), sbom);
    assert.deepEqual([add.status, add.body.error?.code], [403, 'ROLE_REQUIRED']);
    // an operator adds, replaces and removes; the viewer reads what is there
    assert.equal((await call('POST', '/api/v1/sboms?name=app', bearer(tokens.operator), sbom)).status, 201);
    assert.equal((await call('POST', '/api/v1/sboms?name=app&replace=true', bearer(tokens.operator), sbom)).status, 200);
    const list = await call('GET', '/api/v1/sboms', bearer(tokens.viewer));
    assert.equal(list.status, 200);
    assert.deepEqual((list.body.sboms as Array<{ name: string; addedBy: string }>).map((s) => [s.name, s.addedBy]), [['app', 'token:inventory-bot']]);
    assert.equal((await call('GET', '/api/v1/sboms/app/diff', bearer(tokens.viewer))).status, 200);
    assert.equal((await call('DELETE', '/api/v1/sboms/app', bearer(tokens.viewer))).status, 403);
    assert.equal((await call('DELETE', '/api/v1/sboms/app', bearer(tokens.operator))).status, 204);
  });

  it('the token is checked before the body is read: anonymous 32 MiB `[[[[` bodies are refused unread while /healthz answers', async () => {
    const brackets = Buffer.alloc(MAX, '[');
    const anon = Array.from({ length: 4 }, () => post('/api/v1/sboms?name=x', { body: brackets }));
    const health: number[] = [];
    let pending = true;
    const answers = Promise.all(anon.map((a) => a.answer)).finally(() => (pending = false));
    while (pending) {
      const t = performance.now();
      const r = await fetch(`http://127.0.0.1:${apiPort}/healthz`);
      assert.equal(r.status, 200);
      health.push(Math.round(performance.now() - t));
      await sleep(20);
    }
    for (const a of await answers) {
      assert.deepEqual([a.status, a.code], [401, 'TOKEN_REQUIRED']);
      assert.ok(a.sent < MAX, `answered only once all ${a.sent} bytes were sent`);
    }
    // a scan token is refused as early (its role), and an anonymous scan may not send 32 MiB either
    const scanToken = await post('/api/v1/sboms?name=x', { body: brackets, headers: bearer(tokens.scan) }).answer;
    assert.deepEqual([scanToken.status, scanToken.code], [403, 'ROLE_REQUIRED']);
    assert.ok(scanToken.sent < MAX);
    const anonScan = await post('/api/v1/scan', { body: brackets }).answer;
    assert.deepEqual([anonScan.status, anonScan.code], [413, 'SBOM_TOO_LARGE']);
    assert.match(anonScan.message, new RegExp(`at most ${ANON_MAX} bytes \\(STELLA_SCAN_ANON_MAX_BYTES\\): send a token`));
    assert.ok(anonScan.sent < MAX);
    // chunked (no Content-Length): cut off once it passes the anonymous limit
    const chunked = await post('/api/v1/scan', { body: Buffer.alloc(ANON_MAX + 2 * MiB, '['), chunked: true }).answer;
    assert.deepEqual([chunked.status, chunked.code], [413, 'SBOM_TOO_LARGE']);
    // a bad token is refused before the body too
    const forged = await post('/api/v1/scan', { body: brackets, headers: bearer(`${tokens.scan}x`) }).answer;
    assert.deepEqual([forged.status, forged.code], [401, 'TOKEN_INVALID']);
    assert.ok(forged.sent < MAX);
    console.log(`# anonymous 32 MiB bodies answered after ${(await answers).map((a) => `${a.ms} ms (${a.sent} bytes sent)`).join(', ')}; /healthz meanwhile: ${health.length} checks, slowest ${Math.max(...health)} ms`);
  });

  it('a JWT whose sub is an object or empty, or whose role is not a string, is 401 TOKEN_INVALID', async () => {
    const key = await jose.importPKCS8(fs.readFileSync(jwtPriv, 'utf8'), 'ES256');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const cases: Array<Record<string, unknown>> = [{ sub: { name: 'admin' } }, { sub: '' }, { sub: 'x', role: ['operator'] }, { sub: 'x', jti: 7 }];
    for (const claims of cases) {
      const t = await new jose.SignJWT({ iss: 'stella-ouk', exp, ...claims } as jose.JWTPayload).setProtectedHeader({ alg: 'ES256' }).sign(key);
      for (const [method, url] of [['POST', '/api/v1/scan'], ['GET', '/api/v1/sboms']]) {
        const r = await call(method, url, bearer(t), method === 'POST' ? { bomFormat: 'CycloneDX', specVersion: '1.6', components: [] } : undefined);
        assert.deepEqual([r.status, r.body.error?.code], [401, 'TOKEN_INVALID'], `${JSON.stringify(claims)} ${method} ${url}`);
      }
    }
  });

  it('a 5,000-character SBOM name is answered with a short, escaped excerpt', async () => {
    const name = `\u001b[2J${'n'.repeat(5000)}`;
    const r = await call('POST', `/api/v1/sboms?name=${encodeURIComponent(name)}`, bearer(tokens.operator), { bomFormat: 'CycloneDX', specVersion: '1.6', components: [] });
    assert.deepEqual([r.status, r.body.error?.code], [400, 'USAGE']);
    assert.ok(r.body.error!.message.length < 300, `the message is ${r.body.error!.message.length} characters`);
    assert.match(r.body.error!.message, /^SBOM name "\\x1b\[2Jn+… \(5004 characters\)" is not usable/);
  });

  it('the body budget: two held 32 MiB uploads fill it; the next request is 503 SCAN_BUSY with Retry-After, unread; closing them frees it', async () => {
    const body = Buffer.alloc(MAX, ' ');
    const held = [post('/api/v1/sboms?name=held1', { body, headers: bearer(tokens.operator), hold: MiB }), post('/api/v1/sboms?name=held2', { body, headers: bearer(tokens.operator), hold: MiB })];
    await bodyBytesHeld(BUDGET);
    const scanToken = (await issueToken({ privateKey: jwtPriv, sub: 'budget', ttl: '1h' })).token;
    const big = await post('/api/v1/scan', { body: bigSbom(MAX - MiB), headers: bearer(scanToken) }).answer;
    assert.deepEqual([big.status, big.code, big.retryAfter], [503, 'SCAN_BUSY', '2']);
    assert.match(big.message, /STELLA_API_BODY_BUDGET_BYTES=67108864/);
    assert.ok(big.sent < MAX - MiB, 'refused before its body was read');
    const small = await call('POST', '/api/v1/scan', {}, { bomFormat: 'CycloneDX', specVersion: '1.6', components: [] });
    assert.deepEqual([small.status, small.body.error?.code, small.headers.get('retry-after')], [503, 'SCAN_BUSY', '2']);
    // the held uploads go away: their bytes are given back, and scans are served again
    for (const h of held) {
      h.answer.catch(() => undefined); // aborted unanswered: its promise rejects, as it should
      h.abort();
    }
    await bodyBytesHeld(0);
    const again = await call('POST', '/api/v1/scan', bearer(scanToken), { bomFormat: 'CycloneDX', specVersion: '1.6', components: [{ type: 'library', name: 'lodash', version: '4.17.15', purl: 'pkg:npm/lodash@4.17.15' }] });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.ok((again.body.findings as Array<{ package: string }>).some((f) => f.package === 'lodash'), JSON.stringify(again.body.findings));
  });

  it('twelve concurrent 32 MiB scans: served within the budget, the rest 503 SCAN_BUSY with Retry-After, never a 500', async () => {
    const body = bigSbom(MAX - 256 * 1024);
    const scanTokens = await Promise.all(Array.from({ length: 12 }, (_, i) => issueToken({ privateKey: jwtPriv, sub: `ci-${i}`, ttl: '1h' }).then((t) => t.token)));
    const before = apiMemory();
    const answers = await Promise.all(scanTokens.map((t) => post('/api/v1/scan', { body, headers: bearer(t) }).answer));
    const afterMem = apiMemory();
    const byStatus = answers.reduce<Record<string, number>>((m, a) => ((m[`${a.status} ${a.code ?? ''}`.trim()] = (m[`${a.status} ${a.code ?? ''}`.trim()] ?? 0) + 1), m), {});
    console.log(`# twelve concurrent ${body.length}-byte scans: ${JSON.stringify(byStatus)}; API RSS ${Math.round(before.rssKb / 1024)} MiB before, ${Math.round(afterMem.rssKb / 1024)} MiB after, peak ${Math.round(afterMem.peakKb / 1024)} MiB (peak before ${Math.round(before.peakKb / 1024)} MiB)`);
    for (const a of answers) {
      if (a.status === 200) continue;
      assert.deepEqual([a.status, a.code], [503, 'SCAN_BUSY'], JSON.stringify(a));
      assert.ok(a.retryAfter, 'a SCAN_BUSY answer carries Retry-After');
      assert.ok(a.sent < body.length, 'a SCAN_BUSY answer comes before the body is read');
    }
    assert.ok(answers.some((a) => a.status === 200), 'some scans were served');
    assert.ok(answers.some((a) => a.status === 503), 'the budget (or STELLA_SCAN_CONCURRENCY) turned some away');
    await bodyBytesHeld(0);
  });

  it('a stage job added through the dashboard for an import refused at verify (BUNDLE_EXPIRED, so quarantined) fails JOB_INVALID; the record keeps BUNDLE_EXPIRED', async () => {
    const version = '2026-12-05';
    const bundle = await makeBundle(sdb.fx, `stella-ouk-${version}.tar.gz`, { version, advisories: 50, ...expiredTimes() });
    const p = await putBundle(sdb.fx, bundle.path, `stella-ouk-${version}.tar.gz`);
    await ingestObject({ pool: sdb.pool, queues, settings: fastSettings() }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
    // An expired kit is refused for policy: failed, then moved to quarantine/ (lib/quarantine.ts). Wait for the
    // move to settle, so the record checked below cannot change under the jobs added by hand.
    const failed = await waitFor('the import to be refused at verify and quarantined', async () => {
      const r = await getImport(sdb.pool, p.importId);
      return r?.state === 'quarantined' ? r : null;
    }, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    assert.equal(failed.errorCode, 'BUNDLE_EXPIRED');
    const payload = { importId: p.importId, bucket: p.bucket, key: p.key, etag: p.etag };
    for (const stage of ['unpack', 'load'] as const) {
      const added = await call('POST', `/admin/queues/api/queues/${stage}/add`, basic, { name: stage, data: payload, options: { attempts: 3 } });
      assert.equal(added.status, 200, JSON.stringify(added.body));
      const id = (added.body.job as { id: string }).id;
      const q = new Queue(stage, { connection: queues.connection, prefix: redis.prefix });
      const job = await failedJob(q, id);
      await q.close();
      assert.match(job.failedReason, new RegExp(`^JOB_INVALID: this ${stage} job was not made by the pipeline: ${stage} runs only once (verify|unpack) is done`));
      assert.equal(job.attemptsMade, 1, 'never retried');
    }
    const rec = (await getImport(sdb.pool, p.importId))!;
    assert.deepEqual([rec.state, rec.errorCode, rec.error], [failed.state, 'BUNDLE_EXPIRED', failed.error]);
    assert.deepEqual(rec.stages, failed.stages);
  });

  it('a stage job with data null or a field missing fails JOB_INVALID at once, never retried', async () => {
    const q = new Queue('verify', { connection: queues.connection, prefix: redis.prefix });
    const cases: Array<[unknown, RegExp]> = [
      [null, /its data is null/],
      [{ importId: '0123456789abcdef01234567' }, /its bucket is missing/],
      [{ importId: '../../etc', bucket: 'b', key: 'k', etag: 'e' }, /is not an import id/],
      [{ importId: '0123456789abcdef01234567', bucket: 'b', key: 'k', etag: 'e' }, /no import 0123456789abcdef01234567 is on record/],
    ];
    for (const [data, reason] of cases) {
      const added = await call('POST', '/admin/queues/api/queues/verify/add', basic, { name: 'verify', data, options: { attempts: 4 } });
      assert.equal(added.status, 200, JSON.stringify(added.body));
      const id = (added.body.job as { id: string }).id;
      const job = await failedJob(q, id);
      assert.match(job.failedReason ?? '', /^JOB_INVALID: /, JSON.stringify(job.toJSON()));
      assert.match(job.failedReason, reason);
      assert.equal(job.attemptsMade, 1, `${JSON.stringify(data)}: never retried`);
    }
    await q.close();
    assert.equal(worker!.exitCode, null, 'the worker is still running');
  });
});
