/**
 * The process entry points: the environment is read in one place
 * (lib/config.ts's processEnvironment, layered by infra/env.ts) and resolved once per process, and the CLI's commands that
 * only read never change the database's schema (cli/context.ts): a database
 * without it is NOTHING_ACTIVE, one whose migrations lag SCHEMA_OUTDATED,
 * never a crash, and nothing is created.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { resolveEnv } from '../infra/env.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { childBaseEnv, createTestDatabase, repoRoot, runStella, sharedDir, tmpDir, type TestDatabase } from './helpers/services.ts';

/** The product's source folders (tests, benchmarks, the dev stack and the build script may set up environments of their own). */
const PRODUCT = ['lib', 'bundle', 'signing', 'infra', 'builder', 'scan', 'functions', 'queue', 'api', 'cli', 'publisher', 'bin'];

function sources(dir: string): string[] {
  const root = path.join(repoRoot, dir);
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => path.relative(repoRoot, path.join(e.parentPath, e.name)))
    .filter((f) => !f.startsWith(`infra${path.sep}dev${path.sep}`));
}

describe('the environment is read in one place', () => {
  test('no product module but lib/config.ts names process.env', () => {
    const all = PRODUCT.flatMap(sources);
    assert.ok(all.length > 100, `found the sources (${all.length})`);
    const readers = all.filter((f) => /process\.env\b/.test(fs.readFileSync(path.join(repoRoot, f), 'utf8')));
    assert.deepEqual(readers, [path.join('lib', 'config.ts')]);
  });

  test('resolveEnv: the process environment over .env over the stack\'s dev.env, process.env left as it was', () => {
    const cwd = tmpDir('resolve-env');
    fs.writeFileSync(path.join(cwd, '.env'), 'STELLA_TEST_FROM_DOTENV=dotenv\nSTELLA_TEST_BOTH=dotenv\nSTELLA_TEST_MINE=dotenv\n');
    fs.mkdirSync(path.join(cwd, '.stella'));
    fs.writeFileSync(path.join(cwd, '.stella', 'dev.env'), 'STELLA_TEST_BOTH=dev\nSTELLA_TEST_FROM_DEV=dev\n', { mode: 0o600 });
    process.env.STELLA_TEST_MINE = 'process';
    try {
      const env = resolveEnv(cwd);
      assert.equal(env.STELLA_TEST_MINE, 'process');
      assert.equal(env.STELLA_TEST_BOTH, 'dotenv');
      assert.equal(env.STELLA_TEST_FROM_DOTENV, 'dotenv');
      assert.equal(env.STELLA_TEST_FROM_DEV, 'dev');
      assert.equal(env.STELLA_STATE_DIR, path.join(cwd, '.stella'));
      assert.equal(process.env.STELLA_TEST_FROM_DOTENV, undefined, '.env is read, not loaded into the process');
      assert.equal(process.env.STELLA_TEST_FROM_DEV, undefined);
    } finally {
      delete process.env.STELLA_TEST_MINE;
    }
  });

  test('making a logger reads no environment: a malformed unrelated variable does not break it', () => {
    process.env.S3_PART_SIZE = 'not a number';
    try {
      assert.doesNotThrow(() => createLogger('entry-points', { level: 'silent' }));
      assert.equal(createLogger('entry-points').level, 'info', 'the level is the one given, info by default');
    } finally {
      delete process.env.S3_PART_SIZE;
    }
  });

  test('the CLI resolves its configuration once, .env included: STELLA_DEBUG in .env prints the stack', async () => {
    const cwd = tmpDir('cli-dotenv');
    const args = ['ouk', 'verify', path.join(cwd, 'missing.tar.gz'), '--key', path.join(cwd, 'missing.pub')];
    const plain = await runStella(args, { cwd, env: childBaseEnv() });
    assert.equal(plain.code, EXIT_CODES.KEY_INVALID, plain.stderr);
    assert.doesNotMatch(plain.stderr, /^\s+at /m);
    fs.writeFileSync(path.join(cwd, '.env'), 'STELLA_DEBUG=1\n');
    const debug = await runStella(args, { cwd, env: childBaseEnv() });
    assert.equal(debug.code, EXIT_CODES.KEY_INVALID, debug.stderr);
    assert.match(debug.stderr, /^error\[KEY_INVALID\]/);
    assert.match(debug.stderr, /^\s+at /m, `the stack's frames follow the error line:\n${debug.stderr}`);
  });
});

