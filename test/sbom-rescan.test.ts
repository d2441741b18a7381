/**
 * Stored SBOMs and their re-scan, end to end on the real services: OWASP Juice
 * Shop's real SBOM (../shared/sboms) is stored with `stella sbom add` before
 * any DB exists; a full kit of real GHSA records is imported through the
 * BullMQ pipeline (workers with the re-scan worker), which scans it; a nightly
 * delta adds a CRITICAL advisory affecting one of its packages, and its
 * re-scan's diff shows it added (and counts it in /metrics); `stella ouk
 * rollback` takes the delta back, and the re-scan's diff shows it removed. An
 * SBOM none of whose packages the delta touched is carried forward without a
 * scan. Re-running a re-scan job changes nothing; bad input is a clear 4xx
 * or exit code; nothing counts against the quota.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { sbomRoutes } from '../api/sbom-routes.ts';
import { type BuildResult } from '../builder/build.ts';
import { rescanSbom } from '../functions/sboms/rescan.ts';
import { readDiff, readStatus } from '../functions/sboms/report.ts';
import { getImport, type ImportRecord } from '../infra/import-records/index.ts';
import { latestActivation } from '../infra/activations.ts';
import { loadConfig } from '../lib/config.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import { issueToken } from '../lib/tokens.ts';
import { registry } from '../lib/metrics.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject } from '../queue/ingest.ts';
import { watchQueueMetrics, type QueueMetricsWatcher } from '../queue/metrics-hooks.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { enqueueRescans, rescanJobId } from '../queue/rescan.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import type { Finding } from '../scan/findings.ts';
import { storedSbomScanner } from '../scan/stored.ts';
import { editRecord, buildSnapshot, shared, type Snapshot } from './helpers/feed-snapshots.ts';
import { runStella, sharedDir, testRedisPrefix, tmpDir, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, fixtureEnv, pipelineFixture, putBundle, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const JUICE = path.join(sharedDir, 'sboms', 'juice-shop-v11.1.2-bom.json');
const V = ['2026-11-20', '2026-11-21'] as const;
/** In the full kit: lodash, moment and semver advisories Juice Shop 11.1.2 is affected by. */
const BASE = ['GHSA-29mw-wpgm-hmr9', 'GHSA-446m-mv8f-q348', 'GHSA-c2qf-rxjj-qqgw'];
/** The delta's new advisory: xmlhttprequest-ssl < 1.6.1, CRITICAL; Juice Shop carries 1.5.5. */
const ADDED = 'GHSA-72mh-269x-7mh5';
const settings = fastSettings({ OUK_RESCAN_BACKOFF_MS: '100' });

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
let watcher: QueueMetricsWatcher;
let quotaRedis: Redis;
const work = tmpDir('sbom-rescan');
const bundles: { full?: BuildResult; delta?: BuildResult } = {};

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return fixtureEnv(fx, redis, { STELLA_QUOTA_PREFIX: `${redis.prefix}-quota`, ...extra });
}

function stella(args: string[], extra: NodeJS.ProcessEnv = {}): ReturnType<typeof runStella> {
  return runStella(args, { cwd: work, env: env(extra) });
}

function build(name: string, s: Snapshot, version: string, base?: BuildResult): Promise<BuildResult> {
  return buildSnapshot(s, { work, name, version, keyPath: fx.privateKey, out: path.join(work, `${name}.tar.gz`), base });
}

