/**
 * The intranet mirror: kits built from real feed records
 * (full, then nightly deltas with their --full-out kits), an index.json beside
 * them, served over HTTP from a directory by node:http on loopback. A real
 * worker process, air-gapped, with OUK_MIRROR_URL and a 2-second
 * OUK_MIRROR_SCHEDULE brings an empty site to the newest delta with no command
 * typed; `stella ouk mirror pull --dry-run` plans and changes nothing; a kit
 * altered on the mirror, or signed by another key, never reaches the bucket; a
 * chain with a missing middle delta falls back to the newest full kit; a
 * malformed index is refused with MIRROR_INDEX_INVALID; air-gap mode allows
 * the mirror's host:port and still refuses every other.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Job, Queue } from 'bullmq';
import { MIRROR_QUEUE, RECONCILE_QUEUE } from '../queue/queues.ts';
import { createRedis } from '../queue/connection.ts';
import { type BuildResult, type WrittenBundle } from '../builder/build.ts';
import { updateMirrorIndex } from '../builder/mirror-index-file.ts';
import { MAX_MIRROR_INDEX_BYTES, parseMirrorIndex, type MirrorIndex } from '../bundle/mirror-index.ts';
import { planMirror } from '../functions/mirror/plan.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { recentImports } from '../infra/import-records/index.ts';
import { allowedEndpoints, installAirgapGuard, uninstallAirgapGuard } from '../lib/airgap.ts';
import { loadConfig, parseSchedule } from '../lib/config.ts';
import { EXIT_CODES, findOukError, isOukError, OukError } from '../lib/errors.ts';
import { countMirrorPull, registry } from '../lib/metrics.ts';
import { editRecord as edit, FEEDS, buildSnapshot, shared, type Snapshot } from './helpers/feed-snapshots.ts';
import { freePort, repoRoot, runStella, testRedisPrefix, tmpDir, type CliRun, type TestRedisPrefix } from './helpers/services.ts';
import { FAST_RETRIES, fixtureEnv, pipelineFixture, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const V = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24'] as const;

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let server: http.Server;
let mirrorBase: string;
let worker: ChildProcess | undefined;
let api: ChildProcess | undefined;
let apiPort = 0;
const root = tmpDir('mirror-root');
const work = tmpDir('mirror-work');
/** request paths the mirror served, in order */
const served: string[] = [];
const kits: { full0?: BuildResult; d1?: BuildResult; d2?: BuildResult; d3?: BuildResult; d4?: BuildResult } = {};
const ghsa = fs.readdirSync(path.join(FEEDS, 'ghsa')).filter((f) => f.endsWith('.json')).sort();

function build(name: string, s: Snapshot, version: string, base?: BuildResult): Promise<BuildResult> {
  const out = path.join(work, 'kits', `stella-ouk-${version}.tar.gz`);
  const fullOut = base ? path.join(work, 'kits', `stella-ouk-${version}-full.tar.gz`) : undefined;
  return buildSnapshot(s, { work, name, version, keyPath: fx.privateKey, out, base, fullOut, tmpDir: work });
}

/** A mirror directory `name` holding copies of `bundles` (with .sig and .sigstore.json) and their index.json. */
async function mirrorDir(name: string, bundles: WrittenBundle[]): Promise<string> {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const copies: WrittenBundle[] = [];
  for (const b of bundles) {
    const out = path.join(dir, path.basename(b.out));
    for (const suffix of ['', '.sig', '.sigstore.json']) fs.copyFileSync(`${b.out}${suffix}`, `${out}${suffix}`);
    copies.push({ ...b, out });
  }
  await updateMirrorIndex(path.join(dir, 'index.json'), copies);
  return dir;
}

function env(mirror: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return fixtureEnv(fx, redis, { ...FAST_RETRIES, OUK_TRUSTED_KEYS: fx.publicKey, OUK_MIRROR_URL: `${mirrorBase}/${mirror}/`, STELLA_AIRGAP: 'true', LOG_LEVEL: 'warn', ...extra });
}

function stella(args: string[], mirror: string, extra: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: env(mirror, extra) });
}

async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, '', true) as AsyncIterable<{ name?: string }>) if (o.name && !o.name.startsWith('staged/')) keys.push(o.name);
  return keys.sort();
}

