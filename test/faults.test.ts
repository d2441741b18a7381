/**
 * Faults for real: the API and a worker run as processes (air-gapped, as
 * compose runs them) against a Redis and a PostgreSQL of this test's own
 * (test/helpers/private-services.ts), which it wipes, stops and restarts, and
 * an s3rver that posts MinIO webhooks. Scans run in a loop against the API the
 * whole time. For every fault:
 *
 *   - the import completes, and is activated exactly once;
 *   - the active DB is the old one, whole, until the switch (every scan answer
 *     names one version; versions only move forward);
 *   - scans keep answering: 503 with a clear code while a service is down is
 *     fine, a 500 never is;
 *   - and at the end, garbage collection leaves nothing behind but the active
 *     and previous DBs.
 *
 * The faults: Redis restarted empty in the middle of a load; PostgreSQL shut
 * down (immediate, a crash) for several seconds in the middle of a load; the
 * API down while a kit is dropped (its notification lost); a completed load of
 * the active import replayed. docs/reliability.md has the table.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import pg from 'pg';
import { generateKeyPair } from '../signing/index.ts';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { childBaseEnv, freePort, repoRoot, runStella, startTestS3, tmpDir, type TestS3 } from './helpers/services.ts';
import { startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from './helpers/private-services.ts';
import { putFile, TEST_BUNDLE_EXPIRES, waitFor } from './pipeline-fixtures.ts';

const TOKEN = 'faults-webhook-token';
const ADVISORIES = 25_000;

let redis: PrivateRedis;
let postgres: PrivatePostgres;
let s3: TestS3;
let dir: string;
let apiPort: number;
let env: NodeJS.ProcessEnv;
let privateKey: string;
let api: ChildProcess | null = null;
let worker: ChildProcess | null = null;
let pool: pg.Pool;

interface ScanAnswer {
  status: number;
  version: string | null;
  code: string | null;
}
const answers: ScanAnswer[] = [];
let scanning = false;
let scanLoop: Promise<void> = Promise.resolve();

const SBOM = JSON.stringify({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  components: Array.from({ length: 20 }, (_, i) => ({ type: 'library', name: `p${i}`, purl: `pkg:npm/p${i}@1.${i}.0` })),
});

function logFile(name: string): string {
  return path.join(dir, `${name}.log`);
}

function startService(name: 'api' | 'worker'): ChildProcess {
  const log = fs.openSync(logFile(name), 'a');
  const entry = name === 'api' ? 'api/main.ts' : 'queue/worker-main.ts';
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return child;
}

async function stopService(child: ChildProcess | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await Promise.race([gone, sleep(20_000).then(() => child.kill('SIGKILL'))]);
}

async function apiUp(): Promise<void> {
  await waitFor('the API to answer', () => fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false), 60_000, 200);
}

function logs(): string {
  return ['api', 'worker'].map((n) => `--- ${n}\n${fs.existsSync(logFile(n)) ? fs.readFileSync(logFile(n), 'utf8').slice(-4000) : ''}`).join('\n');
}

function startScans(): void {
  scanning = true;
  scanLoop = (async () => {
    while (scanning) {
      try {
        const r = await fetch(`http://127.0.0.1:${apiPort}/api/v1/scan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: SBOM, signal: AbortSignal.timeout(30_000) });
        const body = (await r.json().catch(() => ({}))) as { dbVersion?: string; error?: { code?: string } };
        answers.push({ status: r.status, version: body.dbVersion ?? null, code: body.error?.code ?? null });
      } catch {
        answers.push({ status: 0, version: null, code: 'API_DOWN' }); // the API itself was down (a fault of its own)
      }
      await sleep(100);
    }
  })();
}

async function kit(version: string, seed: number): Promise<string> {
  const file = path.join(dir, `stella-ouk-${version}.tar.gz`);
  await writeSyntheticBundle(file, { version, advisories: ADVISORIES, seed, expires: TEST_BUNDLE_EXPIRES }, privateKey);
  return file;
}

async function drop(file: string): Promise<void> {
  await putFile({ s3 }, `${file}.sig`, `${path.basename(file)}.sig`);
  await putFile({ s3 }, file, path.basename(file));
}

async function activeVersion(): Promise<string | null> {
  return (await pool.query<{ active_version: string | null }>('SELECT active_version FROM ouk_meta.active_db')).rows[0]?.active_version ?? null;
}

async function activations(version: string): Promise<number> {
  return Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ouk_meta.activations WHERE version = $1 AND action = 'activate'`, [version])).rows[0]!.n);
}

async function untilActive(version: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(`${version} to become the active DB`, async () => (await activeVersion().catch(() => null)) === version, timeoutMs, 250).catch((e: Error) => {
    throw new Error(`${e.message}\n${logs()}`);
  });
}

/** Waits until the load of `version` is streaming rows into PostgreSQL. */
async function loadRunning(version: string): Promise<void> {
  await waitFor(
    `the load of ${version} to be copying rows`,
    async () => {
      const r = await pool.query<{ state: string | null }>(`SELECT stages -> 'load' ->> 'state' AS state FROM ouk_meta.imports WHERE version = $1`, [version]).catch(() => null);
      return r?.rows[0]?.state === 'running';
    },
    60_000,
    20,
  );
  await sleep(150);
}

