/**
 * PostgreSQL out of space behind an API request. The API
 * runs as a process on a PostgreSQL of the test's own whose stored-SBOM table
 * (`ouk_meta.sboms`) lives in a tablespace on a 1 MiB tmpfs that a filler
 * table has filled (the db-full test's trick, smaller). Storing an SBOM then
 * fails in PostgreSQL with disk_full (SQLSTATE 53100, "could not extend file
 * … No space left on device"):
 *
 *  - the answer is 507 INSUFFICIENT_SPACE in the API's envelope, a fixed
 *    message naming no server path, not 500 INTERNAL; the API log carries
 *    PostgreSQL's text and the operator's fix; nothing is stored;
 *  - with the space freed, the same request is 201.
 *
 * Mounting needs root (these machines run the suite as root). Without it the
 * case is skipped, saying why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { migrate } from '../infra/db.ts';
import { issueToken } from '../lib/tokens.ts';
import { startPrivatePostgres, type PrivatePostgres } from './helpers/private-services.ts';
import { startService, type ServiceProcess } from './helpers/processes.ts';
import { childBaseEnv, freePort, startTestS3, testRedisPrefix, tmpDir, type TestRedisPrefix, type TestS3 } from './helpers/services.ts';
import { waitFor } from './pipeline-fixtures.ts';

/** Why this file cannot run here, or null: it mounts a tmpfs. */
function cannotMount(): string | null {
  if (process.getuid?.() !== 0) return 'mounting a small tmpfs for the tablespace needs root';
  const probe = tmpDir('tmpfs-probe');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `mount -t tmpfs is not permitted here: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('umount', [probe]);
  return null;
}
const skip = cannotMount();

let postgres: PrivatePostgres;
let pool: pg.Pool;
let s3: TestS3;
let redis: TestRedisPrefix;
let api: ServiceProcess;
let dir: string;
let space = '';
let apiPort = 0;
let operator = '';

const SBOM = { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'library', name: 'lodash', version: '4.17.15', purl: 'pkg:npm/lodash@4.17.15' }] };

before(async () => {
  if (skip) return;
  dir = tmpDir('api-db-full');
  postgres = await startPrivatePostgres();
  pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on('error', () => undefined);
  await migrate(pool);
  space = path.join(dir, 'tablespace');
  fs.chmodSync(dir, 0o755); // the postgres user reaches the tablespace through it
  fs.mkdirSync(space);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', space], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  spawnSync('chown', ['postgres:postgres', space]);
  await pool.query(`CREATE TABLESPACE ouk_tiny LOCATION '${space}'`);
  await pool.query('ALTER TABLE ouk_meta.sboms SET TABLESPACE ouk_tiny'); // empty: no page to move
  await pool.query('CREATE TABLE public.filler (x text) TABLESPACE ouk_tiny');
  // Fill the tablespace: rows of 1,280 incompressible bytes until PostgreSQL says the disk is full.
  let full = '';
  for (let i = 0; i < 50 && !full; i++) {
    await pool.query(`INSERT INTO public.filler SELECT (SELECT string_agg(md5(random()::text || o.n || i.n), '') FROM generate_series(1, 40) AS i(n)) FROM generate_series(1, 100) AS o(n)`).catch((e: { code?: string; message?: string }) => {
      assert.equal(e.code, '53100', e.message);
      full = e.message ?? '';
    });
  }
  assert.match(full, /No space left on device/, 'the tablespace is full');

  s3 = await startTestS3('api-db-full');
  redis = testRedisPrefix('api-db-full');
  apiPort = await freePort();
  const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwtPriv = path.join(dir, 'jwt.key');
  const jwtPub = path.join(dir, 'jwt.pub');
  fs.writeFileSync(jwtPriv, jwt.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(jwtPub, jwt.publicKey.export({ type: 'spki', format: 'pem' }));
  operator = (await issueToken({ privateKey: jwtPriv, sub: 'inventory-bot', role: 'operator', ttl: '1h' })).token;
  const env = childBaseEnv({
    REDIS_URL: redis.redisUrl,
    OUK_QUEUE_PREFIX: redis.prefix,
    DATABASE_URL: postgres.url,
    S3_ENDPOINT: s3.endpoint,
    OUK_BUCKET: s3.bucket,
    STELLA_STATE_DIR: path.join(dir, 'state'),
    STELLA_AIRGAP: 'true',
    OUK_TRUSTED_KEYS: jwtPub,
    OUK_WEBHOOK_TOKEN: 'api-db-full-webhook-token',
    STELLA_API_PORT: String(apiPort),
    STELLA_API_HOST: '127.0.0.1',
    STELLA_JWT_PUBLIC_KEY: jwtPub,
    STELLA_QUOTA_PREFIX: `${redis.prefix}-quota`,
    OUK_RECONCILE_SECONDS: '3600',
    LOG_LEVEL: 'info',
  });
  api = startService('api', env, dir);
  await waitFor('the API to answer', () => fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false), 90_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}\n${api.log()}`);
  });
});

after(async () => {
  await api?.stop();
  await pool?.end().catch(() => undefined);
  await postgres?.close();
  await redis?.cleanup();
  await s3?.close();
  if (space) spawnSync('umount', ['-l', space]);
});

function addSbom(name: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${apiPort}/api/v1/sboms?name=${name}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
    body: JSON.stringify(SBOM),
  });
}

describe('the API with PostgreSQL out of space', { skip: skip ?? false }, () => {
  test('storing an SBOM is 507 INSUFFICIENT_SPACE, not 500; with space freed it is stored', async () => {
    const r = await addSbom('app');
    const body = (await r.json()) as { error?: { code: string; message: string } };
    assert.equal(r.status, 507, `${JSON.stringify(body)}\n${api.log()}`);
    assert.equal(body.error?.code, 'INSUFFICIENT_SPACE');
    assert.match(body.error!.message, /^the server is out of disk space \(its database could not grow\), so the request did not complete: the operator must free space/);
    assert.doesNotMatch(body.error!.message, /pg_tblspc|No space left/, 'no server path in the client\'s answer');
    // The log has PostgreSQL's own text and the operator's fix (written a moment after the answer).
    const line = await waitFor('the API to log the full disk', async () => api.log().split('\n').find((l) => l.includes('out of disk space') && l.includes('No space left on device')), 10_000, 100);
    assert.match(line, /stella ouk gc/);
    assert.equal((await pool.query('SELECT 1 FROM ouk_meta.sboms')).rowCount, 0, 'nothing stored');

    await pool.query('DROP TABLE public.filler');
    const again = await addSbom('app');
    assert.equal(again.status, 201, `${await again.text()}\n${api.log()}`);
    assert.equal((await pool.query('SELECT 1 FROM ouk_meta.sboms')).rowCount, 1);
  });
});
