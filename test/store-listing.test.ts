/**
 * Listing the bucket past its first page. s3rver (the local
 * store) answers its v2 listing with 500 once a prefix holds more than 1,000
 * objects (its continuation tokens are DES, which OpenSSL 3 refuses), so gc
 * and `removeObjectsUnder` — then on `listObjectsV2` — failed there with
 * STORE_UNAVAILABLE and removed nothing. Both now list with `listAllObjects`
 * (the v1 listing, each page after the previous page's last key), which
 * s3rver, MinIO and S3 all page alike.
 *
 *   - `stella ouk gc --grace-hours 0` (the real CLI) with 1,100 staged
 *     members of an import on no record: reported whole and removed, none left;
 *   - `removeObjectsUnder` of 1,050 objects: all removed, the objects beside
 *     the prefix kept;
 *   - no code outside test/ lists with `listObjectsV2`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listAllObjects, removeObjectsUnder } from '../infra/store.ts';
import { repoRoot, runStella, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fixtureEnv, pipelineFixture, type PipelineFixture } from './pipeline-fixtures.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;

before(async () => {
  fx = await pipelineFixture('store-listing');
  redis = testRedisPrefix('store-listing');
});

after(async () => {
  await redis?.cleanup();
  await fx?.close();
});

/** `n` one-byte objects `prefix` + m-NNNNN, 50 PUTs at a time. */
async function putMany(prefix: string, n: number): Promise<void> {
  const keys = Array.from({ length: n }, (_, i) => `${prefix}m-${String(i).padStart(5, '0')}`);
  for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => fx.s3.store.putObject(fx.s3.bucket, k, Buffer.from('x'), 1)));
}

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of listAllObjects(fx.s3.store, fx.s3.bucket, prefix)) if (o.name) keys.push(o.name);
  return keys;
}

describe('listing past 1,000 objects', () => {
  test('stella ouk gc removes 1,100 staged members of one import, not only the first page', async () => {
    const prefix = `staged/${'ab'.repeat(32)}/${'0c'.repeat(12)}/`;
    await putMany(prefix, 1_100);
    await putMany('staged/kept-', 3); // not a staged prefix gc owns: never touched
    assert.equal((await keysUnder(prefix)).length, 1_100);
    const env = fixtureEnv(fx, redis, { LOG_LEVEL: 'warn' });

    const dry = await runStella(['ouk', 'gc', '--dry-run', '--grace-hours', '0', '--json'], { cwd: fx.dir, env });
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { staged: Array<{ name: string; bytes: number }> };
    assert.deepEqual(plan.staged.map((s) => [s.name, s.bytes]), [[prefix, 1_100]], 'every page of the listing counted');

    const r = await runStella(['ouk', 'gc', '--grace-hours', '0'], { cwd: fx.dir, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`removed staged ${prefix} \\(0\\.0 MiB\\): no import record`));
    assert.deepEqual(await keysUnder(prefix), []);
    assert.equal((await keysUnder('staged/kept-')).length, 3);
  });

  test('removeObjectsUnder removes 1,050 objects under a prefix and nothing beside it', async () => {
    await putMany('many/a/', 1_050);
    await putMany('many/b/', 2);
    assert.equal(await removeObjectsUnder(fx.s3.store, fx.s3.bucket, 'many/a/'), 1_050);
    assert.deepEqual(await keysUnder('many/a/'), []);
    assert.equal((await keysUnder('many/b/')).length, 2);
  });

  test('no code outside test/ lists the store with listObjectsV2', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (['node_modules', '.git', 'test', 'dist'].includes(e.name) || e.name.startsWith('.')) continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|js|mjs)$/.test(e.name) && /listObjectsV2\s*\(/.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(repoRoot, p));
      }
    };
    walk(repoRoot);
    assert.deepEqual(offenders, [], 'list with listAllObjects (infra/store.ts): s3rver answers 500 to a v2 listing past 1,000 objects');
  });
});