async function activeVersion(): Promise<string | null> {
  return (await readActivePointer(fx.pool)).activeVersion;
}

function workerLog(): string {
  const f = path.join(fx.dir, 'worker.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-4000) : '';
}

before(async () => {
  fx = await pipelineFixture('mirror');
  redis = testRedisPrefix('mirror');
  server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://mirror').pathname);
    served.push(rel);
    const file = path.join(root, rel);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(fs.statSync(file).size) });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  mirrorBase = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  // Small snapshots of real GHSA records: 40, then added, changed, removed.
  const s0: Snapshot = new Map();
  for (const f of ghsa.slice(0, 40)) s0.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  const s1: Snapshot = new Map(s0);
  for (const f of ghsa.slice(40, 45)) s1.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  await edit(s1, `ghsa/${ghsa[0]}`, (r) => { r.summary = `${String(r.summary ?? '')} (revised)`; });
  const s2: Snapshot = new Map(s1);
  s2.delete(`ghsa/${ghsa[5]}`);
  await edit(s2, `ghsa/${ghsa[1]}`, (r) => { r.summary = `${String(r.summary ?? '')} (revised)`; });
  const s3: Snapshot = new Map(s2);
  for (const f of ghsa.slice(45, 48)) s3.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  const s4: Snapshot = new Map(s3);
  await edit(s4, `ghsa/${ghsa[2]}`, (r) => { r.summary = `${String(r.summary ?? '')} (revised)`; });

  kits.full0 = await build('full0', s0, V[0]);
  kits.d1 = await build('d1', s1, V[1], kits.full0);
  kits.d2 = await build('d2', s2, V[2], kits.d1);
  kits.d3 = await build('d3', s3, V[3], kits.d2);
  kits.d4 = await build('d4', s4, V[4], kits.d3);

  await mirrorDir('good', [kits.full0, kits.d1, kits.d2]);
  // the middle delta (d3) missing: from 2026-11-22 the chain breaks; the full kit of 2026-11-24 is there
  await mirrorDir('gap', [kits.full0, kits.d1, kits.d2, kits.d4, kits.d4.full!]);

  // altered on the mirror: one byte of the kit changed, its index entry as published
  const tampered = await mirrorDir('tampered', [kits.full0]);
  const t = path.join(tampered, path.basename(kits.full0.out));
  const bytes = fs.readFileSync(t);
  bytes[bytes.length - 100] ^= 0xff;
  fs.writeFileSync(t, bytes);

  // a kit whose .sig is not its own (a valid signature over other bytes), its index entry right
  const badsig = await mirrorDir('badsig', [kits.full0]);
  fs.copyFileSync(`${kits.d1.out}.sig`, path.join(badsig, `${path.basename(kits.full0.out)}.sig`));
  fs.rmSync(path.join(badsig, `${path.basename(kits.full0.out)}.sigstore.json`));

  // a hostile index: a path outside the mirror directory
  const bad = path.join(root, 'bad');
  fs.mkdirSync(bad);
  const good = JSON.parse(fs.readFileSync(path.join(root, 'good', 'index.json'), 'utf8')) as MirrorIndex;
  good.kits[0]!.file = '../../etc/stella-ouk-2026-11-20.tar.gz';
  fs.writeFileSync(path.join(bad, 'index.json'), JSON.stringify(good));
});

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 20_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function startService(name: string, entry: string, extra: NodeJS.ProcessEnv): ChildProcess {
  const log = fs.openSync(path.join(fx.dir, `${name}.log`), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env: env('good', { LOG_LEVEL: 'info', ...extra }), stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return child;
}

after(async () => {
  await stop(worker);
  await stop(api);
  uninstallAirgapGuard();
  await new Promise((r) => server?.close(r));
  await redis?.cleanup();
  await fx?.close();
});

describe('index.json', () => {
  test('stella ouk build --index writes it beside the kit, sorted, and a second build adds to it', async () => {
    const dir = tmpDir('mirror-index');
    const feeds = path.join(work, 'feeds-full0');
    for (const v of [V[1], V[0]]) {
      const r = await runStella(['ouk', 'build', '--feeds', feeds, '--key', fx.privateKey, '--out', path.join(dir, `stella-ouk-${v}.tar.gz`), '--version', v, '--index'], { cwd: fx.dir, env: env('good') });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /index .*index\.json: stella-ouk-/);
    }
    const index = parseMirrorIndex(fs.readFileSync(path.join(dir, 'index.json')));
    assert.deepEqual(index.kits.map((k) => k.version), [V[0], V[1]], 'sorted by version');
    const k0 = index.kits[0]!;
    assert.equal(k0.kind, 'full');
    assert.equal(k0.base, null);
    assert.equal(k0.size, fs.statSync(path.join(dir, k0.file)).size);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
  });

  test('the mirror directory lists full, deltas (with their bases) and digests', () => {
    const index = parseMirrorIndex(fs.readFileSync(path.join(root, 'good', 'index.json')));
    assert.deepEqual(index.kits.map((k) => [k.version, k.kind, k.base?.version ?? null]), [[V[0], 'full', null], [V[1], 'delta', V[0]], [V[2], 'delta', V[1]]]);
    assert.equal(index.kits[2]!.sha256, kits.d2!.sha256);
  });

  test('hostile or malformed indexes are refused with MIRROR_INDEX_INVALID', () => {
    const good = fs.readFileSync(path.join(root, 'good', 'index.json'), 'utf8');
    const variants: Array<[string, string | Buffer, RegExp]> = [
      ['not JSON', '{"formatVersion": 1, "kits": [', /not JSON/],
      ['too large', Buffer.alloc(MAX_MIRROR_INDEX_BYTES + 1, 0x20), /more than/],
      ['unknown format', good.replace('"formatVersion": 1', '"formatVersion": 9'), /formatVersion/],
      ['a path, not a file name', good.replace(/"file": "stella-ouk-2026-11-21\.tar\.gz"/, '"file": "sub/../../x.tar.gz"'), /not a plain \*\.tar\.gz file name/],
      ['a delta without a base', good.replace(/"kind": "full",\n\s*"base": null/, '"kind": "delta",\n "base": null'), /delta without a base/],
      ['a bad digest', good.replace(/"sha256": "[0-9a-f]{64}"/, '"sha256": "XYZ"'), /sha256/],
    ];
    for (const [what, text, re] of variants) {
      assert.throws(() => parseMirrorIndex(text), (e: unknown) => isOukError(e) && e.code === 'MIRROR_INDEX_INVALID' && re.test(e.message), what);
    }
  });

  test('stella ouk mirror pull on a hostile index exits MIRROR_INDEX_INVALID and changes nothing', async () => {
    const r = await stella(['ouk', 'mirror', 'pull'], 'bad');
    assert.equal(r.code, EXIT_CODES.MIRROR_INDEX_INVALID, r.stderr);
    assert.match(r.stderr, /^error\[MIRROR_INDEX_INVALID\]: the mirror's index\.json is not a valid kit index: \/kits\/0\/file/m);
    assert.deepEqual(await bucketKeys(), []);
  });
});

describe('the plan', () => {
  test('OUK_MIRROR_SCHEDULE takes intervals and cron patterns', () => {
    assert.deepEqual(parseSchedule('15m'), { every: 900_000 });
    assert.deepEqual(parseSchedule('1h'), { every: 3_600_000 });
    assert.deepEqual(parseSchedule('0 */6 * * *'), { pattern: '0 */6 * * *' });
    assert.throws(() => parseSchedule('hourly'), /neither an interval/);
    assert.deepEqual(loadConfig({ OUK_MIRROR_URL: 'http://mirror.intranet:8000/stella' }).mirror?.schedule, { every: 3_600_000 });
    assert.equal(loadConfig({ OUK_MIRROR_URL: 'http://mirror.intranet:8000/stella' }).mirror?.url, 'http://mirror.intranet:8000/stella/');
  });

  test('mirror rounds are counted: ok, pending, failed by code, kits pulled, last success', async () => {
    countMirrorPull({ done: true, applied: [{}, {}] }, undefined, new Date(1_800_000_000_000));
    countMirrorPull({ done: false, applied: [] });
    countMirrorPull(null, new Error(`MIRROR_DIGEST_MISMATCH: ${new OukError('MIRROR_DIGEST_MISMATCH', 'x').message}`));
    const text = await registry.metrics();
    assert.match(text, /^ouk_mirror_pulls_total\{result="ok"\} 1$/m);
    assert.match(text, /^ouk_mirror_pulls_total\{result="pending"\} 1$/m);
    assert.match(text, /^ouk_mirror_pulls_total\{result="failed"\} 1$/m);
    assert.match(text, /^ouk_mirror_failures_total\{reason="MIRROR_DIGEST_MISMATCH"\} 1$/m);
    assert.match(text, /^ouk_mirror_kits_pulled_total 2$/m);
    assert.match(text, /^ouk_mirror_last_success_timestamp_seconds \d+/m);
  });

  test('a rolled-back version is not pulled again; in-flight and refused imports are waited for or retried', () => {
    const index = parseMirrorIndex(fs.readFileSync(path.join(root, 'good', 'index.json')));
    const [f0, d1, d2] = index.kits;
    const now = new Date('2026-12-01T00:00:00Z');
    const base = { id: 'x', objectKey: 'k', errorCode: null };
    // the site rolled d2 back to d1: d2 is not offered again
    const rolled = planMirror({ index, now, active: { version: V[1], digest: d1!.dbDigest }, imports: [{ ...base, digest: d2!.sha256, version: V[2], state: 'rolled-back' }] });
    assert.equal(rolled.route, 'up-to-date');
    // d1 under way, d2 refused earlier because its base was not active yet
    const mid = planMirror({
      index,
      now,
      active: { version: V[0], digest: f0!.dbDigest },
      imports: [
        { ...base, id: 'i1', digest: d1!.sha256, version: V[1], state: 'loading' },
        { ...base, id: 'i2', digest: d2!.sha256, version: V[2], state: 'failed', errorCode: 'DELTA_BASE_MISMATCH' },
      ],
    });
    assert.equal(mid.route, 'delta-chain');
    assert.deepEqual(mid.steps.map((s) => [s.action, s.importId]), [['wait', 'i1'], ['retry', 'i2']]);
  });

  test('`stella ouk mirror pull --dry-run` on an empty site: full, then both deltas — nothing downloaded or put', async () => {
    served.length = 0;
    const r = await stella(['ouk', 'mirror', 'pull', '--dry-run'], 'good');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^mirror http:\/\/127\.0\.0\.1:\d+\/good\/: active none, newest offered 2026-11-22: the newest full kit, then the deltas on top of it$/m);
    assert.match(r.stdout, /^ {2}1\. pull {4}stella-ouk-2026-11-20\.tar\.gz {2}full 2026-11-20: download, verify, put into the bucket$/m);
    assert.match(r.stdout, /^ {2}2\. pull {4}stella-ouk-2026-11-21\.tar\.gz {2}delta 2026-11-21 \(on 2026-11-20\)/m);
    assert.match(r.stdout, /^ {2}3\. pull {4}stella-ouk-2026-11-22\.tar\.gz {2}delta 2026-11-22 \(on 2026-11-21\)/m);
    assert.match(r.stdout, /dry run: nothing downloaded, nothing put into the bucket/);
    assert.deepEqual(served, ['/good/index.json'], 'only the index was read');
    assert.deepEqual(await bucketKeys(), []);
    assert.equal(await activeVersion(), null);
    const json = await stella(['ouk', 'mirror', 'pull', '--dry-run', '--json'], 'good');
    const plan = (JSON.parse(json.stdout) as { plan: { route: string; steps: Array<{ action: string; entry: { version: string } }> } }).plan;
    assert.equal(plan.route, 'full');
    assert.deepEqual(plan.steps.map((s) => s.entry.version), [V[0], V[1], V[2]]);
  });
});