before(async () => {
  dir = tmpDir('faults');
  [redis, postgres] = await Promise.all([startPrivateRedis(), startPrivatePostgres()]);
  apiPort = await freePort();
  s3 = await startTestS3('faults', { webhook: { url: `http://127.0.0.1:${apiPort}/hooks/minio`, token: TOKEN, attempts: 3, backoffMs: 100 }, log: () => undefined });
  const kp = await generateKeyPair();
  privateKey = path.join(dir, 'cosign.key');
  fs.writeFileSync(privateKey, kp.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'cosign.pub'), kp.publicKeyPem);
  pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on('error', () => undefined);
  env = childBaseEnv({
    STELLA_AIRGAP: 'true',
    REDIS_URL: redis.url,
    OUK_QUEUE_PREFIX: 'ouk',
    DATABASE_URL: postgres.url,
    S3_ENDPOINT: s3.endpoint,
    OUK_BUCKET: s3.bucket,
    OUK_TRUSTED_KEYS: path.join(dir, 'cosign.pub'),
    OUK_WEBHOOK_TOKEN: TOKEN,
    STELLA_API_PORT: String(apiPort),
    STELLA_STATE_DIR: path.join(dir, 'state'),
    QUOTA_ANON: '100000',
    OUK_RECONCILE_SECONDS: '2',
    OUK_LOCK_MS: '4000',
    OUK_STALLED_MS: '1000',
    OUK_STAGE_ATTEMPTS: '8',
    OUK_STAGE_BACKOFF_MS: '500',
    OUK_VERIFY_ATTEMPTS: '8',
    OUK_VERIFY_BACKOFF_MS: '500',
    LOG_LEVEL: 'info',
  });
  api = startService('api');
  worker = startService('worker');
  await apiUp();
  // the first DB, then scans for the rest of the file
  await drop(await kit('2026-11-01', 1));
  await untilActive('2026-11-01');
  startScans();
});

after(async () => {
  scanning = false;
  await scanLoop;
  await stopService(worker);
  await stopService(api);
  await pool?.end().catch(() => undefined);
  await s3?.close();
  await redis?.close();
  await postgres?.close();
});