describe('commands that only read never change the schema', () => {
  let empty: TestDatabase;
  let behind: TestDatabase;
  const cwd = tmpDir('read-only');
  const sbom = path.join(sharedDir, 'sboms', 'osv-scanner-alpine-zlib-16.cdx.json');
  const env = (db: TestDatabase) => childBaseEnv({ DATABASE_URL: db.url, OUK_QUEUE_PREFIX: `ro-${path.basename(cwd)}`, STELLA_QUOTA_PREFIX: `ro-${path.basename(cwd)}` });

  async function query<T extends pg.QueryResultRow>(db: TestDatabase, sql: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  before(async () => {
    empty = await createTestDatabase('read-only-empty');
    behind = await createTestDatabase('read-only-behind');
  });
  after(async () => {
    await empty?.drop();
    await behind?.drop();
  });

  test('a database without the schema: NOTHING_ACTIVE with what to do, and still no schema', async () => {
    for (const args of [['ouk', 'status'], ['ouk', 'status', '--json'], ['ouk', 'jobs'], ['ouk', 'images'], ['sbom', 'list'], ['sbom', 'diff', 'web'], ['sbom', 'status'], ['scan', sbom]]) {
      const r = await runStella(args, { cwd, env: env(empty) });
      assert.equal(r.code, EXIT_CODES.NOTHING_ACTIVE, `stella ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error\[NOTHING_ACTIVE\]: the database holds no Stella OUK schema: nothing was ever imported into it — run `stella ouk import FILE` first/, args.join(' '));
      assert.equal(r.stdout, '');
    }
    assert.deepEqual(await query(empty, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ouk%'"), [], 'no schema created');
  });

  test('a schema a migration behind: SCHEMA_OUTDATED naming it, left as it was; a command that writes migrates', async () => {
    // a command that writes applies the migrations (the stored SBOM is not there: 66)
    let r = await runStella(['sbom', 'rm', 'web'], { cwd, env: env(behind) });
    assert.equal(r.code, EXIT_CODES.SBOM_NOT_FOUND, r.stderr);
    const applied = (await query<{ name: string }>(behind, 'SELECT name FROM ouk_meta.migrations ORDER BY name')).map((m) => m.name);
    assert.deepEqual(applied, fs.readdirSync(path.join(repoRoot, 'infra', 'sql')).filter((f) => f.endsWith('.sql')).sort());
    const last = applied.at(-1)!;
    await query(behind, `DELETE FROM ouk_meta.migrations WHERE name = '${last}'`);
    for (const args of [['ouk', 'status'], ['sbom', 'list']]) {
      r = await runStella(args, { cwd, env: env(behind) });
      assert.equal(r.code, EXIT_CODES.SCHEMA_OUTDATED, `stella ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error\\[SCHEMA_OUTDATED\\]: the database's schema is older than this stella \\(not applied yet: ${last.replace(/\./g, '\\.')}\\)`));
    }
    assert.equal((await query(behind, `SELECT 1 FROM ouk_meta.migrations WHERE name = '${last}'`)).length, 0, 'nothing migrated by a read');
    // once the migration is on record again, the same read answers
    await query(behind, `INSERT INTO ouk_meta.migrations (name) VALUES ('${last}')`);
    r = await runStella(['sbom', 'list'], { cwd, env: env(behind) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^No stored SBOMs/);
  });
});