describe('refused before the bucket', () => {
  test('a kit altered on the mirror: MIRROR_DIGEST_MISMATCH, the bucket and the active DB untouched', async () => {
    const r = await stella(['ouk', 'mirror', 'pull'], 'tampered');
    assert.equal(r.code, EXIT_CODES.MIRROR_DIGEST_MISMATCH, r.stderr);
    assert.match(r.stderr, /^error\[MIRROR_DIGEST_MISMATCH\]: stella-ouk-2026-11-20\.tar\.gz from the mirror is not the kit its index describes .*nothing was put into the bucket$/m);
    assert.deepEqual(await bucketKeys(), []);
    assert.equal(await activeVersion(), null);
  });

  test('a kit whose signature does not verify with the trusted key: SIGNATURE_MISMATCH, nothing put', async () => {
    const r = await stella(['ouk', 'mirror', 'pull'], 'badsig');
    assert.equal(r.code, EXIT_CODES.SIGNATURE_MISMATCH, r.stderr);
    assert.match(r.stderr, /^error\[SIGNATURE_MISMATCH\]: signature does not verify/m);
    assert.deepEqual(await bucketKeys(), []);
    assert.equal((await recentImports(fx.pool)).length, 0, 'no import was started');
  });

  test('one round at a time: a pull while another round holds the cluster\'s round lock waits, then ends pending, and puts nothing', async () => {
    const holder = await fx.pool.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(hashtext('ouk-mirror-round'))");
      const r = await stella(['ouk', 'mirror', 'pull'], 'good', { OUK_MIRROR_WAIT_SECONDS: '1' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^pending: another mirror round is under way/m);
      assert.deepEqual(await bucketKeys(), []);
      assert.equal((await recentImports(fx.pool)).length, 0, 'no import was started');
    } finally {
      await holder.query("SELECT pg_advisory_unlock(hashtext('ouk-mirror-round'))");
      holder.release();
    }
  });

  test('air-gap mode allows the named mirror and still refuses any other host', async () => {
    const cfg = loadConfig({ OUK_MIRROR_URL: `${mirrorBase}/good/`, DATABASE_URL: fx.db.url, REDIS_URL: redis.redisUrl, S3_ENDPOINT: fx.s3.endpoint });
    const other = await freePort();
    installAirgapGuard(allowedEndpoints(cfg));
    try {
      const ok = await fetch(`${mirrorBase}/good/index.json`);
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      for (const url of [`http://127.0.0.1:${other}/index.json`, 'http://mirror.example.org/index.json']) {
        await assert.rejects(fetch(url), (e: unknown) => findOukError(e, 'AIRGAP_VIOLATION') !== null, url);
      }
    } finally {
      uninstallAirgapGuard();
    }
    // the CLI, air-gapped with the mirror configured: an import URL on another port is refused
    const r = await stella(['ouk', 'import', `http://127.0.0.1:${other}/stella-ouk-2026-11-20.tar.gz`], 'good');
    assert.equal(r.code, EXIT_CODES.AIRGAP_VIOLATION, r.stderr);
  });
});

