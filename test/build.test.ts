/**
 * The production build (`npm run build`, scripts/build.ts): compiled into a
 * temporary directory and laid out as the package and the image lay it out —
 * package.json, bin/stella.js and dist/, no TypeScript source, node_modules
 * beside them — then run with plain Node (no tsx loader anywhere): `node
 * dist/cli/main.js --version`, and real commands through the package's bin
 * (keygen, a kit built from real feed records with a CSAF document, so the
 * JSON schemas copied into dist/ are read; verify; `sbom add`, whose
 * migrations are the SQL files copied into dist/; and the read-only `ouk
 * status`, on that database and on one without the schema); and the image's
 * two commands, `node dist/api/main.js` (until /healthz answers) and `node
 * dist/queue/worker-main.js` (until it is ready), stopped with SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { EXIT_CODES } from '../lib/errors.ts';
import { generateKeyPair } from '../signing/index.ts';
import { waitFor } from './pipeline-fixtures.ts';
import { selectFeeds } from './helpers/scan-db.ts';
import { childBaseEnv, createTestDatabase, freePort, repoRoot, sharedDir, testRedisPrefix, tmpDir, type TestDatabase } from './helpers/services.ts';

const pkgDir = path.join(tmpDir('build'), 'stella-ouk');
const dist = path.join(pkgDir, 'dist');
const work = tmpDir('build-work');
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
let db: TestDatabase;
let empty: TestDatabase;
/** Two real OSV records and a real Red Hat CSAF advisory. */
let feeds: string;

/** Plain Node in a directory of its own: no tsx (not --import, not NODE_OPTIONS), no project variable from this shell. */
function node(args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const base = childBaseEnv(env);
  delete base.NODE_OPTIONS;
  return spawnSync(process.execPath, args, { cwd: work, env: base, encoding: 'utf8', timeout: 120_000 });
}

function stella(args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return node([path.join(pkgDir, 'bin', 'stella.js'), ...args], env);
}

