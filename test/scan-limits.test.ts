/**
 * The scan API under hostile input, against a DB of real records and the real
 * Redis: a body over the limit and an SBOM of too many components are 413
 * with a clear message; 20,000 levels of nesting and a NUL byte in one purl
 * are a 400 or one component "not checked" — never a 500; answers are bounded;
 * a client may not run more scans at once than allowed; a large scan leaves
 * the event loop free for health checks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { bounded, scanRoutes } from '../api/scan-routes.ts';
import { loadConfig } from '../lib/config.ts';
import { MAX_COMPONENTS } from '../scan/sbom.ts';
import { createLoadedScanDb, type ScanDb } from './helpers/scan-db.ts';
import { testRedisPrefix } from './helpers/services.ts';

const FEEDS = { files: ['osv/npm/GHSA-35jh-r3h4-6jhm.json', 'osv/npm/GHSA-jf85-cpcp-j695.json'] };

const cdx = (components: unknown[]) => ({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components });
const lib = (name: string, purl: string) => ({ type: 'library', 'bom-ref': name, name, purl });

describe('scan API limits', () => {
  let sdb: ScanDb;
  let redis: Redis;
  const rp = testRedisPrefix('scan-limits');

  before(async () => {
    sdb = await createLoadedScanDb('scan-limits', FEEDS, '2026-11-29');
    redis = new Redis(rp.redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis?.disconnect();
    await rp.cleanup();
    await sdb?.close();
  });

  async function app(env: Record<string, string> = {}, hold?: Promise<void>): Promise<FastifyInstance> {
    const a = Fastify();
    a.get('/healthz', async () => ({ status: 'ok' }));
    await a.register(scanRoutes, {
      pool: sdb.pool,
      redis,
      config: loadConfig({ DATABASE_URL: sdb.db.url, REDIS_URL: rp.redisUrl, QUOTA_ANON: '1000', ...env }),
      // with `hold`, every scan is held in its quota delay (anonymous scans slowed 1000-fold) until released
      quota: { keyPrefix: `${rp.prefix}:q`, ...(hold ? { anonSlowdown: 1000 } : {}) },
      // `hold` keeps a scan running (the quota delay is the last step of a scan)
      sleep: async () => {
        await hold;
      },
    });
    return a;
  }

  const post = (a: FastifyInstance, body: unknown, raw?: string) =>
    a.inject({ method: 'POST', url: '/api/v1/scan', headers: { 'content-type': 'application/json' }, payload: raw ?? JSON.stringify(body) });

  it('a body over STELLA_SCAN_MAX_BYTES is 413 SBOM_TOO_LARGE', async () => {
    const a = await app({ STELLA_SCAN_MAX_BYTES: '4096' });
    const r = await post(a, cdx(Array.from({ length: 200 }, (_, i) => lib(`p${i}`, `pkg:npm/p${i}@1.0.0`))));
    assert.equal(r.statusCode, 413);
    assert.equal(r.json().error.code, 'SBOM_TOO_LARGE');
    assert.match(r.json().error.message, /larger than 4096 bytes \(STELLA_SCAN_MAX_BYTES\)/);
  });

  it('more components than the limit is 413 SBOM_TOO_LARGE, counted before anything is matched', async () => {
    const a = await app();
    const r = await post(a, cdx(Array.from({ length: MAX_COMPONENTS + 1 }, (_, i) => ({ type: 'library', name: `p${i}` }))));
    assert.equal(r.statusCode, 413);
    assert.match(r.json().error.message, new RegExp(`more than ${MAX_COMPONENTS} components`));
  });

  it('20,000 levels of nesting are a 400 with the path, not a crash', async () => {
    const a = await app();
    // written as text: JSON.stringify itself would overflow on such a document
    const n = 20_000;
    const raw = `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[${'{"type":"library","name":"n","components":['.repeat(n)}{"type":"library","name":"deepest"}${']}'.repeat(n)}]}`;
    const r = await post(a, null, raw);
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'SBOM_INVALID');
    assert.match(r.json().error.message, /nested 65 levels deep, over the limit of 64/);
  });

  it('a NUL byte in one purl makes that component "not checked"; the others are scanned', async () => {
    const a = await app();
    const r = await post(a, cdx([lib('lodash', 'pkg:npm/lodash@4.17.15'), lib('evil', 'pkg:npm/evil\u0000name@1.0.0')]));
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as { findings: Array<{ package: string }>; notChecked: Array<{ name: string; reason: string; purl: string }> };
    assert.ok(body.findings.some((f) => f.package === 'lodash'));
    const evil = body.notChecked.find((n) => n.name === 'evil');
    assert.match(evil?.reason ?? '', /purl holds a control character/);
    assert.equal(evil?.purl, 'pkg:npm/evil\ufffdname@1.0.0');
  });

  it('answers are bounded: at most STELLA_SCAN_MAX_FINDINGS entries, the summary counts them all', async () => {
    const a = await app({ STELLA_SCAN_MAX_FINDINGS: '3' });
    const many = Array.from({ length: 10 }, (_, i) => lib(`lodash-${i}`, `pkg:npm/lodash@4.17.${i}`));
    const r = await post(a, cdx(many));
    assert.equal(r.statusCode, 200);
    const body = r.json() as { findings: unknown[]; summary: { findings: number }; truncated: { findings: number } | null };
    assert.equal(body.findings.length, 3);
    assert.ok(body.summary.findings > 3);
    assert.equal(body.truncated?.findings, body.summary.findings - 3);
    assert.deepEqual(bounded({ findings: [1], notChecked: [] }, 3).truncated, null);
  });

  it('one client runs at most STELLA_SCAN_PER_CLIENT scans at once (429), the host at most STELLA_SCAN_CONCURRENCY (503)', async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const a = await app({ STELLA_SCAN_PER_CLIENT: '1', STELLA_SCAN_CONCURRENCY: '2', QUOTA_ANON: '0' }, hold);
    const body = cdx([lib('lodash', 'pkg:npm/lodash@4.17.15')]);
    const send = (ip: string) => a.inject({ method: 'POST', url: '/api/v1/scan', remoteAddress: ip, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    const first = send('10.0.0.1'); // over its quota of 0: held in the quota delay, so it keeps running
    await new Promise((r) => setTimeout(r, 300));
    const same = await send('10.0.0.1');
    assert.equal(same.statusCode, 429);
    assert.equal(same.json().error.code, 'SCAN_BUSY');
    assert.equal(same.headers['retry-after'], '1');
    const second = send('10.0.0.2');
    await new Promise((r) => setTimeout(r, 300));
    const third = await send('10.0.0.3');
    assert.equal(third.statusCode, 503);
    assert.match(third.json().error.message, /2 scans are running \(STELLA_SCAN_CONCURRENCY=2\)/);
    release();
    assert.equal((await first).statusCode, 200);
    assert.equal((await second).statusCode, 200);
    assert.equal((await send('10.0.0.1')).statusCode, 200, 'free again once its scan ended');
  });

  it('a large scan leaves the event loop free: a health check answers while it runs', async () => {
    const a = await app();
    await a.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (a.server.address() as { port: number }).port;
      const big = cdx(Array.from({ length: MAX_COMPONENTS }, (_, i) => lib(`c${i}`, `pkg:npm/c${i % 5000}@1.${i % 7}.0`)));
      const t0 = performance.now();
      const scan = fetch(`http://127.0.0.1:${port}/api/v1/scan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(big) });
      let scanMs = 0;
      void scan.then(() => (scanMs = performance.now() - t0));
      // A health check every 10 ms until the scan answers: each must come back promptly, and
      // several must come back before the scan does (a scan holding the event loop answers none).
      const during: number[] = [];
      const checks: Promise<void>[] = [];
      while (scanMs === 0 && performance.now() - t0 < 30_000) {
        const sent = performance.now();
        checks.push(
          fetch(`http://127.0.0.1:${port}/healthz`).then((r) => {
            if (r.ok && scanMs === 0) during.push(performance.now() - sent);
          }),
        );
        await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(checks);
      const res = await scan;
      assert.equal(res.status, 200);
      assert.ok(during.length >= 3, `health checks answered during the ${Math.round(scanMs)} ms scan: ${during.length}`);
      assert.ok(Math.max(...during) < 500, `a health check waited ${Math.round(Math.max(...during))} ms during the scan`);
    } finally {
      await a.close();
    }
  });
});
