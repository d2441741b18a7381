/**
 * A bad day for the mirror pull: a hostile mirror cannot hang
 * a round, fill a disk or starve maintenance, and a round that can pull
 * nothing says so. The mirror is a loopback node:http server that trickles,
 * lies about sizes and never ends its bodies; the site is this file's own
 * database, Redis prefix and s3rver, driven through the real `stella` CLI, a
 * real worker process and the real API process (for /metrics).
 *
 *   - index.json trickled one byte every 1.5 s (Content-Length 1000): the
 *     round ends with MIRROR_UNREACHABLE at its deadline
 *     (OUK_MIRROR_INDEX_TIMEOUT_SECONDS), or as soon as the minimum rate is
 *     missed (OUK_MIRROR_MIN_BYTES_PER_SECOND over OUK_MIRROR_STALL_SECONDS);
 *     in-process, with the garbage collector forced every 50 ms, the deadline
 *     and the rate check still fire (they did not: Node's fetch forgets the
 *     caller's abort signal once its request object is collected);
 *   - an endless index.json announced as 10^12 bytes is refused at once; a kit
 *     whose index entry announces 10^12 bytes is refused before a byte of it
 *     (or of its .sig) is fetched; a kit larger than the temporary directory's
 *     free space is refused the same way (INSUFFICIENT_SPACE); a kit body that
 *     runs past its announced size is cut at it;
 *   - a worker whose mirror rounds hang (the index trickles, the round's
 *     deadline OUK_MIRROR_ROUND_SECONDS is a few seconds): every round ends by
 *     its deadline, and reconcile and gc run meanwhile — a kit dropped while
 *     its notification was lost is ingested and activated;
 *   - an active DB newer than anything the mirror offers: `stella ouk mirror
 *     pull` says so (exit 0, a warning naming both versions), and scheduled
 *     rounds are counted as ouk_mirror_pulls_total{result="ahead-of-mirror"},
 *     never "ok", the last-success gauge untouched.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { type Job, Queue } from 'bullmq';
import { serializeMirrorIndex, type MirrorIndexEntry } from '../bundle/mirror-index.ts';
import { downloadSmall, downloadToFile, type FetchLimits } from '../functions/mirror/fetch.ts';
import { planMirror } from '../functions/mirror/plan.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { EXIT_CODES, isOukError } from '../lib/errors.ts';
import { countMirrorPull, registry } from '../lib/metrics.ts';
import { createRedis } from '../queue/connection.ts';
import { MAINTENANCE_QUEUE, MIRROR_QUEUE, RECONCILE_QUEUE } from '../queue/queues.ts';
import { freePort, repoRoot, runStella, testRedisPrefix, tmpDir, type CliRun, type TestRedisPrefix } from './helpers/services.ts';
import {
  FAST_RETRIES,
  fixtureEnv,
  makeBundle,
  pipelineFixture,
  putBundle,
  registerImport,
  runStages,
  stageContext,
  TEST_BUNDLE_EXPIRES,
  waitFor,
  type PipelineFixture,
} from './pipeline-fixtures.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let server: http.Server;
let base = '';
/** request paths the mirror was asked for, in order */
const served: string[] = [];
/** bytes the endless responses wrote before the client went away */
const sentBytes: Record<string, number> = {};
const tmp = tmpDir('mirror-faults-tmp');
let worker: ChildProcess | undefined;
let api: ChildProcess | undefined;

const ACTIVE = '2026-11-20';
const KIT = 'stella-ouk-2026-11-25.tar.gz';

function entry(file: string, version: string, size: number): MirrorIndexEntry {
  return { file, version, kind: 'full', base: null, dbDigest: 'a'.repeat(64), sha256: 'b'.repeat(64), size, created: `${version}T00:00:00Z`, expires: TEST_BUNDLE_EXPIRES };
}

const INDEXES: Record<string, MirrorIndexEntry[]> = {
  bigkit: [entry(KIT, '2026-11-25', 1e12)],
  roomy: [entry(KIT, '2026-11-25', 5e12)],
  liar: [entry(KIT, '2026-11-25', 256 * 1024)],
  behind: [entry('stella-ouk-2026-11-10.tar.gz', '2026-11-10', 1000)],
};