function files(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

before(async () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--out-dir', dist], { cwd: repoRoot, encoding: 'utf8', timeout: 280_000 });
  assert.equal(r.status, 0, `npm run build failed:\n${r.stdout}\n${r.stderr}`);
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.mkdirSync(path.join(pkgDir, 'bin'));
  fs.copyFileSync(path.join(repoRoot, 'bin', 'stella.js'), path.join(pkgDir, 'bin', 'stella.js'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(pkgDir, 'node_modules'));
  db = await createTestDatabase('build');
  empty = await createTestDatabase('build-empty');
  feeds = await selectFeeds({ files: ['osv/npm/GHSA-226w-6hhj-69hp.json', 'osv/npm/GHSA-257v-vj4p-3w2h.json'] }, 'build');
  fs.mkdirSync(path.join(feeds, 'csaf'));
  fs.symlinkSync(path.join(sharedDir, 'feeds-extra', 'csaf', 'redhat', 'rhsa-2023_5835.json'), path.join(feeds, 'csaf', 'rhsa-2023_5835.json'));
});

after(async () => {
  await db?.drop();
  await empty?.drop();
});

describe('the production build', () => {
  test('is JavaScript only, its imports rewritten to .js, with the files the code reads at run time', () => {
    const built = files(dist);
    assert.deepEqual(built.filter((f) => f.endsWith('.ts')), [], 'no TypeScript in dist/');
    for (const entry of ['cli/main.js', 'api/main.js', 'queue/worker-main.js']) assert.ok(fs.existsSync(path.join(dist, entry)), entry);
    assert.ok(!fs.existsSync(path.join(dist, 'test')) && !fs.existsSync(path.join(dist, 'bench')) && !fs.existsSync(path.join(dist, 'dev')), 'tests, benchmarks and the dev stack are not built');
    const tsSpecifier = /(?:from\s*|import\s*\(\s*)["'](\.{1,2}\/[^"']+\.ts)["']/g;
    const left = built.filter((f) => f.endsWith('.js')).flatMap((f) => [...fs.readFileSync(f, 'utf8').matchAll(tsSpecifier)].map((m) => `${path.relative(dist, f)}: ${m[1]}`));
    assert.deepEqual(left, [], 'every relative import names a .js file');
    const sql = fs.readdirSync(path.join(repoRoot, 'infra', 'sql')).filter((f) => f.endsWith('.sql'));
    assert.ok(sql.length > 0);
    assert.deepEqual(fs.readdirSync(path.join(dist, 'infra', 'sql')).sort(), sql.sort(), 'the migrations beside infra/db.js');
    for (const f of fs.readdirSync(path.join(repoRoot, 'bundle', 'csaf-schema'))) assert.ok(fs.existsSync(path.join(dist, 'bundle', 'csaf-schema', f)), `bundle/csaf-schema/${f}`);
  });

  test('node dist/cli/main.js --version prints the package version', () => {
    const r = node([path.join(dist, 'cli', 'main.js'), '--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  });

  test('the package bin runs the build: keygen, a kit with CSAF built and verified, an SBOM stored, the status read', async () => {
    // no sources beside bin/stella.js: it must take dist/ (and could not load a .ts without tsx)
    assert.ok(!fs.existsSync(path.join(pkgDir, 'cli')));
    const keys = path.join(work, 'keys');
    let r = stella(['ouk', 'keygen', '--out-dir', keys]);
    assert.equal(r.status, 0, r.stderr);

    const kit = path.join(work, 'kit', 'stella-ouk-2026-01-02.tar.gz');
    r = stella(['ouk', 'build', '--feeds', feeds, '--key', path.join(keys, 'cosign.key'), '--out', kit, '--version', '2026-01-02']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /feed csaf\s+[1-9]\d* records, 0 skipped/, `the CSAF document was read against the schemas in dist/:\n${r.stdout}\n${r.stderr}`);

    r = stella(['ouk', 'verify', kit, '--key', path.join(keys, 'cosign.pub'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const verified = JSON.parse(r.stdout) as { verified: boolean; manifest: { bundleVersion: string; generator: string } };
    assert.equal(verified.verified, true);
    assert.equal(verified.manifest.bundleVersion, '2026-01-02');
    assert.equal(verified.manifest.generator, `stella-ouk ${version}`, 'the generator names the package version, read from above dist/');

    // the migrations run from dist/infra/sql; the read-only status then finds the schema complete
    const sbom = path.join(sharedDir, 'sboms', 'osv-scanner-alpine-zlib-16.cdx.json');
    r = stella(['sbom', 'add', sbom, '--name', 'zlib', '--json'], { DATABASE_URL: db.url });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { name: string }).name, 'zlib');
    r = stella(['ouk', 'status', '--json'], { DATABASE_URL: db.url });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { active: unknown }).active, null);

    // a read-only command changes nothing: no schema is NOTHING_ACTIVE, and none is created
    r = stella(['ouk', 'status'], { DATABASE_URL: empty.url });
    assert.equal(r.status, EXIT_CODES.NOTHING_ACTIVE, r.stderr);
    assert.match(r.stderr, /^error\[NOTHING_ACTIVE\]: the database holds no Stella OUK schema.*stella ouk import FILE/);
    const client = new pg.Client({ connectionString: empty.url });
    await client.connect();
    try {
      assert.equal((await client.query<{ ns: string | null }>("SELECT to_regnamespace('ouk_meta')::text AS ns")).rows[0]!.ns, null, 'no schema created');
    } finally {
      await client.end();
    }
  });

  test('the image\'s commands run from dist/: the API answers /healthz, a worker gets ready, both stop on SIGTERM', async () => {
    const redis = testRedisPrefix('build-services');
    const port = await freePort();
    const pub = path.join(work, 'services.pub');
    fs.writeFileSync(pub, (await generateKeyPair()).publicKeyPem);
    const env = childBaseEnv({
      DATABASE_URL: db.url,
      REDIS_URL: redis.redisUrl,
      OUK_QUEUE_PREFIX: redis.prefix,
      OUK_TRUSTED_KEYS: pub,
      OUK_WEBHOOK_TOKEN: 'build-test',
      STELLA_API_PORT: String(port),
      STELLA_API_HOST: '127.0.0.1',
      STELLA_QUOTA_PREFIX: `${redis.prefix}-quota`,
      STELLA_STATE_DIR: path.join(work, 'state'),
      LOG_LEVEL: 'info',
    });
    delete env.NODE_OPTIONS;
    const start = (entry: string) => {
      const child = spawn(process.execPath, [path.join(dist, entry)], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<string>((resolve) => child.once('close', (code, signal) => resolve(signal ?? `exit ${code}`)));
      return { child, exited, out: () => out };
    };
    const api = start('api/main.js');
    const worker = start('queue/worker-main.js');
    try {
      await waitFor('the API from dist/ to answer /healthz', async () => {
        if (api.child.exitCode !== null) throw new Error(`the API exited with ${api.child.exitCode}:\n${api.out()}`);
        return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok;
      }, 60_000);
      await waitFor('the worker from dist/ to be ready', async () => {
        if (worker.child.exitCode !== null) throw new Error(`the worker exited with ${worker.child.exitCode}:\n${worker.out()}`);
        return /"msg":"worker ready"/.test(worker.out());
      }, 60_000);
      for (const p of [api, worker]) p.child.kill('SIGTERM');
      assert.deepEqual(await Promise.all([api.exited, worker.exited]), ['exit 0', 'exit 0'], `${api.out()}\n${worker.out()}`);
    } finally {
      for (const p of [api, worker]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
      await redis.cleanup();
    }
  });
});
