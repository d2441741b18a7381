/**
 * More than one machine, for real on loopback: a Redis primary and a replica
 * watched by three sentinels (Debian's redis-sentinel), two API processes and
 * two workers configured with REDIS_SENTINELS, air-gapped as compose runs
 * them, against one PostgreSQL database and one s3rver.
 *
 *   - scans spread over both APIs count exactly: the quota is one counter per
 *     client in Redis, whichever API answers;
 *   - the Redis primary is killed (SIGKILL) while a kit is loading: the
 *     sentinels elect the replica, every process follows it, the import
 *     completes and is activated exactly once;
 *   - scans during the failover answer 200 or 503 with a code, never a 500;
 *   - the quota keeps counting through it, and the failover's cost is what
 *     docs/scale.md says: every scan answered 200 is in the counter (its
 *     increment reached the replica before the answer), and a scan answered
 *     503 may or may not be.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { generateKeyPair } from '../signing/index.ts';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { startService, type ServiceProcess } from './helpers/processes.ts';
import { startSentinelRedis, SENTINEL_NAME, type SentinelRedis } from './helpers/redis-sentinel.ts';
import { childBaseEnv, createTestDatabase, freePort, startTestS3, tmpDir, type TestDatabase, type TestS3 } from './helpers/services.ts';
import { putFile, TEST_BUNDLE_EXPIRES, waitFor } from './pipeline-fixtures.ts';

const TOKEN = 'scale-out-webhook-token';
const QUOTA_PREFIX = 'scaleq';

let rs: SentinelRedis;
let db: TestDatabase;
let s3: TestS3;
let dir: string;
let privateKey: string;
let secondKit: Promise<string>;
let pool: pg.Pool;
const apiPorts: number[] = [];
const services: ServiceProcess[] = [];

interface ScanAnswer {
  /** the API that answered */
  port: number;
  status: number;
  version: string | null;
  code: string | null;
}

const SBOM = JSON.stringify({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  components: Array.from({ length: 10 }, (_, i) => ({ type: 'library', name: `p${i}`, purl: `pkg:npm/p${i}@1.${i}.0` })),
});

async function scan(port: number): Promise<ScanAnswer> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/scan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: SBOM, signal: AbortSignal.timeout(20_000) });
    const body = (await r.json().catch(() => ({}))) as { dbVersion?: string; error?: { code?: string } };
    return { port, status: r.status, version: body.dbVersion ?? null, code: body.error?.code ?? null };
  } catch {
    return { port, status: 0, version: null, code: 'NO_ANSWER' };
  }
}

function logs(): string {
  return services.map((s) => s.log(3000)).join('\n');
}

async function kit(version: string, seed: number, advisories: number): Promise<string> {
  const file = path.join(dir, `stella-ouk-${version}.tar.gz`);
  await writeSyntheticBundle(file, { version, advisories, seed, expires: TEST_BUNDLE_EXPIRES }, privateKey);
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

async function untilActive(version: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${version} to become the active DB`, async () => (await activeVersion().catch(() => null)) === version, timeoutMs, 100).catch((e: Error) => {
    throw new Error(`${e.message}\n${logs()}`);
  });
}

/** The scans counted today (and yesterday, should the test straddle midnight), read from one node. */
async function counted(node: Redis): Promise<number> {
  const keys = await node.keys(`${QUOTA_PREFIX}:*`);
  let n = 0;
  for (const k of keys) n += Number(await node.get(k));
  return n;
}

before(async () => {
  dir = tmpDir('scale-out');
  const kp = await generateKeyPair();
  privateKey = path.join(dir, 'cosign.key');
  fs.writeFileSync(privateKey, kp.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'cosign.pub'), kp.publicKeyPem);
  apiPorts.push(await freePort(), await freePort());
  [rs, db, s3] = await Promise.all([
    startSentinelRedis(),
    createTestDatabase('scale-out'),
    startTestS3('scale-out', { webhook: { url: `http://127.0.0.1:${apiPorts[0]}/hooks/minio`, token: TOKEN, attempts: 3, backoffMs: 100 }, log: () => undefined }),
  ]);
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => undefined);
  const env = (port: number): NodeJS.ProcessEnv =>
    childBaseEnv({
      STELLA_AIRGAP: 'true',
      // the nodes are named for air-gap mode; where the primary is comes from the sentinels
      STELLA_AIRGAP_ALLOW: `127.0.0.1:${rs.primaryPort},127.0.0.1:${rs.replicaPort}`,
      REDIS_SENTINELS: rs.sentinels,
      REDIS_SENTINEL_NAME: SENTINEL_NAME,
      OUK_QUEUE_PREFIX: 'ouk',
      STELLA_QUOTA_PREFIX: QUOTA_PREFIX,
      DATABASE_URL: db.url,
      S3_ENDPOINT: s3.endpoint,
      OUK_BUCKET: s3.bucket,
      OUK_TRUSTED_KEYS: path.join(dir, 'cosign.pub'),
      OUK_WEBHOOK_TOKEN: TOKEN,
      STELLA_API_PORT: String(port),
      STELLA_STATE_DIR: path.join(dir, `state-${port}`),
      QUOTA_ANON: '100000',
      STELLA_SCAN_PER_CLIENT: '16',
      STELLA_SCAN_CONCURRENCY: '16',
      OUK_RECONCILE_SECONDS: '2',
      OUK_LOCK_MS: '4000',
      OUK_STALLED_MS: '1000',
      OUK_STAGE_ATTEMPTS: '8',
      OUK_STAGE_BACKOFF_MS: '300',
      OUK_VERIFY_ATTEMPTS: '8',
      OUK_VERIFY_BACKOFF_MS: '300',
      LOG_LEVEL: 'info',
    });
  secondKit = kit('2026-11-02', 2, 10_000); // written while the services start
  for (const [i, port] of apiPorts.entries()) {
    for (const d of [`api-${i}`, `worker-${i}`]) fs.mkdirSync(path.join(dir, d));
    services.push(startService('api', env(port), path.join(dir, `api-${i}`)), startService('worker', env(port), path.join(dir, `worker-${i}`)));
  }
  for (const port of apiPorts) {
    await waitFor(`the API on ${port} to answer`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 60_000, 100).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
  }
  await drop(await kit('2026-11-01', 1, 500));
  await untilActive('2026-11-01');
  // ready: Redis (through the sentinels), PostgreSQL, the store and an active DB, on both
  for (const port of apiPorts) assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
});