/** Writes `chunk` until the client goes away (or `limit` bytes), as fast as the socket drains. */
function endless(res: http.ServerResponse, name: string, limit = Infinity): void {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  sentBytes[name] = 0;
  let open = true;
  res.on('close', () => {
    open = false;
  });
  const pump = (): void => {
    while (open && sentBytes[name]! < limit) {
      sentBytes[name]! += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (open) res.end();
  };
  pump();
}

/** One byte every `everyMs` of a body announced as `length` bytes. */
function trickle(res: http.ServerResponse, length: number, everyMs: number): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(length) });
  let left = length;
  const t = setInterval(() => {
    res.write('x');
    if (--left === 0) {
      clearInterval(t);
      res.end();
    }
  }, everyMs);
  res.on('close', () => clearInterval(t));
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://mirror').pathname);
  served.push(rel);
  const [, dir, file] = rel.split('/');
  if (file === 'index.json') {
    if (dir === 'trickle') return trickle(res, 1000, 1500);
    if (dir === 'huge') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1e12) });
      return endless(res, 'huge');
    }
    const kits = INDEXES[dir ?? ''];
    if (kits) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(serializeMirrorIndex({ formatVersion: 1, kits }));
      return;
    }
  }
  if (dir === 'liar' && file === `${KIT}.sig`) {
    res.writeHead(200).end('MEUCIQDfake');
    return;
  }
  if (dir === 'liar' && file === KIT) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no Content-Length: chunked, and more than announced
    return endless(res, 'liar');
  }
  if (dir === 'endless') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    return endless(res, 'endless');
  }
  res.writeHead(404).end('not found');
}

function env(mirror: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return fixtureEnv(fx, redis, { ...FAST_RETRIES, OUK_TRUSTED_KEYS: fx.publicKey, OUK_MIRROR_URL: `${base}/${mirror}/`, STELLA_AIRGAP: 'true', LOG_LEVEL: 'warn', TMPDIR: tmp, ...extra });
}

async function pull(mirror: string, extra: NodeJS.ProcessEnv = {}): Promise<CliRun & { seconds: number }> {
  const t0 = Date.now();
  const r = await runStella(['ouk', 'mirror', 'pull'], { cwd: fx.dir, env: env(mirror, extra) });
  return { ...r, seconds: (Date.now() - t0) / 1000 };
}

function startService(name: string, entryFile: string, mirror: string, extra: NodeJS.ProcessEnv): ChildProcess {
  const log = fs.openSync(path.join(fx.dir, `${name}.log`), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', entryFile], { cwd: repoRoot, env: env(mirror, { LOG_LEVEL: 'info', ...extra }), stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, sleep(20_000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function logOf(name: string): string {
  const f = path.join(fx.dir, `${name}.log`);
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-4000) : '';
}

/** What the mirror rounds left under the CLI's temporary directory (their `stella-mirror-*` directories; tsx keeps its cache there too). */
function leftovers(): string[] {
  return fs.readdirSync(tmp).filter((d) => d.startsWith('stella-mirror-'));
}

