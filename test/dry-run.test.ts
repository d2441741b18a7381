/**
 * `stella ouk import FILE|URL --dry-run [--json]`, as real
 * CLI processes against PostgreSQL, Redis, s3rver and running workers: for
 * each refusal the dry run exits with the code the real import then exits
 * with, and leaves the bucket's objects, the DB's schemas and ouk_meta rows
 * and the Redis keys exactly as they were; a good kit passes with the "would
 * import" summary, still writing nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { createGunzip, createGzip } from 'node:zlib';
import { Redis } from 'ioredis';
import pg from 'pg';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { EXIT_CODES, OukError } from '../lib/errors.ts';
import type { Manifest } from '../bundle/manifest.ts';
import type { ActiveDbPointer } from '../infra/active-db.ts';
import { DryRunRefusal, dryRunImport, dryRunLines, type DryRunDeps } from '../cli/import/dry-run.ts';
import type { KitVerification } from '../signing/index.ts';
import { pipelineSettings } from '../lib/config.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { generateKeyPair, writeSignatureFiles } from '../signing/index.ts';
import { syntheticDbDigest, writeSyntheticBundle, type SyntheticOptions } from './fixtures/synthetic-bundle.ts';
import { expiredTimes, fixtureConfig, fixtureEnv, FAST_RETRIES, makeBundle, pipelineFixture, TEST_BUNDLE_CREATED, TEST_BUNDLE_EXPIRES, type PipelineFixture } from './pipeline-fixtures.ts';
import { createTestDatabase, runStella, testRedisPrefix, tmpDir, type CliRun, type TestRedisPrefix } from './helpers/services.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let workers: RunningWorkers;
let raw: Redis;

before(async () => {
  fx = await pipelineFixture('dry-run');
  redis = testRedisPrefix('dry-run');
  workers = startWorkers(fixtureConfig(fx, redis), { pool: fx.pool, store: fx.s3.store, settings: pipelineSettings({ ...FAST_RETRIES, OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000' }), logger: fx.logger });
  raw = new Redis(redis.redisUrl, { maxRetriesPerRequest: 1 });
});

after(async () => {
  raw?.disconnect();
  await workers?.close();
  await redis?.cleanup();
  await fx?.close();
});

function stella(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn', OUK_TRUSTED_KEYS: fx.publicKey, ...extra }) });
}

/** Everything an import could write: the bucket's objects, the DB's schemas and ouk_meta rows, the Redis keys and their contents. */
async function snapshot(prefix = redis.prefix): Promise<{ objects: string[]; schemas: string[]; meta: string[]; redis: string[] }> {
  const objects: string[] = [];
  for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, '', true)) objects.push(`${(o as { name: string }).name} ${(o as { etag?: string }).etag ?? ''}`);
  const schemas = (await fx.pool.query<{ nspname: string }>('SELECT nspname FROM pg_namespace ORDER BY 1')).rows.map((r) => r.nspname);
  const tables = (await fx.pool.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'ouk_meta' ORDER BY 1`)).rows.map((r) => r.table_name);
  const meta: string[] = [];
  for (const t of tables) {
    const rows = await fx.pool.query<{ j: string }>(`SELECT to_jsonb(t)::text AS j FROM ouk_meta."${t}" t`);
    meta.push(...rows.rows.map((r) => `${t}: ${r.j}`).sort());
  }
  // stalled-check: the running workers' own heartbeat, whatever the CLI does
  const keys = (await raw.keys(`${prefix}*`)).filter((k) => !k.endsWith(':stalled-check')).sort();
  const dumps: string[] = [];
  for (const k of keys) dumps.push(`${k} ${(await raw.dumpBuffer(k))?.toString('hex') ?? ''}`);
  return { objects: objects.sort(), schemas, meta, redis: dumps };
}

/** The dry run's exit code, with nothing changed; then the real import's, which must be the same. */
async function sameAsImport(file: string, want: keyof typeof EXIT_CODES | 0, extra: NodeJS.ProcessEnv = {}, flags: string[] = []): Promise<CliRun> {
  const prefix = extra.OUK_QUEUE_PREFIX ?? redis.prefix;
  const before = await snapshot(prefix);
  const dry = await stella(['ouk', 'import', file, '--dry-run', ...flags], extra);
  assert.deepEqual(await snapshot(prefix), before, `the dry run wrote something: ${dry.stderr}`);
  const real = await stella(['ouk', 'import', file, ...flags], extra);
  const code = want === 0 ? 0 : EXIT_CODES[want];
  assert.equal(real.code, code, `the import: ${real.stderr}`);
  assert.equal(dry.code, real.code, `the dry run exits ${dry.code}, the import ${real.code}: ${dry.stderr}`);
  if (want !== 0) assert.match(dry.stderr, new RegExp(`error\\[${want}\\]`));
  return dry;
}

interface Case {
  file: string;
  want: keyof typeof EXIT_CODES;
}

/**
 * sameAsImport for many refused kits at once: every dry run (concurrently) with nothing changed, then every real
 * import (concurrently; each is refused, so none changes what another is checked against), code for code.
 */
async function sameAsImportAll(cases: Case[]): Promise<void> {
  const before = await snapshot();
  const dry = await Promise.all(cases.map((c) => stella(['ouk', 'import', c.file, '--dry-run'])));
  assert.deepEqual(await snapshot(), before, `a dry run wrote something: ${dry.map((d) => d.stderr).join('\n')}`);
  const real = await Promise.all(cases.map((c) => stella(['ouk', 'import', c.file])));
  const codes = (runs: CliRun[]) => cases.map((c, i) => `${path.basename(c.file)} ${runs[i]!.code}`);
  assert.deepEqual(codes(real), cases.map((c) => `${path.basename(c.file)} ${EXIT_CODES[c.want]}`), `the imports: ${real.map((r) => r.stderr).join('\n')}`);
  assert.deepEqual(codes(dry), codes(real), `the dry runs: ${dry.map((r) => r.stderr).join('\n')}`);
  cases.forEach((c, i) => assert.match(dry[i]!.stderr, new RegExp(`error\\[${c.want}\\]`)));
}

/** Rewrites a kit's tar entries (`edit` may change, drop or add entries), gzips it again and signs it validly. */
async function repack(src: string, out: string, edit: (entries: { name: string; body: Buffer }[]) => { name: string; body: Buffer }[], key: string): Promise<string> {
  const entries: { name: string; body: Buffer }[] = [];
  const ex = tarExtract();
  const reading = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      entries.push({ name: e.header.name, body: Buffer.concat(chunks) });
    }
  })();
  await Promise.all([pipeline(fs.createReadStream(src), createGunzip(), ex), reading]);
  const p = tarPack();
  const writing = pipeline(p, createGzip(), fs.createWriteStream(out));
  for (const e of edit(entries)) p.entry({ name: e.name, size: e.body.length, mode: 0o644, mtime: new Date(0) }, e.body);
  p.finalize();
  await writing;
  await writeSignatureFiles(out, key);
  return out;
}

const kit = (name: string, opts: SyntheticOptions) => makeBundle(fx, name, opts);

describe('stella ouk import --dry-run', () => {
  test('a good full kit on an empty site: exit 0, what the import would do, nothing written; the import then activates it', async () => {
    const b = await kit('stella-ouk-2026-11-20.tar.gz', { version: '2026-11-20', advisories: 40 });
    const before = await snapshot();
    const dry = await stella(['ouk', 'import', b.path, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would import 2026-11-20 as full, activating it; [\d.]+ KiB unpacked in \d+ members\n/);
    assert.match(dry.stdout, /checked:  database, queues, bucket, space, history, signature, policy, members\n/);
    assert.match(dry.stdout, new RegExp(`sha256:${b.sha256}`));
    assert.match(dry.stdout, /dry run: nothing was uploaded, queued or written\n$/);
    assert.deepEqual(await snapshot(), before);
    const real = await stella(['ouk', 'import', b.path]);
    assert.equal(real.code, 0, real.stderr);
    assert.equal(real.stdout, 'activated 2026-11-20\n');
  });

  test('a database never imported into: an empty site, and it stays empty (no schema, no migration)', async () => {
    const empty = await createTestDatabase('dry-run-empty');
    try {
      const b = await kit('stella-ouk-2026-11-15.tar.gz', { version: '2026-11-15', advisories: 5 });
      const dry = await stella(['ouk', 'import', b.path, '--dry-run'], { DATABASE_URL: empty.url });
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^would import 2026-11-15 as full, activating it; /);
      assert.match(dry.stdout, /database: no Stella OUK schema yet — the import would create it first/);
      const c = new pg.Client({ connectionString: empty.url });
      await c.connect();
      const schemas = (await c.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1`)).rows.map((r) => r.n);
      await c.end();
      assert.deepEqual(schemas, ['public']);
    } finally {
      await empty.drop();
    }
  });

  test('--json: the outcome, the kit, the space, the trust and the checks', async () => {
    const b = await kit('stella-ouk-2026-11-22.tar.gz', { version: '2026-11-22', advisories: 30 });
    const before = await snapshot();
    const dry = await stella(['ouk', 'import', b.path, '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const j = JSON.parse(dry.stdout) as Record<string, unknown> & { space: { need: { store: number; database: number } }; trust: { implicit: boolean; threshold: number } };
    assert.equal(j.dryRun, true);
    assert.equal(j.ok, true);
    assert.equal(j.outcome, 'import');
    assert.equal(j.version, '2026-11-22');
    assert.equal(j.kind, 'full');
    assert.equal(j.activeVersion, '2026-11-20');
    assert.equal(j.wouldActivate, true);
    assert.equal(j.sha256, b.sha256);
    assert.equal(j.size, b.size);
    assert.equal(j.unpackedBytes, b.manifest.members.reduce((n, m) => n + m.size, 0));
    assert.ok(j.space.need.store > b.size && j.space.need.database > 0);
    assert.deepEqual(j.trust.implicit, true);
    assert.deepEqual(j.checks, ['database', 'queues', 'bucket', 'space', 'history', 'signature', 'policy', 'members']);
    assert.deepEqual(await snapshot(), before);
    const refused = await stella(['ouk', 'import', (await kit('stella-ouk-2026-10-01.tar.gz', { version: '2026-10-01', advisories: 5 })).path, '--dry-run', '--json']);
    assert.equal(refused.code, EXIT_CODES.DOWNGRADE_REFUSED, refused.stderr);
    const r = JSON.parse(refused.stdout) as { ok: boolean; error: { code: string; exitCode: number; message: string }; checks: string[] };
    assert.equal(r.ok, false);
    assert.equal(r.error.code, 'DOWNGRADE_REFUSED');
    assert.equal(r.error.exitCode, EXIT_CODES.DOWNGRADE_REFUSED);
    assert.deepEqual(r.checks, ['database', 'queues', 'bucket', 'space', 'history', 'signature']);
  });

  test('a delta onto the active DB: would import as a delta; the active kit again: would import nothing (the import says it is already active)', async () => {
    const d = await kit('stella-ouk-2026-11-21.tar.gz', { version: '2026-11-21', advisories: 0, delta: { base: { version: '2026-11-20', advisories: 40 }, changed: [1, 2], added: 3, removed: [4] } });
    const dry = await sameAsImport(d.path, 0);
    assert.match(dry.stdout, /^would import 2026-11-21 as a delta onto 2026-11-20, activating it, replacing 2026-11-20; /);
    const again = await sameAsImport(d.path, 0);
    assert.match(again.stdout, /^would import nothing: stella-ouk-2026-11-21\.tar\.gz \(2026-11-21\) is already the active DB\n/);
    // Rolled back, the delta is newer than the active DB again, yet the import refuses to bring it back unasked.
    const rb = await stella(['ouk', 'rollback', '--reason', 'dry-run test']);
    assert.equal(rb.code, 0, rb.stderr);
    const back = await sameAsImport(d.path, 'DOWNGRADE_REFUSED');
    assert.match(back.stderr, /imported before \(import [0-9a-f]{24}\) and is now rolled-back/);
  });

  test('every refusal of verify and unpack: the import\'s own exit code, nothing written', async () => {
    // A byte altered inside the gzip stream, beside its .sig and .sigstore.json: the stage's signature check comes
    // first (SIGNATURE_MISMATCH), before anyone reads the broken archive.
    const tampered = await kit('stella-ouk-2026-12-01.tar.gz', { version: '2026-12-01', advisories: 10 });
    const buf = fs.readFileSync(tampered.path);
    buf[300] ^= 0x40;
    fs.writeFileSync(tampered.path, buf);
    // Signed by a key the site does not trust, with its .sig and .sigstore.json as `stella ouk build` writes them.
    const other = await generateKeyPair();
    const otherKey = path.join(fx.dir, 'other.key');
    fs.writeFileSync(otherKey, other.privateKeyPem, { mode: 0o600 });
    const wrong = await writeSyntheticBundle(path.join(tmpDir('dry-run-wrong-key'), 'stella-ouk-2026-12-02.tar.gz'), { version: '2026-12-02', advisories: 10, created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES }, otherKey);

    const unsigned = await kit('stella-ouk-2026-12-03.tar.gz', { version: '2026-12-03', advisories: 10 });
    fs.rmSync(`${unsigned.path}.sig`);
    const expired = await kit('stella-ouk-2026-12-04.tar.gz', { version: '2026-12-04', advisories: 10, ...expiredTimes() });
    const ahead = Date.now() + 3 * 86_400_000;
    const future = await kit('stella-ouk-2026-12-05.tar.gz', { version: '2026-12-05', advisories: 10, created: new Date(ahead).toISOString(), expires: new Date(ahead + 30 * 86_400_000).toISOString() });
    const older = await kit('stella-ouk-2026-11-02.tar.gz', { version: '2026-11-02', advisories: 10 });
    const wrongBase = await kit('stella-ouk-2026-12-06.tar.gz', { version: '2026-12-06', advisories: 0, delta: { base: { version: '2026-11-19', advisories: 40, dbDigest: syntheticDbDigest(41) }, changed: [1], added: 1, removed: [] } });
    // validly signed, refused by unpack's bundle reader
    const good = await kit('good-source.tar.gz', { version: '2026-12-10', advisories: 10 });
    const member = await repack(good.path, path.join(fx.dir, 'stella-ouk-2026-12-10.tar.gz'), (es) => es.map((e, i) => (i === 1 ? { ...e, body: Buffer.from(e.body.toString().replace(/.$/s, 'X')) } : e)), fx.privateKey);
    const hostile = await repack(good.path, path.join(fx.dir, 'stella-ouk-2026-12-11.tar.gz'), (es) => [...es.slice(0, 2), { name: '../evil', body: Buffer.from('x\n') }, ...es.slice(2)], fx.privateKey);

    await sameAsImportAll([
      { file: tampered.path, want: 'SIGNATURE_MISMATCH' },
      { file: wrong.path, want: 'SIGNATURE_MISMATCH' },
      { file: unsigned.path, want: 'SIGNATURE_MISSING' },
      { file: expired.path, want: 'BUNDLE_EXPIRED' },
      { file: future.path, want: 'BUNDLE_FROM_FUTURE' },
      { file: older.path, want: 'DOWNGRADE_REFUSED' },
      { file: wrongBase.path, want: 'DELTA_BASE_MISMATCH' },
      { file: member, want: 'MEMBER_CHECKSUM_MISMATCH' },
      { file: hostile, want: 'UNSAFE_ENTRY' },
    ]);
    const unreasoned = await stella(['ouk', 'import', older.path, '--dry-run', '--allow-downgrade']);
    assert.equal(unreasoned.code, EXIT_CODES.REASON_REQUIRED, unreasoned.stderr); // as the import: an override needs its reason
    const before = await snapshot();
    const lifted = await stella(['ouk', 'import', older.path, '--dry-run', '--allow-downgrade', '--reason', 'testing the override']);
    assert.deepEqual(await snapshot(), before, 'a dry run writes no audit row');
    assert.equal(lifted.code, 0, lifted.stderr);
    assert.match(lifted.stdout, /^would import 2026-11-02 as full, activating it, replacing 2026-11-20; /);
    assert.match(lifted.stdout, /is quarantined; --allow-downgrade lifts its refusal: the import would release it and check it again/);
  });

  test('a URL: downloaded to a temporary file that is removed; under STELLA_AIRGAP a foreign host is refused as the import refuses it', async () => {
    const b = await kit('url-src.tar.gz', { version: '2026-12-20', advisories: 12 });
    const files: Record<string, string> = { '/kits/stella-ouk-2026-12-20.tar.gz': b.path, '/kits/stella-ouk-2026-12-20.tar.gz.sig': `${b.path}.sig` };
    const server = http.createServer((req, res) => {
      const file = files[req.url ?? ''];
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(fs.statSync(file).size) });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/kits/stella-ouk-2026-12-20.tar.gz`;
      const downloads = (): string[] => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('stella-dry-run-'));
      const left = downloads();
      const before = await snapshot();
      const dry = await stella(['ouk', 'import', url, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^would import 2026-12-20 as full, activating it, replacing 2026-11-20; /);
      assert.doesNotMatch(dry.stderr, /uploaded/);
      assert.deepEqual(downloads(), left, 'the temporary download is removed');
      assert.deepEqual(await snapshot(), before);
      await sameAsImport('http://mirror.example.invalid/kits/stella-ouk-2026-12-21.tar.gz', 'AIRGAP_VIOLATION', { STELLA_AIRGAP: 'true' });
    } finally {
      server.close();
    }
  });

  test('no room in the object store: INSUFFICIENT_SPACE from both, before anything is uploaded', { skip: process.getuid?.() !== 0 ? 'mounting a small tmpfs needs root' : false }, async (t) => {
    const state = tmpDir('dry-run-space');
    const s3Dir = path.join(state, 's3');
    fs.mkdirSync(s3Dir);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', s3Dir], { encoding: 'utf8' });
    if (m.status !== 0) return void t.skip(`mount refused: ${m.stderr}`);
    try {
      const big = await kit('stella-ouk-2026-12-30.tar.gz', { version: '2026-12-30', advisories: 10, imageBytes: 3 * 1024 * 1024 });
      const dry = await sameAsImport(big.path, 'INSUFFICIENT_SPACE', { STELLA_STATE_DIR: state });
      assert.match(dry.stderr, /the object store \(.*\) has .* free, this bundle needs/);
    } finally {
      spawnSync('umount', [s3Dir]);
    }
  });
});

describe('stella ouk import --dry-run against a root of trust (OUK_TRUST_ROOT, kit threshold 2 of 2)', () => {
  let rootRedis: TestRedisPrefix;
  let rootWorkers: RunningWorkers;
  let env: NodeJS.ProcessEnv;
  const keys: Record<string, { key: string; pub: string }> = {};

  before(async () => {
    for (const name of ['r1', 'k1', 'k2']) {
      const kp = await generateKeyPair();
      keys[name] = { key: path.join(fx.dir, `${name}.key`), pub: path.join(fx.dir, `${name}.pub`) };
      fs.writeFileSync(keys[name]!.key, kp.privateKeyPem, { mode: 0o600 });
      fs.writeFileSync(keys[name]!.pub, kp.publicKeyPem);
    }
    const root = path.join(fx.dir, 'root.json');
    const init = await stella(['trust', 'init', '--out', root, '--root-key', keys.r1!.pub, '--kit-key', keys.k1!.pub, '--kit-key', keys.k2!.pub, '--kit-threshold', '2', '--sign', keys.r1!.key]);
    assert.equal(init.code, 0, init.stderr);
    rootRedis = testRedisPrefix('dry-run-root');
    rootWorkers = startWorkers(fixtureConfig(fx, rootRedis, { trustRoot: root, trustedKeys: [] }), { pool: fx.pool, store: fx.s3.store, settings: pipelineSettings({ ...FAST_RETRIES, OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000' }), logger: fx.logger });
    env = { OUK_QUEUE_PREFIX: rootRedis.prefix, OUK_TRUST_ROOT: root, OUK_TRUSTED_KEYS: '' };
  });

  after(async () => {
    await rootWorkers?.close();
    await rootRedis?.cleanup();
  });

  const rootKit = async (version: string, signers: string[]): Promise<string> => {
    const file = path.join(tmpDir(`dry-run-root-${version}`), `stella-ouk-${version}.tar.gz`);
    await writeSyntheticBundle(file, { version, advisories: 8, created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES });
    await writeSignatureFiles(file, signers);
    return file;
  };

  test('one kit signature of the two required: SIGNATURE_THRESHOLD from both, nothing written; both signatures: would import', async () => {
    await sameAsImport(await rootKit('2027-01-01', [keys.k1!.key]), 'SIGNATURE_THRESHOLD', env);
    const ok = await stella(['ouk', 'import', await rootKit('2027-01-02', [keys.k1!.key, keys.k2!.key]), '--dry-run'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^would import 2027-01-02 as full, activating it, replacing 2026-11-20; /);
    assert.match(ok.stdout, /trust:    2 kit signature\(s\), threshold 2, root v1 \(OUK_TRUST_ROOT=/);
  });
});

describe('the dry run\'s order (cli/import/dry-run.ts, I/O passed in)', () => {
  const manifest = (over: Partial<Manifest> = {}): Manifest =>
    ({ bundleVersion: '2026-12-02', kind: 'full', created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES, members: [{ path: 'db/a.tsv', size: 10, sha256: 'x', role: 'db' }], ...over }) as Manifest;
  const verified = (m: Manifest): KitVerification =>
    ({ manifest: m, sha256: 'ab'.repeat(32), size: 100, trust: { source: 'OUK_TRUSTED_KEYS', implicit: true, root: { signed: { version: 0 } }, chain: [0] }, signatures: { keyids: ['k'], threshold: 1 }, attestation: null }) as unknown as KitVerification;
  const pointer = (v: string | null): ActiveDbPointer => ({ activeImport: v ? 'a'.repeat(24) : null, activeVersion: v, activeSchema: null, activeDigest: 'd'.repeat(64), activatedAt: null, previousImport: null });
  const deps = (over: Partial<DryRunDeps>): DryRunDeps => ({
    now: new Date('2026-12-07T00:00:00Z'),
    maxSkewSeconds: 600,
    flags: { allowDowngrade: false, force: false },
    peekManifest: async () => manifest(),
    space: async (m) => ({ need: { store: m.members[0]!.size, database: 0 }, storeFree: null, databaseFree: null, notes: [] }),
    verify: async () => verified(manifest()),
    activePointer: async () => pointer('2026-12-01'),
    activeKit: async () => null,
    prior: async () => null,
    pendingBase: async () => null,
    ...over,
  });
  const refusal = async (p: Promise<unknown>): Promise<DryRunRefusal> => {
    try {
      await p;
    } catch (e) {
      if (e instanceof DryRunRefusal) return e;
      throw e;
    }
    assert.fail('expected a refusal');
  };

  test('a policy refusal wins over what unpack\'s reader found (verify runs before unpack); alone, the reader\'s finding is the refusal', async () => {
    const unsafe = async (): Promise<KitVerification> => {
      throw new OukError('UNSAFE_ENTRY', 'refusing tar entry "../evil"');
    };
    const older = await refusal(dryRunImport('k.tar.gz', deps({ verify: unsafe, peekManifest: async () => manifest({ bundleVersion: '2026-11-01' }) })));
    assert.equal(older.error.code, 'DOWNGRADE_REFUSED');
    assert.deepEqual(older.checks, ['space', 'history', 'signature']);
    const alone = await refusal(dryRunImport('k.tar.gz', deps({ verify: unsafe })));
    assert.equal(alone.error.code, 'UNSAFE_ENTRY');
    assert.deepEqual(alone.checks, ['space', 'history', 'signature', 'policy']);
  });

  test('a signature refusal comes before the policy; an unreadable manifest skips the space check, as the import does', async () => {
    const bad = await refusal(dryRunImport('k.tar.gz', deps({ peekManifest: async () => null, verify: async () => { throw new OukError('SIGNATURE_MISMATCH', 'no'); }, activePointer: async () => assert.fail('the policy runs after the signature') })));
    assert.equal(bad.error.code, 'SIGNATURE_MISMATCH');
    assert.deepEqual(bad.checks, ['history']);
  });

  test('a delta whose base is on its way: the import would wait for it (exit 0), and says on what', async () => {
    const delta = manifest({ bundleVersion: '2026-12-03', kind: 'delta', base: { version: '2026-12-02', dbDigest: 'e'.repeat(64) } } as Partial<Manifest>);
    const r = await dryRunImport('k.tar.gz', deps({ verify: async () => verified(delta), pendingBase: async () => 'stella-ouk-2026-12-02.tar.gz is in the bucket, its import not started yet' }));
    assert.equal(r.outcome, 'wait-for-base');
    assert.match(dryRunLines(r)[0]!, /^would import 2026-12-03 as a delta onto 2026-12-02 once its base is active \(stella-ouk-2026-12-02\.tar\.gz is in the bucket/);
    const nowhere = await refusal(dryRunImport('k.tar.gz', deps({ verify: async () => verified(delta) })));
    assert.equal(nowhere.error.code, 'DELTA_BASE_MISMATCH');
  });
});
