/**
 * The operator's side: `stella ouk import FILE|URL`, `status`, `retry`,
 * `rollback`, run as real CLI processes against real Redis, PostgreSQL and
 * s3rver, with workers running (no bucket notifications: the CLI ingests
 * itself). Exit codes are the error codes of docs/exit-codes.md.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { EXIT_CODES, isOukError } from '../lib/errors.ts';
import { checkSpace, spaceNeeded } from '../cli/import/preflight.ts';
import { pipelineSettings } from '../lib/config.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { expiredTimes, makeBundle, pipelineFixture, type PipelineFixture, fixtureConfig, fixtureEnv, FAST_RETRIES } from './pipeline-fixtures.ts';
import { runStella, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let workers: RunningWorkers;

before(async () => {
  fx = await pipelineFixture('pipeline-cli');
  redis = testRedisPrefix('pipeline-cli');
  const config = fixtureConfig(fx, redis);
  workers = startWorkers(config, { pool: fx.pool, store: fx.s3.store, settings: pipelineSettings({ OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000' }), logger: fx.logger });
});

after(async () => {
  await workers?.close();
  await redis?.cleanup();
  await fx?.close();
});

function stella(...args: string[]): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn' }) });
}

describe('stella ouk import / status / retry / rollback', () => {
  let firstId = '';

  test('import FILE uploads the bundle and its signature files and ends with `activated <version>`', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-20.tar.gz', { version: '2026-11-20', advisories: 120 });
    const r = await stella('ouk', 'import', b.path);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'activated 2026-11-20\n');
    assert.match(r.stderr, /uploaded stella-ouk-2026-11-20\.tar\.gz\.sig\n[\s\S]*uploaded stella-ouk-2026-11-20\.tar\.gz\.sigstore\.json\n[\s\S]*uploaded stella-ouk-2026-11-20\.tar\.gz \(/, 'signature files first');
    for (const s of ['verify', 'unpack', 'load', 'activate']) assert.match(r.stderr, new RegExp(`${s}: done`));
    const objects: string[] = [];
    for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, '', true)) objects.push((o as { name: string }).name);
    assert.deepEqual(objects.sort(), ['stella-ouk-2026-11-20.tar.gz', 'stella-ouk-2026-11-20.tar.gz.sig', 'stella-ouk-2026-11-20.tar.gz.sigs.json', 'stella-ouk-2026-11-20.tar.gz.sigstore.json']);
  });

  test('status --json shows the active DB, its counts and the import with its stages', async () => {
    const r = await stella('ouk', 'status', '--json');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      active: { version: string; activatedAt: string; counts: Record<string, number> };
      imports: Array<{ id: string; version: string; state: string; stages: Record<string, { state: string }> }>;
    };
    assert.equal(s.active.version, '2026-11-20');
    assert.ok(!Number.isNaN(Date.parse(s.active.activatedAt)));
    assert.equal(s.active.counts.advisories, 120);
    assert.equal(s.imports[0].state, 'active');
    assert.equal(s.imports[0].stages.load.state, 'done');
    firstId = s.imports[0].id;
    const human = await stella('ouk', 'status');
    assert.match(human.stdout, /Active DB\s+2026-11-20 \(full\), activated .*old/);
    assert.match(human.stdout, new RegExp(firstId));
  });

  test('a tampered bundle fails at verify with its own exit code; the DB stays', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-21.tar.gz', { version: '2026-11-21', advisories: 10 });
    const buf = fs.readFileSync(b.path);
    buf[300] ^= 0x40;
    fs.writeFileSync(b.path, buf);
    const r = await stella('ouk', 'import', b.path);
    assert.equal(r.code, EXIT_CODES.SIGNATURE_MISMATCH, r.stderr);
    assert.match(r.stderr, /error\[SIGNATURE_MISMATCH\]: verify failed for import [0-9a-f]{24}/);
    const s = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as { active: { version: string } };
    assert.equal(s.active.version, '2026-11-20');
  });

  test('an older bundle is refused, and imported with --allow-downgrade', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-01.tar.gz', { version: '2026-11-01', advisories: 15 });
    const r = await stella('ouk', 'import', b.path);
    assert.equal(r.code, EXIT_CODES.DOWNGRADE_REFUSED, r.stderr);
    assert.match(r.stderr, /--allow-downgrade/);
    const again = await stella('ouk', 'import', b.path, '--allow-downgrade', '--reason', 'test: back to the older kit');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'activated 2026-11-01\n');
  });

  test('rollback re-activates the previous DB; a second rollback has nothing to go back to', async () => {
    const r = await stella('ouk', 'rollback');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'rolled back to 2026-11-20 (was 2026-11-01)\n');
    const r2 = await stella('ouk', 'rollback');
    assert.equal(r2.code, EXIT_CODES.NO_PREVIOUS_DB, r2.stderr);
  });

  test('a missing .sig is refused at once; importing again once it is there resumes; `retry` of a healthy import says so', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-22.tar.gz', { version: '2026-11-22', advisories: 20 });
    const sig = fs.readFileSync(`${b.path}.sig`);
    fs.rmSync(`${b.path}.sig`);
    const r = await stella('ouk', 'import', b.path);
    assert.equal(r.code, EXIT_CODES.SIGNATURE_MISSING, r.stderr);
    assert.match(r.stderr, /no stella-ouk-2026-11-22\.tar\.gz\.sig beside the tarball/);
    assert.match(r.stderr, /error\[SIGNATURE_MISSING\]: verify failed .*resumes by itself once it arrives/);
    fs.writeFileSync(`${b.path}.sig`, sig);
    const again = await stella('ouk', 'import', b.path);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /failed before \(SIGNATURE_MISSING\); retrying/);
    assert.equal(again.stdout, 'activated 2026-11-22\n');
    const nothing = await stella('ouk', 'retry', firstId.slice(0, 10));
    assert.equal(nothing.code, EXIT_CODES.NOTHING_TO_RETRY, nothing.stderr);
    const unknown = await stella('ouk', 'retry', 'ffffffffffff');
    assert.equal(unknown.code, EXIT_CODES.IMPORT_NOT_FOUND, unknown.stderr);
  });

  test('import URL streams from an HTTP mirror, with or without Content-Length', async () => {
    const b = await makeBundle(fx, 'mirror-src.tar.gz', { version: '2026-11-23', advisories: 25 });
    const c = await makeBundle(fx, 'mirror-src2.tar.gz', { version: '2026-11-24', advisories: 26 });
    const files: Record<string, string> = {
      '/kits/stella-ouk-2026-11-23.tar.gz': b.path,
      '/kits/stella-ouk-2026-11-23.tar.gz.sig': `${b.path}.sig`,
      '/chunked/stella-ouk-2026-11-24.tar.gz': c.path,
      '/chunked/stella-ouk-2026-11-24.tar.gz.sig': `${c.path}.sig`,
    };
    const server = http.createServer((req, res) => {
      const file = files[req.url ?? ''];
      if (!file) {
        res.writeHead(404).end();
        return;
      }
      const chunked = req.url!.startsWith('/chunked/');
      res.writeHead(200, chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(fs.statSync(file).size) });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await stella('ouk', 'import', `http://127.0.0.1:${port}/kits/stella-ouk-2026-11-23.tar.gz`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'activated 2026-11-23\n');
      const r2 = await stella('ouk', 'import', `http://127.0.0.1:${port}/chunked/stella-ouk-2026-11-24.tar.gz`, '--json');
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal((JSON.parse(r2.stdout) as { version: string }).version, '2026-11-24');
      const missing = await stella('ouk', 'import', `http://127.0.0.1:${port}/kits/nope.tar.gz`);
      assert.equal(missing.code, EXIT_CODES.INPUT_NOT_FOUND, missing.stderr);
    } finally {
      server.close();
    }
  });

  test('a delta: refused while expired, imported with --force; rollback re-activates the DB before it; status shows the history', async () => {
    const before = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as { active: { version: string; counts: Record<string, number> } };
    assert.equal(before.active.version, '2026-11-24'); // the 26-advisory kit of the previous test
    const times = expiredTimes();
    const d = await makeBundle(fx, 'stella-ouk-2026-11-25.tar.gz', {
      version: '2026-11-25',
      advisories: 0,
      seed: 4,
      ...times,
      delta: { base: { version: '2026-11-24', advisories: 26, seed: 1 }, changed: [1, 2], added: 3, removed: [5] },
    });
    const refused = await stella('ouk', 'import', d.path);
    assert.equal(refused.code, EXIT_CODES.BUNDLE_EXPIRED, refused.stderr);
    assert.match(refused.stderr, new RegExp(`bundle 2026-11-25 expired at ${times.expires.replace(/\./g, '\\.')}.*--force`));
    const still = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as typeof before;
    assert.equal(still.active.version, '2026-11-24');
    assert.deepEqual(still.active.counts, before.active.counts);

    const forced = await stella('ouk', 'import', d.path, '--force', '--reason', 'test: an expired kit on purpose');
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.stdout, 'activated 2026-11-25\n');
    const s = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as {
      active: { version: string; kind: string; counts: Record<string, number> };
      previous: { version: string } | null;
    };
    assert.equal(s.active.version, '2026-11-25');
    assert.equal(s.active.kind, 'delta');
    assert.deepEqual(s.active.counts, d.counts);
    assert.equal(s.previous?.version, '2026-11-24');

    const rb = await stella('ouk', 'rollback');
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(rb.stdout, 'rolled back to 2026-11-24 (was 2026-11-25)\n');
    const after = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as {
      active: { version: string; kind: string; counts: Record<string, number> };
      history: Array<{ action: string; version: string; kind: string }>;
      imports: Array<{ version: string; state: string }>;
    };
    assert.equal(after.active.version, '2026-11-24');
    assert.deepEqual(after.active.counts, before.active.counts);
    assert.equal(after.imports.find((i) => i.version === '2026-11-25')?.state, 'rolled-back');
    // Newest first: every activation and rollback of this file's imports.
    assert.deepEqual(
      after.history.map((h) => `${h.action} ${h.version} ${h.kind}`),
      [
        'rollback 2026-11-24 full',
        'activate 2026-11-25 delta',
        'activate 2026-11-24 full',
        'activate 2026-11-23 full',
        'activate 2026-11-22 full',
        'rollback 2026-11-20 full',
        'activate 2026-11-01 full',
        'activate 2026-11-20 full',
      ],
    );
    const human = await stella('ouk', 'status');
    assert.match(human.stdout, /History[^\n]*\n\s+\S+\s+rollback\s+2026-11-24\s+full[^\n]*\n\s+\S+\s+activate\s+2026-11-25\s+delta/);
  });
});

describe('preflight', () => {
  test('refuses with INSUFFICIENT_SPACE when the store or the database lacks room, and says which', async () => {
    const manifest = {
      members: [
        { path: 'db/advisories.tsv', size: 1000, sha256: '0'.repeat(64), role: 'db' },
        { path: 'sbom.spdx.json', size: 100, sha256: '0'.repeat(64), role: 'sbom' },
      ],
    } as Parameters<typeof spaceNeeded>[0];
    const need = spaceNeeded(manifest, 500);
    assert.deepEqual(need, { store: 1600, database: 2000 });
    const where = { storeDir: '/s3', storeFree: 10_000, dataDir: '/pg', databaseFree: 10_000 };
    assert.deepEqual(checkSpace(need, where).notes, []);
    for (const [w, re] of [
      [{ ...where, storeFree: 1599 }, /object store \(\/s3\) has .* free, this bundle needs/],
      [{ ...where, databaseFree: 1999 }, /PostgreSQL's data directory \(\/pg\) has .* free/],
    ] as const) {
      try {
        checkSpace(need, w);
        assert.fail('expected INSUFFICIENT_SPACE');
      } catch (e) {
        assert.ok(isOukError(e) && e.code === 'INSUFFICIENT_SPACE');
        assert.match((e as Error).message, re);
      }
    }
    assert.equal(checkSpace(need, { storeDir: null, storeFree: null, dataDir: null, databaseFree: null }).notes.length, 2, 'unknown free space is reported, not guessed');
  });
});