before(async () => {
  fx = await pipelineFixture('mirror-faults');
  redis = testRedisPrefix('mirror-faults');
  server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

after(async () => {
  await stop(worker);
  await stop(api);
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await redis?.cleanup();
  await fx?.close();
});

describe('downloads cannot hang or fill a disk', () => {
  const limits = (over: Partial<FetchLimits>): FetchLimits => ({ maxBytes: 4096, timeoutMs: 600_000, minRate: { bytesPerSecond: 1, windowMs: 600_000 }, ...over });

  test('in-process, the garbage collector forced every 50 ms: the deadline and the minimum rate still fire', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const collect = setInterval(gc, 50);
    try {
      for (const [what, over, re] of [
        ['deadline', { timeoutMs: 2000 }, /did not finish within 2 s/],
        ['rate', { minRate: { bytesPerSecond: 100, windowMs: 2000 } }, /slower than 100 bytes\/s/],
      ] as const) {
        const t0 = Date.now();
        await assert.rejects(downloadSmall(fetch, `${base}/trickle/index.json`, limits(over)), (e: unknown) => isOukError(e) && e.code === 'MIRROR_UNREACHABLE' && re.test(e.message), what);
        const took = Date.now() - t0;
        assert.ok(took < 10_000, `${what}: ended after ${took} ms, not at its bound`);
      }
    } finally {
      clearInterval(collect);
    }
  });

  test('a body that runs past its ceiling is cut at the ceiling: no byte beyond it is written', async () => {
    const file = path.join(tmpDir('mirror-faults-cut'), 'kit.tar.gz');
    await assert.rejects(downloadToFile(fetch, `${base}/endless/kit`, file, limits({ maxBytes: 1024 * 1024 })), (e: unknown) => isOukError(e) && e.code === 'MIRROR_TOO_LARGE');
    assert.ok(fs.statSync(file).size <= 1024 * 1024, `${fs.statSync(file).size} bytes written`);
  });

  test('index.json one byte every 1.5 s (Content-Length 1000): MIRROR_UNREACHABLE at the index deadline', async () => {
    const r = await pull('trickle', { OUK_MIRROR_INDEX_TIMEOUT_SECONDS: '3' });
    assert.equal(r.code, EXIT_CODES.MIRROR_UNREACHABLE, r.stderr);
    assert.match(r.stderr, /^error\[MIRROR_UNREACHABLE\]: http:\/\/127\.0\.0\.1:\d+\/trickle\/index\.json did not finish within 3 s: check the mirror, or raise OUK_MIRROR_INDEX_TIMEOUT_SECONDS$/m);
    assert.ok(r.seconds < 30, `the CLI ended after ${r.seconds} s`);
  });

  test('the same, with a minimum rate: MIRROR_UNREACHABLE as soon as the rate is missed', async () => {
    const r = await pull('trickle', { OUK_MIRROR_MIN_BYTES_PER_SECOND: '100', OUK_MIRROR_STALL_SECONDS: '2' });
    assert.equal(r.code, EXIT_CODES.MIRROR_UNREACHABLE, r.stderr);
    assert.match(r.stderr, /index\.json sent \d bytes in 2 s, slower than 100 bytes\/s/);
    assert.ok(r.seconds < 30, `the CLI ended after ${r.seconds} s`);
  });

  test('an endless index.json announced as 10^12 bytes: refused at once, without reading it', async () => {
    const r = await pull('huge');
    assert.equal(r.code, EXIT_CODES.MIRROR_INDEX_INVALID, r.stderr);
    assert.match(r.stderr, /index\.json is larger than 4194304 bytes/);
    assert.ok(sentBytes.huge! < 64 * 1024 * 1024, `the mirror got to write ${sentBytes.huge} bytes`);
  });

  test('a kit whose index entry announces 10^12 bytes: MIRROR_TOO_LARGE before a byte of it is fetched', async () => {
    served.length = 0;
    const r = await pull('bigkit');
    assert.equal(r.code, EXIT_CODES.MIRROR_TOO_LARGE, r.stderr);
    assert.match(r.stderr, /announces stella-ouk-2026-11-25\.tar\.gz as 1000000000000 bytes, above OUK_MIRROR_MAX_KIT_BYTES \(8589934592\): refused before downloading/);
    assert.deepEqual([...new Set(served)], ['/bigkit/index.json'], 'only the index was asked for');
    assert.deepEqual(leftovers(), []);
  });

  test('a kit larger than the temporary directory has free: INSUFFICIENT_SPACE before a byte is fetched', async () => {
    served.length = 0;
    const r = await pull('roomy', { OUK_MIRROR_MAX_KIT_BYTES: String(1e13) });
    assert.equal(r.code, EXIT_CODES.INSUFFICIENT_SPACE, r.stderr);
    assert.match(r.stderr, /stella-ouk-2026-11-25\.tar\.gz \(5000000000000 bytes\) does not fit in .* bytes free\): free space there or point TMPDIR at a larger disk/);
    assert.deepEqual([...new Set(served)], ['/roomy/index.json']);
    assert.deepEqual(leftovers(), []);
  });

  test('a kit body longer than its index entry (no Content-Length): cut at the announced size, MIRROR_TOO_LARGE, nothing left', async () => {
    const r = await pull('liar');
    assert.equal(r.code, EXIT_CODES.MIRROR_TOO_LARGE, r.stderr);
    assert.match(r.stderr, /stella-ouk-2026-11-25\.tar\.gz is larger than 262144 bytes/);
    assert.deepEqual(leftovers(), [], 'the download directory is removed');
    const keys: string[] = [];
    for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, '', true) as AsyncIterable<{ name?: string }>) if (o.name) keys.push(o.name);
    assert.deepEqual(keys, [], 'nothing reached the bucket');
  });
});