describe('faults against real processes', () => {
  test('Redis restarted empty in the middle of a load: the import resumes from PostgreSQL\'s record and completes once', async () => {
    const file = await kit('2026-11-02', 2);
    await drop(file);
    await loadRunning('2026-11-02');
    await redis.restart(500); // every job, lock and scheduler is gone
    await untilActive('2026-11-02');
    assert.equal(await activations('2026-11-02'), 1);
  });

  test('PostgreSQL down for 6 s (immediate shutdown) in the middle of a load: retried, completed once; scans answer 503, never 500', async () => {
    const file = await kit('2026-11-03', 3);
    await drop(file);
    await loadRunning('2026-11-03');
    const from = answers.length;
    await postgres.stop();
    await sleep(6000);
    await postgres.start();
    await untilActive('2026-11-03');
    assert.equal(await activations('2026-11-03'), 1);
    const during = answers.slice(from);
    assert.ok(during.some((a) => a.status === 503 && a.code === 'DATABASE_UNAVAILABLE'), `scans during the outage said 503 DATABASE_UNAVAILABLE: ${JSON.stringify(during.slice(0, 5))}`);
  });

  test('the API down while a kit is dropped (its notification lost): the reconciler imports it', async () => {
    await stopService(api);
    const file = await kit('2026-11-04', 4);
    await drop(file);
    await s3.idle(); // the webhook deliveries failed and were dropped
    api = startService('api');
    await apiUp();
    await untilActive('2026-11-04');
    assert.equal(await activations('2026-11-04'), 1);
  });

  test('a completed load of the active import replayed (the dashboard\'s Retry): nothing changes', async () => {
    const id = (await pool.query<{ active_import: string }>('SELECT active_import FROM ouk_meta.active_db')).rows[0]!.active_import;
    const schema = `ouk_db_${id}`;
    const oid = async () => (await pool.query<{ oid: string }>('SELECT oid::text FROM pg_namespace WHERE nspname = $1', [schema])).rows[0]?.oid;
    const before = await oid();
    const q = new Queue('load', { connection: { url: redis.url }, prefix: 'ouk' });
    try {
      const job = await q.getJob(`${id}-load`);
      assert.ok(job, 'the completed load job is kept');
      const finished = job.finishedOn;
      await job.retry('completed');
      await waitFor('the replay to finish', async () => {
        const j = await q.getJob(`${id}-load`);
        return j && (await j.getState()) === 'completed' && j.finishedOn !== finished;
      });
    } finally {
      await q.close();
    }
    assert.equal(await oid(), before, 'the live schema was not dropped and rebuilt');
    assert.equal(await activations('2026-11-04'), 1);
  });

  test('scans answered throughout, each from one whole DB, versions only forward; gc leaves nothing behind', async () => {
    // a scan from the last DB before the loop stops (the previous test may take less than one scan's round trip)
    await waitFor('a scan answered from 2026-11-04', async () => answers.some((a) => a.version === '2026-11-04'), 30_000, 100);
    scanning = false;
    await scanLoop;
    const ok = answers.filter((a) => a.status === 200);
    assert.ok(ok.length > 20, `scans answered: ${ok.length}`);
    assert.deepEqual(answers.filter((a) => a.status >= 500 && a.status !== 503), [], 'never a 500');
    const outage = new Set(['DATABASE_UNAVAILABLE', 'QUOTA_UNAVAILABLE', 'API_STOPPING']);
    assert.deepEqual([...new Set(answers.filter((a) => a.status !== 200 && a.status !== 0 && !outage.has(a.code ?? '')).map((a) => `${a.status} ${a.code}`))], [], 'only outage codes');
    const versions = ok.map((a) => a.version!);
    assert.deepEqual(versions, [...versions].sort(), 'the DB a scan sees only moves forward');
    assert.ok(versions.includes('2026-11-01') && versions.at(-1) === '2026-11-04');

    const gc = await runStella(['ouk', 'gc', '--grace-hours', '0', '--json'], { cwd: dir, env });
    assert.equal(gc.code, 0, gc.stderr);
    const staged: string[] = [];
    for await (const o of s3.store.listObjectsV2(s3.bucket, 'staged/', true)) staged.push((o as { name: string }).name);
    assert.deepEqual(staged, [], 'no staged member is left');
    const schemas = (await pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname ~ '^ouk_(db|delta|undo)_' ORDER BY 1`)).rows.map((r) => r.nspname);
    const kept = (await pool.query<{ id: string }>(`SELECT id FROM ouk_meta.imports WHERE version IN ('2026-11-03', '2026-11-04')`)).rows.map((r) => `ouk_db_${r.id}`).sort();
    assert.deepEqual(schemas, kept, 'only the active and the previous DB are left');
  });
});
