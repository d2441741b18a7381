/**
 * The scan as users run it: POST /api/v1/scan (fastify inject) and the
 * `stella scan` / `stella token` commands (real processes), against a DB of
 * real records, the real Redis (own quota prefix) and small quota limits set
 * through the environment.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { scanRoutes } from '../api/scan-routes.ts';
import { loadConfig } from '../lib/config.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import { issueToken } from '../lib/tokens.ts';
import type { CountedScan } from '../scan/service.ts';
import { createLoadedScanDb, type ScanDb } from './helpers/scan-db.ts';
import { childBaseEnv, repoRoot, testRedisPrefix, tmpDir } from './helpers/services.ts';

const FEEDS = { files: ['ghsa/GHSA-29mw-wpgm-hmr9.json', 'ghsa/GHSA-4xc9-xhrj-v574.json', 'osv/Go/GO-2020-0001.json'] };
const sbom = (components: { ref: string; purl: string }[]) => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  version: 1,
  components: components.map((c) => ({ type: 'library', 'bom-ref': c.ref, name: c.ref, purl: c.purl })),
});
const LODASH = sbom([
  { ref: 'lodash', purl: 'pkg:npm/lodash@4.17.10' },
  { ref: 'gin', purl: 'pkg:golang/github.com/gin-gonic/gin@v1.5.0' },
  { ref: 'odd', purl: 'pkg:hackage/aeson@2.1' },
]);

describe('scan API and CLI', () => {
  let sdb: ScanDb;
  let redis: Redis;
  const rp = testRedisPrefix('scan-api');
  const dir = tmpDir('scan-api');
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privPath = path.join(dir, 'jwt.key');
  const pubPath = path.join(dir, 'jwt.pub');
  fs.writeFileSync(privPath, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pubPath, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  const sbomPath = path.join(dir, 'bom.json');
  fs.writeFileSync(sbomPath, JSON.stringify(LODASH));

  let env: Record<string, string>;
  before(async () => {
    sdb = await createLoadedScanDb('scan-api', FEEDS, '2026-11-29');
    redis = new Redis(rp.redisUrl, { maxRetriesPerRequest: 1 });
    env = {
      DATABASE_URL: sdb.db.url,
      REDIS_URL: rp.redisUrl,
      QUOTA_ANON: '2',
      QUOTA_TOKEN: '3',
      QUOTA_BANNER_AT: '2',
      STELLA_JWT_PUBLIC_KEY: pubPath,
    };
  });
  after(async () => {
    redis?.disconnect();
    await rp.cleanup();
    await sdb?.close();
  });

  async function app(prefix: string, sleeps: number[], extraEnv: Record<string, string> = {}): Promise<FastifyInstance> {
    const a = Fastify();
    await a.register(scanRoutes, {
      pool: sdb.pool,
      redis,
      config: loadConfig({ ...env, ...extraEnv }),
      quota: { keyPrefix: `${rp.prefix}:${prefix}`, throttleStepMs: 10 },
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    return a;
  }

  it('POST /api/v1/scan: findings, DB version, quota from the environment, banner', async () => {
    const sleeps: number[] = [];
    const a = await app('anon', sleeps);
    const results: CountedScan[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: LODASH });
      assert.equal(res.statusCode, 200, res.body);
      results.push(res.json() as CountedScan);
      if (i === 0) {
        assert.equal(res.headers['x-quota-limit'], '2');
        assert.equal(res.headers['x-quota-remaining'], '1');
      }
    }
    const r = results[0]!;
    assert.equal(r.dbVersion, '2026-11-29');
    assert.deepEqual(r.findings.filter((f) => f.package === 'lodash').map((f) => f.advisoryId).sort(), ['CVE-2018-16487', 'CVE-2020-28500']);
    assert.ok(r.findings.every((f) => f.dbVersion === '2026-11-29'));
    assert.ok(r.findings.some((f) => f.aliases.includes('GO-2020-0001') || f.advisoryId === 'GO-2020-0001'));
    assert.equal(r.notChecked.length, 1);
    assert.equal(r.client.kind, 'anonymous');
    assert.deepEqual(results.map((x) => [x.quota.count, x.quota.limit, x.quota.overLimit]), [[1, 2, false], [2, 2, false], [3, 2, true]]);
    assert.equal(results[0]!.quota.banner, null);
    assert.match(results[1]!.quota.banner ?? '', /Reminder: 2 of 2 scans/);
    assert.match(results[2]!.quota.banner ?? '', /anonymous scans are now slowed by 10 %/);
    await a.close();
  });

  it('a token gets its own allowance and is throttled with a growing delay, never refused', async () => {
    const sleeps: number[] = [];
    const a = await app('token', sleeps);
    const { token, claims } = await issueToken({ privateKey: privPath, sub: 'ci', ttl: '600s' });
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: LODASH, headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as CountedScan;
      assert.equal(body.client.kind, 'token');
      assert.equal(body.client.subject, 'ci');
      counts.push(body.quota.count);
    }
    assert.deepEqual(counts, [1, 2, 3, 4, 5]);
    assert.deepEqual(sleeps, [10, 20], 'scans 4 and 5 over QUOTA_TOKEN=3 wait 10 then 20 ms');
    const tiered = (await issueToken({ privateKey: privPath, sub: 'big', tier: 100, ttl: '600s' })).token;
    const res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: LODASH, headers: { authorization: `Bearer ${tiered}` } });
    assert.equal((res.json() as CountedScan).quota.limit, 100);
    assert.ok(claims.jti);
    await a.close();
  });

  it('refuses bad tokens (401) and bad SBOMs (400, 415) with a clear error', async () => {
    const a = await app('errors', []);
    const expired = (await issueToken({ privateKey: privPath, sub: 'x', ttl: '1s', now: new Date(Date.now() - 60_000) })).token;
    let res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: LODASH, headers: { authorization: `Bearer ${expired}` } });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error.code, 'TOKEN_INVALID');
    assert.match(res.json().error.message, /expired/);
    res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: LODASH, headers: { authorization: 'Basic abc' } });
    assert.equal(res.statusCode, 401);
    res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: '{"bomFormat":', headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'SBOM_INVALID');
    res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: { bomFormat: 'CycloneDX', specVersion: '1.0' } });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /specVersion "1.0"/);
    res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: '<bom/>', headers: { 'content-type': 'application/xml' } });
    assert.equal(res.statusCode, 415);
    assert.equal(res.json().error.code, 'SBOM_INVALID');
    res = await a.inject({ method: 'POST', url: '/api/v1/scan', payload: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /not a JSON object/);
    await a.close();
  });

  it('concurrent API scans count exactly', async () => {
    // one client, 60 scans at once: allowed here, to count them (the limits have their own tests)
    const a = await app('concurrent', [], { STELLA_SCAN_PER_CLIENT: '60', STELLA_SCAN_CONCURRENCY: '60' });
    const res = await Promise.all(Array.from({ length: 60 }, () => a.inject({ method: 'POST', url: '/api/v1/scan', payload: sbom([{ ref: 'l', purl: 'pkg:npm/lodash@4.17.20' }]) })));
    assert.ok(res.every((r) => r.statusCode === 200));
    assert.deepEqual(res.map((r) => (r.json() as CountedScan).quota.count).sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1));
    await a.close();
  });

  function stella(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(repoRoot, 'bin/stella.js'), ...args],
        { env: childBaseEnv({ ...env, STELLA_QUOTA_PREFIX: `${rp.prefix}:cli`, STELLA_STATE_DIR: path.join(dir, 'state'), ...extra }), cwd: dir },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it('stella scan: table, --json, banner on stderr, --fail-on exit code', async () => {
    const table = await stella(['scan', sbomPath]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /Vulnerability DB 2026-11-29/);
    assert.match(table.stdout, /SEVERITY\s+CVSS\s+PACKAGE/);
    assert.match(table.stdout, /CVE-2018-16487/);
    assert.match(table.stdout, /Not checked \(1\)/);
    assert.ok(!table.stdout.includes('\x1b['), 'no colour when stdout is not a TTY');
    const lines = table.stdout.split('\n');
    const high = lines.findIndex((l) => l.startsWith('HIGH'));
    const medium = lines.findIndex((l) => l.startsWith('MEDIUM'));
    assert.ok(high !== -1 && medium !== -1 && high < medium, 'severity-sorted');

    const json = await stella(['scan', sbomPath, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout) as CountedScan;
    assert.equal(body.dbVersion, '2026-11-29');
    assert.equal(body.quota.count, 2);
    assert.match(json.stderr, /Reminder: 2 of 2 scans/, 'QUOTA_BANNER_AT=2 shows the banner');

    const fail = await stella(['scan', sbomPath, '--fail-on', 'high']);
    assert.equal(fail.code, 62, fail.stderr);
    const severe = body.findings.filter((f) => ['CRITICAL', 'HIGH'].includes(f.severity)).length;
    assert.ok(severe > 0);
    assert.match(fail.stderr, new RegExp(`error\\[FINDINGS_AT_OR_ABOVE_THRESHOLD\\]: ${severe} findings? at or above HIGH`));
    const pass = await stella(['scan', sbomPath, '--fail-on', 'CRITICAL']);
    assert.equal(pass.code, 0, pass.stderr);
    const any = await stella(['scan', sbomPath, '--fail-on', 'unknown']);
    assert.equal(any.code, 62, 'UNKNOWN means any finding');
    assert.match(any.stderr, new RegExp(`${body.findings.length} findings at or above UNKNOWN`));
    const usage = await stella(['scan', sbomPath, '--fail-on', 'severe']);
    assert.equal(usage.code, 2);

    // air-gapped: the scan reaches only the configured PostgreSQL and Redis, and still works
    const gapped = await stella(['scan', sbomPath, '--json'], { STELLA_AIRGAP: 'true' });
    assert.equal(gapped.code, 0, gapped.stderr);
    assert.equal((JSON.parse(gapped.stdout) as CountedScan).dbVersion, '2026-11-29');

    const bad = await stella(['scan', path.join(dir, 'missing.json')]);
    assert.equal(bad.code, 41);
    const badToken = await stella(['scan', sbomPath], { STELLA_JWT: 'abc.def.ghi' });
    assert.equal(badToken.code, 61);
    assert.match(badToken.stderr, /error\[TOKEN_INVALID\]/);
  });

  it('stella token issue and inspect', async () => {
    const issued = await stella(['token', 'issue', '--key', privPath, '--sub', 'team-a', '--tier', '500', '--ttl', '7d']);
    assert.equal(issued.code, 0, issued.stderr);
    const token = issued.stdout.trim();
    assert.match(issued.stderr, /issued ES256 token for team-a .*tier 500/);
    const badTtl = await stella(['token', 'issue', '--key', privPath, '--sub', 'team-a', '--ttl', 'soon']);
    assert.equal(badTtl.code, EXIT_CODES.USAGE);
    assert.match(badTtl.stderr, /error\[USAGE\].*--ttl soon: give a duration like 30d/);
    const inspected = await stella(['token', 'inspect', token]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, /"sub":"team-a"/);
    assert.match(inspected.stdout, /signature: verified \(ES256, issuer stella-ouk\)/);
    const other = await stella(['token', 'inspect', token], { STELLA_JWT_ISSUER: 'elsewhere' });
    assert.equal(other.code, 61);
    assert.match(other.stdout, /signature: REFUSED/);
    const unverified = await stella(['token', 'inspect', token], { STELLA_JWT_PUBLIC_KEY: '' });
    assert.match(unverified.stdout, /NOT verified/);
    const scanned = await stella(['scan', sbomPath, '--json'], { STELLA_JWT: token });
    assert.equal(scanned.code, 0, scanned.stderr);
    const body = JSON.parse(scanned.stdout) as CountedScan;
    assert.deepEqual([body.client.kind, body.quota.limit], ['token', 500]);
  });
});