describe('hung mirror rounds cannot starve maintenance', () => {
  test('rounds that hang on a trickling index end at their deadline; reconcile and gc run meanwhile; a kit whose notification was lost is activated', async () => {
    worker = startService('worker', 'queue/worker-main.ts', 'trickle', {
      OUK_MIRROR_SCHEDULE: '2s',
      // the index would take 25 minutes; only the round's deadline ends it
      OUK_MIRROR_INDEX_TIMEOUT_SECONDS: '3600',
      OUK_MIRROR_MIN_BYTES_PER_SECOND: '1',
      OUK_MIRROR_STALL_SECONDS: '3600',
      OUK_MIRROR_ROUND_SECONDS: '4',
      OUK_RECONCILE_SECONDS: '1',
      OUK_GC_SECONDS: '2',
    });
    const connection = createRedis(redis.redisUrl);
    const queue = (name: string): Queue => new Queue(name, { connection, prefix: redis.prefix });
    const [mirrorQ, reconcileQ, gcQ] = [queue(MIRROR_QUEUE), queue(RECONCILE_QUEUE), queue(MAINTENANCE_QUEUE)];
    try {
      // a round is hanging: the index is being trickled to it
      await waitFor('a mirror round to be under way', async () => (await mirrorQ.getActiveCount()) > 0, 60_000, 200).catch((e: Error) => {
        throw new Error(`${e.message}\n${logOf('worker')}`);
      });
      // the site's bucket has no webhook: dropped now, only the reconciler can find this kit
      const b = await makeBundle(fx, 'dropped.tar.gz', { version: '2026-11-15', advisories: 40, seed: 3 });
      await putBundle(fx, b.path, 'stella-ouk-2026-11-15.tar.gz');
      await waitFor('the dropped kit to be active', async () => (await readActivePointer(fx.pool)).activeVersion === '2026-11-15', 90_000, 250).catch((e: Error) => {
        throw new Error(`${e.message}\n${logOf('worker')}`);
      });
      const finished = async (q: Queue, name: string): Promise<Job[]> => (await q.getJobs(['completed', 'failed'], 0, 500)).filter((j) => j.name === name && j.processedOn && j.finishedOn);
      // a few rounds: each ends only by its deadline
      const rounds = await waitFor('three rounds to end', async () => {
        const r = await finished(mirrorQ, 'mirror');
        return r.length >= 3 ? r : null;
      }, 60_000, 500);
      for (const j of rounds) {
        const took = j.finishedOn! - j.processedOn!;
        // the round's deadline (4 s) and the grace a stopped job has to end (5 s)
        assert.ok(took < 4000 + 5000 + 2000, `a round held its slot ${took} ms`);
        assert.match(j.failedReason ?? '', /^MIRROR_UNREACHABLE: http:\/\/127\.0\.0\.1:\d+\/trickle\/index\.json was stopped: the mirror round reached its deadline of 4 s \(OUK_MIRROR_ROUND_SECONDS\)/);
      }
      const passes = await finished(reconcileQ, 'reconcile');
      const during = passes.filter((p) => rounds.some((r) => p.processedOn! > r.processedOn! && p.finishedOn! < r.finishedOn!));
      assert.ok(during.length >= 2, `${during.length} reconcile passes ran while a round hung`);
      const gcs = await finished(gcQ, 'gc');
      assert.ok(gcs.some((g) => g.returnvalue && rounds.some((r) => g.processedOn! > r.processedOn! && g.finishedOn! < r.finishedOn!)), 'gc ran while a round hung');
      assert.ok(await mirrorQ.getJobScheduler('mirror'), 'the mirror scheduler is on its own queue');
      assert.equal(await gcQ.getJobScheduler('mirror'), undefined, 'not on the maintenance queue any more');
    } finally {
      await Promise.all([mirrorQ, reconcileQ, gcQ].map((q) => q.close()));
      connection.disconnect();
      await stop(worker);
    }
  });
});