async function importBundle(b: { out: string }, key: string): Promise<ImportRecord> {
  const p = await putBundle(fx, b.out, key);
  await ingestObject({ pool: fx.pool, queues, settings }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
  return waitFor(`import of ${key}`, async () => {
    const r = await getImport(fx.pool, p.importId);
    return r && (r.state === 'active' || r.state === 'failed') ? r : null;
  }, 60_000);
}

/** Waits until every stored SBOM has a result for the newest activation. */
async function rescansDone(): Promise<void> {
  await waitFor('the re-scans of the newest activation', async () => {
    const s = await readStatus(fx.pool);
    return s.sboms.length > 0 && s.sboms.every((x) => !x.pending);
  }, 60_000);
}

function newFindingsCounted(severity: string): Promise<number> {
  return registry
    .getSingleMetric('ouk_rescan_new_findings_total')!
    .get()
    .then((m) => m.values.find((v) => v.labels.severity === severity)?.value ?? 0);
}

before(async () => {
  fx = await pipelineFixture('sbom-rescan');
  redis = testRedisPrefix('sbom-rescan');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  const config = { ...loadConfig({}), redisUrl: redis.redisUrl, queuePrefix: redis.prefix, databaseUrl: fx.db.url, bucket: fx.s3.bucket, store: fx.s3.storeConfig, trustedKeys: [fx.publicKey] };
  workers = startWorkers(config, { pool: fx.pool, store: fx.s3.store, settings, logger: fx.logger, scanner: storedSbomScanner(fx.pool) });
  watcher = await watchQueueMetrics({ connection: { url: redis.redisUrl }, prefix: redis.prefix, queues: [queues.rescan], logger: fx.logger });
  await watcher.ready();
  quotaRedis = new Redis(redis.redisUrl, { maxRetriesPerRequest: 1 });

  const s0: Snapshot = new Map(BASE.map((id) => [`ghsa/${id}.json`, shared(`ghsa/${id}.json`)]));
  const s1: Snapshot = new Map(s0);
  s1.set(`ghsa/${ADDED}.json`, shared(`ghsa/${ADDED}.json`));
  // and the semver advisory re-rated: HIGH → CRITICAL
  await editRecord(s1, 'ghsa/GHSA-c2qf-rxjj-qqgw.json', (r) => {
    (r.database_specific as Record<string, unknown>).severity = 'CRITICAL';
    r.severity = [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }];
    r.modified = '2026-11-21T00:00:00Z';
  });
  bundles.full = await build('full', s0, V[0]);
  bundles.delta = await build('delta', s1, V[1], bundles.full);
});

after(async () => {
  await watcher?.close();
  await workers?.close();
  await queues?.close();
  queues?.connection.disconnect();
  quotaRedis?.disconnect();
  await redis?.cleanup();
  await fx?.close();
});