describe('the scheduler brings an empty site to the newest DB', () => {
  test('a worker with OUK_MIRROR_URL pulls full + two deltas in order, no command typed', async () => {
    // The API (for /metrics, fed from the maintenance queue's events) and a worker, air-gapped, as compose runs them.
    apiPort = await freePort();
    api = startService('api', 'api/main.ts', { STELLA_API_PORT: String(apiPort), STELLA_API_HOST: '127.0.0.1', OUK_WEBHOOK_TOKEN: 'mirror-test', STELLA_QUOTA_PREFIX: `${redis.prefix}:quota` });
    await waitFor('the API to answer', async () => fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false), 60_000, 200);
    worker = startService('worker', 'queue/worker-main.ts', { OUK_MIRROR_SCHEDULE: '2s', OUK_RECONCILE_SECONDS: '1' });
    await waitFor(
      'the newest delta to be active',
      async () => {
        if (worker!.exitCode !== null) throw new Error(`the worker exited with ${worker!.exitCode}:\n${workerLog()}`);
        return (await activeVersion()) === V[2];
      },
      180_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${workerLog()}`);
    });
    const pointer = await readActivePointer(fx.pool);
    assert.equal(pointer.activeDigest, kits.d2!.manifest.db.digest);
    // The round waited for each kit to become active; the one worker's reconciler ran meanwhile (its own queue and worker).
    const connection = createRedis(redis.redisUrl);
    const mirrorQ = new Queue(MIRROR_QUEUE, { connection, prefix: redis.prefix });
    const reconcileQ = new Queue(RECONCILE_QUEUE, { connection, prefix: redis.prefix });
    try {
      const pulled = (j: Job): boolean => j.name === 'mirror' && ((j.returnvalue as { applied?: unknown[] } | null)?.applied?.length ?? 0) > 0;
      const round = await waitFor('the round that pulled the kits to complete', async () => (await mirrorQ.getJobs(['completed'], 0, 300)).find(pulled), 30_000, 200);
      assert.ok(round.processedOn && round.finishedOn);
      const passes = await reconcileQ.getJobs(['completed'], 0, 300);
      const during = passes.filter((j) => j.name === 'reconcile' && j.processedOn! > round.processedOn! && j.finishedOn! < round.finishedOn!);
      assert.ok(during.length > 0, `reconcile passes ran while the ${round.finishedOn - round.processedOn} ms round waited`);
    } finally {
      await mirrorQ.close();
      await reconcileQ.close();
      connection.disconnect();
    }
    const imports = (await recentImports(fx.pool)).reverse();
    assert.deepEqual(imports.map((i) => [i.version, i.kind, i.startedBy, i.objectKey]), [
      [V[0], 'full', 'mirror', 'mirror/stella-ouk-2026-11-20.tar.gz'],
      [V[1], 'delta', 'mirror', 'mirror/stella-ouk-2026-11-21.tar.gz'],
      [V[2], 'delta', 'mirror', 'mirror/stella-ouk-2026-11-22.tar.gz'],
    ]);
    assert.ok(imports.every((i) => i.state === 'active' || i.state === 'superseded'), 'no import failed');
    const keys = await bucketKeys();
    for (const v of [V[0], V[1], V[2]]) for (const s of ['', '.sig', '.sigstore.json']) assert.ok(keys.includes(`mirror/stella-ouk-${v}.tar.gz${s}`), `${v}${s} in the bucket`);
    // the next rounds find nothing newer and pull nothing again
    const before2 = served.length;
    await waitFor('another scheduled round', async () => served.slice(before2).includes('/good/index.json'), 20_000, 200);
    assert.equal((await recentImports(fx.pool)).length, 3);
    assert.match(workerLog(), /"msg":"mirror pull done"/);
    const metrics = await waitFor(
      'the mirror rounds in /metrics',
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
        return /^ouk_mirror_kits_pulled_total 3$/m.test(text) && /^ouk_mirror_pulls_total\{result="ok"\} [1-9]/m.test(text) ? text : null;
      },
      20_000,
      250,
    );
    assert.match(metrics, /^ouk_mirror_last_success_timestamp_seconds \d/m);
    assert.doesNotMatch(metrics, /^ouk_mirror_pulls_total\{result="failed"\}/m, 'no round failed');
  });

  test('a chain with its middle delta missing: the newest full kit instead (dry run, then the pull)', async () => {
    const dry = await stella(['ouk', 'mirror', 'pull', '--dry-run'], 'gap');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /active 2026-11-22, newest offered 2026-11-24: the newest full kit, then the deltas on top of it/);
    assert.match(dry.stdout, /^ {2}1\. pull {4}stella-ouk-2026-11-24-full\.tar\.gz {2}full 2026-11-24/m);
    assert.doesNotMatch(dry.stdout, /^ {2}2\./m, 'one step: the delta of 2026-11-24 does not apply to 2026-11-22');
    assert.match(dry.stdout, /note: the chain of deltas from the active 2026-11-22 stops at 2026-11-22 .*the newest full kit 2026-11-24 instead/);

    const r = await stella(['ouk', 'mirror', 'pull'], 'gap');
    assert.equal(r.code, 0, `${r.stderr}\n${workerLog()}`);
    assert.match(r.stdout, /^activated 2026-11-24 \(full, stella-ouk-2026-11-24-full\.tar\.gz, import [0-9a-f]{24}\)$/m);
    assert.match(r.stdout, /^active 2026-11-24: up to date with the mirror$/m);
    const pointer = await readActivePointer(fx.pool);
    assert.equal(pointer.activeVersion, V[4]);
    assert.equal(pointer.activeDigest, kits.d4!.manifest.db.digest);
    const again = await stella(['ouk', 'mirror', 'pull', '--dry-run'], 'gap');
    assert.match(again.stdout, /up to date: the mirror has nothing newer/);
  });
});