describe('a round that can pull nothing says so', () => {
  test('the plan: an active DB, or a version this site had, newer than anything the mirror offers is ahead-of-mirror, not up to date', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    const kits = [entry('stella-ouk-2026-12-10.tar.gz', '2026-12-10', 1000), entry('stella-ouk-2026-12-11.tar.gz', '2026-12-11', 1000)];
    const index = { formatVersion: 1, kits };
    const known = { id: 'f', objectKey: 'k', digest: 'c'.repeat(64), errorCode: null };
    // a kit from the future is active
    const future = planMirror({ index, now, active: { version: '2099-01-01', digest: 'c'.repeat(64) }, imports: [{ ...known, version: '2099-01-01', state: 'active' }] });
    assert.equal(future.route, 'ahead-of-mirror');
    assert.deepEqual([future.active, future.offered, future.floor], ['2099-01-01', '2026-12-11', '2099-01-01']);
    assert.match(future.notes.at(-1)!, /the active DB 2099-01-01 is newer than anything the mirror offers \(the mirror's newest kit is 2026-12-11\)/);
    // rolled back from it: the mirror has a kit newer than the active one, but not than the floor
    const rolled = planMirror({
      index,
      now,
      active: { version: '2026-12-10', digest: kits[0]!.dbDigest },
      imports: [{ ...known, version: '2099-01-01', state: 'rolled-back' }, { ...known, id: 'g', digest: kits[0]!.sha256, version: '2026-12-10', state: 'active' }],
    });
    assert.equal(rolled.route, 'ahead-of-mirror');
    assert.match(rolled.notes.at(-1)!, /this site had 2099-01-01 \(active now: 2026-12-10\), newer than anything the mirror offers .*: only kits newer than 2099-01-01 are pulled, so nothing can be/);
    // up to date: the mirror's newest is the active one
    const current = planMirror({ index, now, active: { version: '2026-12-11', digest: kits[1]!.dbDigest }, imports: [{ ...known, digest: kits[1]!.sha256, version: '2026-12-11', state: 'active' }] });
    assert.equal(current.route, 'up-to-date');
    // an empty mirror on an empty site is not "up to date" either
    assert.equal(planMirror({ index: { formatVersion: 1, kits: [] }, now, active: null, imports: [] }).route, 'nothing-applies');
  });

  test('counted under its own result: not ok, and not a success', async () => {
    const before = await registry.getSingleMetric('ouk_mirror_pulls_total')!.get();
    const ok = (m: typeof before): number => m.values.find((v) => v.labels.result === 'ok')?.value ?? 0;
    countMirrorPull({ done: true, applied: [], outcome: 'ahead-of-mirror' }, undefined, new Date(1_900_000_000_000));
    const after = await registry.getSingleMetric('ouk_mirror_pulls_total')!.get();
    assert.equal(ok(after), ok(before));
    assert.equal(after.values.find((v) => v.labels.result === 'ahead-of-mirror')?.value, 1);
    const last = await registry.getSingleMetric('ouk_mirror_last_success_timestamp_seconds')!.get();
    assert.notEqual(last.values[0]?.value, 1_900_000_000, 'the last-success gauge did not move');
  });

  test('an active DB newer than the mirror: `stella ouk mirror pull` warns, names both versions, pulls nothing; scheduled rounds count ahead-of-mirror', async () => {
    // the kit the hung-rounds test activated, else one of this test's own (in-process stages, no flow)
    let active = (await readActivePointer(fx.pool)).activeVersion;
    if (!active) {
      const b = await makeBundle(fx, 'active.tar.gz', { version: ACTIVE, advisories: 40, seed: 1 });
      const p = await putBundle(fx, b.path, `stella-ouk-${ACTIVE}.tar.gz`);
      await registerImport(fx, p);
      await runStages(p, stageContext(fx));
      await fx.pool.query('UPDATE ouk_meta.imports SET flow_added_at = now() WHERE id = $1', [p.importId]);
      active = ACTIVE;
    }
    assert.ok(active > '2026-11-10');

    const r = await pull('behind');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`active ${active}, newest offered -: the site is ahead of the mirror: nothing can be pulled`));
    assert.match(r.stdout, new RegExp(`^active ${active}: nothing pulled — the site is ahead of the mirror: nothing can be pulled \\(the mirror's newest: 2026-11-10\\)$`, 'm'));
    assert.doesNotMatch(r.stdout, /up to date/);
    assert.match(r.stderr, new RegExp(`^warning: the active DB ${active} is newer than anything the mirror offers \\(the mirror's newest kit is 2026-11-10\\)`, 'm'));

    const apiPort = await freePort();
    api = startService('api', 'api/main.ts', 'behind', { STELLA_API_PORT: String(apiPort), STELLA_API_HOST: '127.0.0.1', OUK_WEBHOOK_TOKEN: 'mirror-faults', STELLA_QUOTA_PREFIX: `${redis.prefix}-quota` });
    await waitFor('the API to answer', async () => fetch(`http://127.0.0.1:${apiPort}/healthz`).then((x) => x.ok, () => false), 60_000, 200);
    worker = startService('worker-behind', 'queue/worker-main.ts', 'behind', { OUK_MIRROR_SCHEDULE: '1s' });
    const metrics = await waitFor(
      'rounds counted as ahead-of-mirror',
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
        return /^ouk_mirror_pulls_total\{result="ahead-of-mirror"\} [2-9]/m.test(text) ? text : null;
      },
      60_000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${logOf('worker-behind')}\n${logOf('api')}`);
    });
    assert.doesNotMatch(metrics, /^ouk_mirror_pulls_total\{result="ok"\}/m);
    assert.match(metrics, /^ouk_mirror_last_success_timestamp_seconds 0$/m, 'no round counted as a success');
    assert.match(logOf('worker-behind'), new RegExp(`"msg":"mirror pull pulled nothing: the active DB ${active} is newer than anything the mirror offers`));
    await stop(worker);
    await stop(api);
  });
});