describe('stored SBOMs, re-scanned after every activation', () => {
  test('stella sbom add before any DB: stored, not scanned yet', async () => {
    const add = await stella(['sbom', 'add', JUICE, '--name', 'juice-shop']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /stored juice-shop \(CycloneDX 1\.2, 840 components\)/);
    assert.match(add.stdout, /no DB is active yet: the first activation scans it/);
    // a second SBOM none of whose packages any kit here touches
    const other = path.join(work, 'other.json');
    fs.writeFileSync(other, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [{ type: 'library', 'bom-ref': 'lp', name: 'left-pad', version: '1.0.0', purl: 'pkg:npm/left-pad@1.0.0' }] }));
    assert.equal((await stella(['sbom', 'add', other, '--name', 'other'])).code, 0);
    const diff = await stella(['sbom', 'diff', 'juice-shop', '--json']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.equal(JSON.parse(diff.stdout).state, 'not-scanned');
  });

  test('the full import scans every stored SBOM', async () => {
    const r = await importBundle(bundles.full!, 'kits/stella-ouk-2026-11-20.tar.gz');
    assert.equal(r.state, 'active', `${r.errorCode} ${r.error}`);
    await rescansDone();
    const d = await readDiff<Finding>(fx.pool, 'juice-shop');
    assert.equal(d.state, 'first-scan');
    assert.equal(d.to, V[0]);
    const status = await stella(['sbom', 'status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as Awaited<ReturnType<typeof readStatus>>;
    const juice = s.sboms.find((x) => x.name === 'juice-shop')!;
    assert.equal(juice.latest?.dbVersion, V[0]);
    assert.ok(juice.latest!.counts.findings >= 3, `juice-shop findings ${juice.latest!.counts.findings}`);
  });

  test('a delta adding an advisory that affects it: the diff shows it added, /metrics counts it', async () => {
    const criticalBefore = await newFindingsCounted('CRITICAL');
    const r = await importBundle(bundles.delta!, 'kits/stella-ouk-2026-11-21.tar.gz');
    assert.equal(r.state, 'active', `${r.errorCode} ${r.error}`);
    await rescansDone();

    const text = await stella(['sbom', 'diff', 'juice-shop']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`juice-shop: ${V[0]} → ${V[1]}`));
    assert.match(text.stdout, /\+ CRITICAL\s+xmlhttprequest-ssl 1\.5\.5/);

    const json = await stella(['sbom', 'diff', 'juice-shop', '--json']);
    const d = JSON.parse(json.stdout) as Awaited<ReturnType<typeof readDiff<Finding>>>;
    assert.equal(d.state, 'diff');
    assert.deepEqual([d.from, d.to], [V[0], V[1]]);
    assert.deepEqual(d.added.map((f) => [f.package, f.installedVersion, f.severity]), [['xmlhttprequest-ssl', '1.5.5', 'CRITICAL']]);
    assert.ok([d.added[0]!.advisoryId, ...d.added[0]!.aliases].includes(ADDED), 'the added finding is the new advisory');
    assert.equal(d.added[0]!.dbVersion, V[1], 'findings in `stella scan --json` shape, with the DB version');
    assert.ok('purl' in d.added[0]! && 'fixedVersion' in d.added[0]!);
    assert.deepEqual(d.removed, []);
    // the re-rated semver advisory, once per semver version Juice Shop bundles
    assert.ok(d.changed.length >= 1);
    assert.deepEqual([...new Set(d.changed.map((c) => `${c.finding.package} ${c.before.severity}→${c.after.severity}`))], ['semver HIGH→CRITICAL']);

    // the partial re-scan (touched components only, merged) holds exactly what a whole scan finds
    const stored = await fx.pool.query<{ findings: Finding[] }>('SELECT findings FROM ouk_meta.sbom_results WHERE sbom = $1 AND db_version = $2', ['juice-shop', V[1]]);
    const whole = await storedSbomScanner(fx.pool).scan(JSON.parse(fs.readFileSync(JUICE, 'utf8')) as unknown);
    const ids = (fs: Finding[]): string[] => fs.map((f) => `${f.component} ${f.advisoryId} ${f.severity} ${f.dbVersion}`).sort();
    assert.deepEqual(ids(stored.rows[0]!.findings), ids(whole.findings));

    // the untouched SBOM was carried forward, not scanned; its diff is empty
    const carried = await fx.pool.query<{ scanned: boolean }>('SELECT scanned FROM ouk_meta.sbom_results WHERE sbom = $1 AND db_version = $2', ['other', V[1]]);
    assert.equal(carried.rows[0]?.scanned, false);
    const od = await readDiff(fx.pool, 'other');
    assert.deepEqual([od.from, od.to, od.added.length, od.removed.length], [V[0], V[1], 0, 0]);

    await waitFor('the metric', async () => (await newFindingsCounted('CRITICAL')) >= criticalBefore + 1, 10_000);
    assert.equal(await newFindingsCounted('CRITICAL'), criticalBefore + 1);

    const status = await stella(['sbom', 'status']);
    assert.match(status.stdout, new RegExp(`juice-shop\\s+${V[1]}.*${V[0]} → ${V[1]}: \\+1 -0 ~${d.changed.length} \\(CRITICAL CVE-2021-31597 xmlhttprequest-ssl\\)`));
  });

  test('re-running a re-scan job is a no-op; enqueueing again adds nothing', async () => {
    const act = (await latestActivation(fx.pool))!;
    const before = await fx.pool.query('SELECT * FROM ouk_meta.sbom_diffs ORDER BY sbom');
    const again = await rescanSbom({ pool: fx.pool, scanner: storedSbomScanner(fx.pool), logger: fx.logger, now: () => new Date() }, { sbom: 'juice-shop', activationSeq: act.seq });
    assert.equal(again.outcome, 'already');
    const job = await queues.rescan.getJob(rescanJobId({ sbom: 'juice-shop', activationSeq: act.seq }));
    assert.ok(job, 'the job is visible in the rescan queue');
    // after the delta only the components with a package it touched were scanned again
    const rv = job.returnvalue as { outcome: string; scannedComponents: number };
    assert.equal(rv.outcome, 'partial');
    assert.ok(rv.scannedComponents >= 3 && rv.scannedComponents < 840, `scanned ${rv.scannedComponents} of 840 components`);
    const re = await enqueueRescans({ pool: fx.pool, queue: queues.rescan, settings });
    assert.equal(re.jobs, 0);
    // the same job id added again is the same job
    const dup = await queues.rescan.add('rescan', { sbom: 'juice-shop', activationSeq: act.seq }, { jobId: job.id });
    assert.equal(dup.id, job.id);
    await sleep(300);
    assert.deepEqual((await fx.pool.query('SELECT * FROM ouk_meta.sbom_diffs ORDER BY sbom')).rows, before.rows);
  });

  test('stella ouk rollback: the re-scan diff shows the advisory removed', async () => {
    const rb = await stella(['ouk', 'rollback']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, new RegExp(`rolled back to ${V[0]}.*2 stored SBOMs queued for re-scan`));
    await rescansDone();
    const d = await readDiff<Finding>(fx.pool, 'juice-shop');
    assert.deepEqual([d.from, d.to], [V[1], V[0]]);
    assert.deepEqual(d.removed.map((f) => [f.package, f.installedVersion, f.severity]), [['xmlhttprequest-ssl', '1.5.5', 'CRITICAL']]);
    assert.deepEqual(d.added, []);
    assert.deepEqual([...new Set(d.changed.map((c) => `${c.finding.package} ${c.before.severity}→${c.after.severity}`))], ['semver CRITICAL→HIGH']);
    const text = await stella(['sbom', 'diff', 'juice-shop']);
    assert.match(text.stdout, /- CRITICAL\s+xmlhttprequest-ssl 1\.5\.5/);
    assert.match(text.stdout, new RegExp(`0 new, 1 resolved \\(fixed or withdrawn\\), ${d.changed.length} changed`));
  });

  test('bad input: clear exit codes from the CLI', async () => {
    const bad = path.join(work, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '0.9' }));
    const invalid = await stella(['sbom', 'add', bad, '--name', 'bad']);
    assert.equal(invalid.code, EXIT_CODES.SBOM_INVALID, invalid.stderr);
    assert.match(invalid.stderr, /error\[SBOM_INVALID\]: CycloneDX specVersion "0.9" is not supported/);
    fs.writeFileSync(bad, '{"bomFormat":');
    assert.equal((await stella(['sbom', 'add', bad, '--name', 'bad'])).code, EXIT_CODES.SBOM_INVALID);
    assert.equal((await stella(['sbom', 'add', path.join(work, 'missing.json'), '--name', 'x'])).code, EXIT_CODES.INPUT_NOT_FOUND);
    const name = await stella(['sbom', 'add', JUICE, '--name', '../etc']);
    assert.equal(name.code, EXIT_CODES.USAGE);
    assert.match(name.stderr, /error\[USAGE\]: SBOM name/);
    const dup = await stella(['sbom', 'add', JUICE, '--name', 'juice-shop']);
    assert.equal(dup.code, EXIT_CODES.SBOM_EXISTS);
    assert.match(dup.stderr, /--replace/);
    const big = await stella(['sbom', 'add', JUICE, '--name', 'big'], { STELLA_SCAN_MAX_BYTES: '1000' });
    assert.equal(big.code, EXIT_CODES.SBOM_TOO_LARGE);
    const unknown = await stella(['sbom', 'diff', 'nobody']);
    assert.equal(unknown.code, EXIT_CODES.SBOM_NOT_FOUND);
    assert.equal((await stella(['sbom', 'rm', 'nobody'])).code, EXIT_CODES.SBOM_NOT_FOUND);
    const list = await stella(['sbom', 'list', '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as { sboms: { name: string }[] }).sboms.map((s) => s.name), ['juice-shop', 'other']);
  });

  test('the HTTP API: add, list, diff, remove; 4xx for bad input, never 500', async () => {
    const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwtPriv = path.join(work, 'jwt.key');
    const jwtPub = path.join(work, 'jwt.pub');
    fs.writeFileSync(jwtPriv, jwt.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    fs.writeFileSync(jwtPub, jwt.publicKey.export({ type: 'spki', format: 'pem' }));
    const { token } = await issueToken({ privateKey: jwtPriv, sub: 'inventory', role: 'operator', ttl: '600s' });
    const scanToken = (await issueToken({ privateKey: jwtPriv, sub: 'ci-runner', ttl: '600s' })).token;
    const viewerToken = (await issueToken({ privateKey: jwtPriv, sub: 'dashboard', role: 'viewer', ttl: '600s' })).token;
    const app: FastifyInstance = Fastify();
    await app.register(sbomRoutes, { pool: fx.pool, config: loadConfig({ STELLA_SCAN_MAX_BYTES: String(2 * 1024 * 1024), STELLA_JWT_PUBLIC_KEY: jwtPub }), logger: fx.logger });
    const juice = fs.readFileSync(JUICE, 'utf8');
    const auth = { authorization: `Bearer ${token}` };
    const headers = { 'content-type': 'application/json', ...auth };
    // the site's inventory is never anonymous: no token, no access (reads included)
    for (const [method, url] of [['POST', '/api/v1/sboms?name=anon'], ['GET', '/api/v1/sboms'], ['GET', '/api/v1/sboms/juice-shop/diff'], ['DELETE', '/api/v1/sboms/juice-shop']] as const) {
      const r = await app.inject({ method, url, ...(method === 'POST' ? { payload: juice, headers: { 'content-type': 'application/json' } } : {}) });
      assert.equal(r.statusCode, 401, `${method} ${url}: ${r.body}`);
      assert.equal(r.json().error.code, 'TOKEN_REQUIRED');
    }
    // a scan token neither reads nor changes the inventory; a viewer token reads it only (403 ROLE_REQUIRED)
    for (const [tok, method, url] of [
      [scanToken, 'POST', '/api/v1/sboms?name=scan'],
      [scanToken, 'GET', '/api/v1/sboms'],
      [scanToken, 'GET', '/api/v1/sboms/juice-shop/diff'],
      [scanToken, 'DELETE', '/api/v1/sboms/juice-shop'],
      [viewerToken, 'POST', '/api/v1/sboms?name=viewer'],
      [viewerToken, 'DELETE', '/api/v1/sboms/juice-shop'],
    ] as const) {
      const r = await app.inject({ method, url, headers: { authorization: `Bearer ${tok}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, ...(method === 'POST' ? { payload: juice } : {}) });
      assert.equal(r.statusCode, 403, `${method} ${url}: ${r.body}`);
      assert.equal(r.json().error.code, 'ROLE_REQUIRED');
    }
    for (const url of ['/api/v1/sboms', '/api/v1/sboms/juice-shop/diff']) {
      assert.equal((await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${viewerToken}` } })).statusCode, 200, url);
    }
    let res = await app.inject({ method: 'POST', url: '/api/v1/sboms?name=juice-api', payload: juice, headers });
    assert.equal(res.statusCode, 201, res.body);
    const added = res.json() as { scan: { dbVersion: string; counts: { findings: number } } };
    assert.equal(added.scan.dbVersion, V[0]);
    res = await app.inject({ method: 'POST', url: '/api/v1/sboms?name=juice-api', payload: juice, headers });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'SBOM_EXISTS');
    res = await app.inject({ method: 'POST', url: '/api/v1/sboms', payload: { name: 'juice-api', replace: true, sbom: JSON.parse(juice) as unknown }, headers });
    assert.equal(res.statusCode, 200, res.body);
    for (const [payload, status, code] of [
      [{ bomFormat: 'CycloneDX', specVersion: '1.0' }, 400, 'SBOM_INVALID'],
      ['{"bomFormat":', 400, 'SBOM_INVALID'],
    ] as const) {
      const r = await app.inject({ method: 'POST', url: '/api/v1/sboms?name=x', payload, headers });
      assert.equal(r.statusCode, status, r.body);
      assert.equal(r.json().error.code, code);
    }
    res = await app.inject({ method: 'POST', url: '/api/v1/sboms', payload: juice, headers });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'USAGE');
    res = await app.inject({ method: 'POST', url: '/api/v1/sboms?name=x', payload: '<bom/>', headers: { ...auth, 'content-type': 'application/xml' } });
    assert.equal(res.statusCode, 415);
    res = await app.inject({ method: 'POST', url: '/api/v1/sboms?name=x', payload: juice, headers: { ...headers, authorization: 'Basic abc' } });
    assert.equal(res.statusCode, 401);
    const small = Fastify();
    await small.register(sbomRoutes, { pool: fx.pool, config: loadConfig({ STELLA_SCAN_MAX_BYTES: '1000', STELLA_JWT_PUBLIC_KEY: jwtPub }), logger: fx.logger });
    res = await small.inject({ method: 'POST', url: '/api/v1/sboms?name=x', payload: juice, headers });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'SBOM_TOO_LARGE');
    await small.close();

    res = await app.inject({ method: 'GET', url: '/api/v1/sboms', headers: auth });
    assert.deepEqual((res.json() as { sboms: { name: string }[] }).sboms.map((s) => s.name), ['juice-api', 'juice-shop', 'other']);
    res = await app.inject({ method: 'GET', url: '/api/v1/sboms/juice-shop/diff', headers: auth });
    assert.equal(res.statusCode, 200);
    assert.deepEqual([res.json().from, res.json().to], [V[1], V[0]]);
    res = await app.inject({ method: 'GET', url: '/api/v1/sboms/nobody/diff', headers: auth });
    assert.equal(res.statusCode, 404);
    res = await app.inject({ method: 'DELETE', url: '/api/v1/sboms/juice-api', headers: auth });
    assert.equal(res.statusCode, 204);
    res = await app.inject({ method: 'DELETE', url: '/api/v1/sboms/juice-api', headers: auth });
    assert.equal(res.statusCode, 404);
    await app.close();
  });

  test('neither stored nor re-scanned SBOMs count against the quota', async () => {
    const keys = await quotaRedis.keys(`${redis.prefix}-quota*`);
    assert.deepEqual(keys, []);
    const rm = await stella(['sbom', 'rm', 'other']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await fx.pool.query('SELECT count(*)::int AS n FROM ouk_meta.sbom_results WHERE sbom = $1', ['other'])).rows[0].n, 0);
  });
});
