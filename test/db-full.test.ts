/**
 * PostgreSQL out of space, for real: a PostgreSQL of
 * the test's own whose default tablespace lives on an 8 MiB tmpfs, a worker
 * process, and `stella ouk import` / `retry` / `gc` as an operator runs them.
 * A kit whose DB needs about 12 MiB fills the tablespace during its load:
 *
 *  - the import fails INSUFFICIENT_SPACE (exit 53), on the record and from
 *    `stella ouk retry` — not INTERNAL;
 *  - the failed load leaves nothing: its schema is gone at once (the
 *    tablespace is empty again, `gc --dry-run` finds nothing), and the worker
 *    holds no connection to the object store (each COPY's GET stream closed);
 *  - with space freed (the tmpfs grown), `stella ouk retry` activates it.
 *
 * And an object-store error that embeds a multi-line XML body (s3rver's
 * NoSuchBucket) prints as one line.
 *
 * Mounting needs root (these machines run the suite as root). Without it the
 * space cases are skipped, saying why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { migrate } from '../infra/db.ts';
import { describeError, EXIT_CODES } from '../lib/errors.ts';
import { uploadStream } from '../infra/store.ts';
import { Readable } from 'node:stream';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { startPrivatePostgres, type PrivatePostgres } from './helpers/private-services.ts';
import { startService, type ServiceProcess } from './helpers/processes.ts';
import { childBaseEnv, runStella, startTestS3, testRedisPrefix, tmpDir, type TestRedisPrefix, type TestS3 } from './helpers/services.ts';
import { FAST_RETRIES, TEST_BUNDLE_CREATED, TEST_BUNDLE_EXPIRES } from './pipeline-fixtures.ts';
import { generateKeyPair } from '../signing/index.ts';

const VERSION = '2026-11-20';
const KIT = `stella-ouk-${VERSION}.tar.gz`;

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
let s3: TestS3;
let redis: TestRedisPrefix;
let worker: ServiceProcess;
let pool: pg.Pool;
let dir: string;
let space: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = tmpDir('db-full');
  postgres = await startPrivatePostgres();
  pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on('error', () => undefined);
  await migrate(pool); // ouk_meta in the default tablespace, on the big disk
  if (!skip) {
    space = path.join(dir, 'tablespace');
    fs.chmodSync(dir, 0o755); // the postgres user reaches the tablespace through it
    fs.mkdirSync(space);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', space], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    spawnSync('chown', ['postgres:postgres', space]);
    await pool.query(`CREATE TABLESPACE ouk_small LOCATION '${space}'`);
    // Every DB the pipeline loads goes there (before the worker opens its first connection).
    await pool.query('ALTER DATABASE postgres SET default_tablespace = ouk_small');
  }
  s3 = await startTestS3('db-full');
  redis = testRedisPrefix('db-full');
  const kp = await generateKeyPair();
  fs.writeFileSync(path.join(dir, 'cosign.key'), kp.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'cosign.pub'), kp.publicKeyPem);
  await writeSyntheticBundle(path.join(dir, KIT), { version: VERSION, advisories: 5000, created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES }, path.join(dir, 'cosign.key'));
  env = childBaseEnv({
    ...FAST_RETRIES,
    REDIS_URL: redis.redisUrl,
    OUK_QUEUE_PREFIX: redis.prefix,
    DATABASE_URL: postgres.url,
    S3_ENDPOINT: s3.endpoint,
    OUK_BUCKET: s3.bucket,
    OUK_TRUSTED_KEYS: path.join(dir, 'cosign.pub'),
    STELLA_STATE_DIR: path.join(dir, 'state'),
    STELLA_AIRGAP: 'true',
    // No maintenance pass touches the store while the test counts the worker's connections to it.
    OUK_RECONCILE_SECONDS: '3600',
    LOG_LEVEL: 'info',
  });
  worker = startService('worker', env, dir);
});

after(async () => {
  await worker?.stop();
  await pool?.end().catch(() => undefined);
  await postgres?.close();
  await redis?.cleanup();
  await s3?.close();
  if (space) spawnSync('umount', ['-l', space]);
});

/** The worker's TCP connections to the store (any state but TIME-WAIT, which holds no socket). */
function storeConnections(pid: number, port: number): string[] {
  const r = spawnSync('ss', ['-tanpH'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(`pid=${pid},`) && new RegExp(`\\s127\\.0\\.0\\.1:${port}\\s`).test(l));
}

const stella = (args: string[], extra: NodeJS.ProcessEnv = {}) => runStella(args, { cwd: dir, env: { ...env, ...extra } });

describe('PostgreSQL out of space during a load', { skip: skip ?? false }, () => {
  let importId: string;

  test('the import fails INSUFFICIENT_SPACE (53) and leaves nothing: no schema, an empty tablespace, no store connection', async () => {
    const r = await stella(['ouk', 'import', KIT, '--timeout', '180']);
    assert.equal(r.code, EXIT_CODES.INSUFFICIENT_SPACE, `${r.stderr}\n${worker.log()}`);
    const line = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(line, /^error\[INSUFFICIENT_SPACE\]: load failed for import ([0-9a-f]{24}) \(stella-ouk-2026-11-20\.tar\.gz\): PostgreSQL is out of disk space \((?:.*No space left on device|could not extend file .*)\): free space on its data directory or tablespace/);
    importId = /import ([0-9a-f]{24})/.exec(line)![1]!;

    const rec = (await pool.query<{ state: string; error_code: string; stages: { load: { state: string; code: string; attempts: number } } }>('SELECT state, error_code, stages FROM ouk_meta.imports WHERE id = $1', [importId])).rows[0]!;
    assert.equal(rec.state, 'failed');
    assert.equal(rec.error_code, 'INSUFFICIENT_SPACE');
    assert.deepEqual([rec.stages.load.state, rec.stages.load.code, rec.stages.load.attempts], ['failed', 'INSUFFICIENT_SPACE', 1], 'not retried: the space does not come back by itself');

    const schemas = (await pool.query(`SELECT 1 FROM pg_namespace WHERE nspname ~ '^ouk_(db|delta)_'`)).rowCount;
    assert.equal(schemas, 0, 'the failed load dropped its schema at once');
    const used = Number((await pool.query<{ n: string }>(`SELECT pg_tablespace_size('ouk_small') AS n`)).rows[0]!.n);
    assert.ok(used < 1024 * 1024, `the tablespace is empty again (${used} bytes used)`);
    const gc = await stella(['ouk', 'gc', '--dry-run', '--json']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual((JSON.parse(gc.stdout) as { schemas: unknown[] }).schemas, [], 'nothing left for gc');

    // Every GET the failed COPYs read from is closed: nothing holds a connection with unread data.
    // (Idle keep-alive connections close when the store's keep-alive timeout, 5 s, ends them.)
    const pid = worker.child.pid!;
    let open: string[] = [];
    for (let i = 0; i < 60; i++) {
      open = storeConnections(pid, s3.port);
      if (!open.length) break;
      await sleep(250);
    }
    assert.deepEqual(open, [], 'the worker holds no connection to the object store');
  });

  test('`stella ouk retry` says INSUFFICIENT_SPACE (53) while it is full; with space freed, it activates the kit', async () => {
    const again = await stella(['ouk', 'retry', importId, '--timeout', '180']);
    assert.equal(again.code, EXIT_CODES.INSUFFICIENT_SPACE, again.stderr);
    assert.match(again.stderr.trimEnd().split('\n').at(-1)!, /^error\[INSUFFICIENT_SPACE\]: load failed/);
    assert.doesNotMatch(again.stderr, /error\[INTERNAL\]/);

    const grown = spawnSync('mount', ['-o', 'remount,size=64m', space], { encoding: 'utf8' });
    assert.equal(grown.status, 0, grown.stderr);
    const ok = await stella(['ouk', 'retry', importId, '--timeout', '180']);
    assert.equal(ok.code, 0, `${ok.stderr}\n${worker.log()}`);
    assert.equal(ok.stdout, `activated ${VERSION}\n`);
  });
});

describe('an object-store error with a multi-line XML body', () => {
  test('prints as one line: the S3 code and message, not the XML', async () => {
    // s3rver answers a PUT into a bucket it does not have with XML over two lines, as MinIO answers a full drive.
    const e = await uploadStream(s3.store, 'no-such-bucket', KIT, Readable.from([Buffer.from('kit')]), 3).then(() => null, (x: unknown) => x);
    assert.ok(e, 'the PUT failed');
    assert.match(String((e as Error).cause), /<\?xml[^\n]*\n<Error>/, 'the body the store sent is multi-line XML');
    const line = describeError(e);
    assert.equal(line, 'error[STORE_UNAVAILABLE]: the object store is unreachable (PUT no-such-bucket/stella-ouk-2026-11-20.tar.gz answered HTTP 404: NoSuchBucket: The specified bucket does not exist): check S3_ENDPOINT and that MinIO (or the local s3rver) is running');
  });
});