after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await pool?.end().catch(() => undefined);
  await s3?.close();
  await rs?.close();
  await db?.drop().catch(() => undefined);
});

describe('scale-out: two APIs, two workers, Redis under Sentinel', () => {
  test('scans spread over both APIs count exactly in one counter', async () => {
    const node = rs.node(rs.primaryPort);
    try {
      const before = await counted(node);
      // eight at a time, four on each API (within STELLA_SCAN_PER_CLIENT)
      const answers: ScanAnswer[] = [];
      for (let round = 0; round < 5; round++) answers.push(...(await Promise.all(Array.from({ length: 8 }, (_, i) => scan(apiPorts[i % 2]!)))));
      assert.deepEqual(answers.filter((a) => a.status !== 200), [], 'every scan was answered');
      assert.ok(answers.every((a) => a.version === '2026-11-01'));
      assert.equal((await counted(node)) - before, 40, 'forty scans on two APIs, forty counted');
    } finally {
      node.disconnect();
    }
  });

  test('the Redis primary killed during a load: the replica is elected, the import completes once, scans answer 200 or 503 with a code, every 200 is counted', async () => {
    const before = await (async () => {
      const node = rs.node(rs.primaryPort);
      try {
        return await counted(node);
      } finally {
        node.disconnect();
      }
    })();
    await rs.ready(); // the sentinels know the replica and each other
    const answers: ScanAnswer[] = [];
    let scanning = true;
    // one loop per API: scans go on through the failover
    const loops = apiPorts.map(async (port) => {
      while (scanning) {
        answers.push(await scan(port));
        await sleep(20);
      }
    });
    try {
      await drop(await secondKit);
      await waitFor(
        'the load of 2026-11-02 to be copying rows',
        async () => (await pool.query<{ state: string | null }>(`SELECT stages -> 'load' ->> 'state' AS state FROM ouk_meta.imports WHERE version = $1`, ['2026-11-02'])).rows[0]?.state === 'running',
        60_000,
        20,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${logs()}`);
      });
      await rs.killPrimary();
      await rs.waitForPrimary(rs.replicaPort);
      await untilActive('2026-11-02');
      // scans after the switch, on both APIs, so each shows it follows the new primary
      const from = answers.length;
      await waitFor('both APIs to count on the new primary', async () => apiPorts.every((p) => answers.slice(from).some((a) => a.port === p && a.status === 200 && a.version === '2026-11-02')), 30_000, 100).catch((e: Error) => {
        const seen = answers.slice(from).map((a) => `${a.port}:${a.status}:${a.code ?? a.version}`);
        throw new Error(`${e.message}; answers since: ${seen.slice(-20).join(' ')}\n${logs()}`);
      });
    } finally {
      scanning = false;
      await Promise.all(loops);
    }

    assert.equal(await activations('2026-11-02'), 1, 'activated exactly once');
    const bad = answers.filter((a) => !(a.status === 200 || (a.status === 503 && a.code)));
    assert.deepEqual(bad, [], 'every scan answered 200, or 503 with a code: never a 500, never silence');
    const ok = answers.filter((a) => a.status === 200).length;
    const unavailable = answers.filter((a) => a.status === 503).length;
    assert.ok(answers.some((a) => a.status === 503 && a.code === 'QUOTA_UNAVAILABLE'), `scans while no primary was elected said 503 QUOTA_UNAVAILABLE (${unavailable} of ${answers.length})`);
    const node = rs.node(rs.replicaPort);
    try {
      const after = (await counted(node)) - before;
      // the failover's cost: nothing answered 200 is lost; a 503's increment may or may not have landed
      assert.ok(after >= ok, `every scan answered 200 is counted on the new primary: ${after} counted, ${ok} answered 200`);
      assert.ok(after <= ok + unavailable, `nothing is counted twice: ${after} counted, ${ok} answered 200, ${unavailable} answered 503`);
    } finally {
      node.disconnect();
    }
  });
});
