/**
 * The import pipeline on a pinned root of trust (OUK_TRUST_ROOT), through
 * real processes: kits built by `stella ouk build --key … --root …`, imported
 * by `stella ouk import` (a CLI process: uploads the kit and the files beside
 * it), verified by the real verify stage in workers against real Redis,
 * PostgreSQL and s3rver. The site's root follows the roots the kits carry
 * (v1 → v2 → v3 → v4, `stella trust show` without FILE reads it from
 * PostgreSQL); a 2-of-3 kit role is enforced; a kit key dropped by v2 is
 * refused as KEY_REVOKED even after the site moved on; an attestation naming
 * another digest is ATTESTATION_MISMATCH; OUK_REQUIRE_ATTESTATION makes it
 * mandatory; an expired root (the workers' injected clock, two days ahead) is
 * ROOT_EXPIRED, except for a kit that carries the next root.
 *
 * Clock: roots expire relative to the clock every process shares (faketime
 * moves them all); the workers' clock is injected, an offset from it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { healthRoutes } from '../api/health-routes.ts';
import { metricsPlugin } from '../api/metrics.ts';
import { currentRootSummary } from '../functions/common/site-trust.ts';
import { EXIT_CODES, type ErrorCode } from '../lib/errors.ts';
import { pipelineSettings, type Config } from '../lib/config.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { generateKeyPair } from '../signing/index.ts';
import { keyidOfKey } from '../signing/root/index.ts';
import { createHash, createPublicKey } from 'node:crypto';
import { readTrustChain, storeTrustRoots } from '../infra/trust-roots.ts';
import { fixtureConfig, fixtureEnv, FAST_RETRIES, pipelineFixture, type PipelineFixture } from './pipeline-fixtures.ts';
import { runStella, sharedDir, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';

interface Pair {
  key: string;
  pub: string;
  keyid: string;
}

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let workers: RunningWorkers;
let config: Config;
let dir: string;
let feeds: string;
/** The workers' clock: the shared clock plus this offset. */
let clockOffsetMs = 0;
/** The import refused as KEY_REVOKED, then released. */
let revokedId = '';
const k: Record<'r1' | 'r2' | 'r3' | 'k1' | 'k2' | 'k3', Pair> = {} as never;
const roots: Record<'v1' | 'v2' | 'v3' | 'v4' | 'v5', string> = {} as never;

const DAY = 86_400_000;
/** Kit versions of today (the shared clock): a kit's created time and expiry follow its version's date. */
const TODAY = new Date().toISOString().slice(0, 10);
const v = (n: number): string => `${TODAY}.${n}`;

function stella(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runStella(args, { cwd: dir, env: fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn', OUK_TRUST_ROOT: roots.v1, OUK_TRUSTED_KEYS: fx.publicKey, ...extra }) });
}

function assertOk(r: CliRun): void {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

function assertRefused(r: CliRun, code: ErrorCode, message?: RegExp): void {
  assert.equal(r.code, EXIT_CODES[code], `exit code for ${code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`error\\[${code}\\]: verify failed for import [0-9a-f]{24}`), r.stderr);
  if (message) assert.match(r.stderr, message);
}

async function pair(name: string): Promise<Pair> {
  const { privateKeyPem, publicKeyPem } = await generateKeyPair();
  const key = path.join(dir, 'keys', `${name}.key`);
  const pub = path.join(dir, 'keys', `${name}.pub`);
  await writeFile(key, privateKeyPem, { mode: 0o600 });
  await writeFile(pub, publicKeyPem);
  return { key, pub, keyid: keyidOfKey(createPublicKey(publicKeyPem)) };
}

async function build(name: string, version: string, keys: Pair[], carried: string[] = []): Promise<string> {
  const out = path.join(dir, name, `stella-ouk-${version}.tar.gz`);
  const r = await stella(['ouk', 'build', '--feeds', feeds, ...keys.flatMap((x) => ['--key', x.key]), ...carried.flatMap((x) => ['--root', x]), '--out', out, '--version', version, '--expires-days', '30']);
  assertOk(r);
  return out;
}

/** A copy of a kit and the files beside it that `with_` names, in its own directory. */
async function copyKit(file: string, name: string, with_: string[]): Promise<string> {
  const sub = path.join(dir, name);
  await mkdir(sub, { recursive: true });
  const out = path.join(sub, path.basename(file));
  await copyFile(file, out);
  for (const ext of with_) await copyFile(`${file}${ext}`, `${out}${ext}`);
  return out;
}

async function readObject(key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await fx.s3.store.getObject(fx.s3.bucket, key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function siteRoot(): Promise<{ version: number; site: { pinned: string; from: string; kitVersion: string | null } }> {
  const r = await stella(['trust', 'show', '--json']);
  assertOk(r);
  return JSON.parse(r.stdout);
}

const FEED_FILES = ['osv/Go/GO-2020-0001.json', 'osv/Go/GO-2020-0006.json', 'osv/Go/GO-2020-0008.json'];

before(async () => {
  fx = await pipelineFixture('trust-pipeline');
  redis = testRedisPrefix('trust-pipeline');
  dir = fx.dir;
  await mkdir(path.join(dir, 'keys'));
  feeds = path.join(dir, 'feeds');
  const ghsa = (await readdir(path.join(sharedDir, 'feeds', 'ghsa'))).filter((f) => f.endsWith('.json')).sort().slice(0, 3).map((f) => `ghsa/${f}`);
  for (const rel of [...FEED_FILES, ...ghsa]) {
    await mkdir(path.dirname(path.join(feeds, rel)), { recursive: true });
    fs.symlinkSync(path.join(sharedDir, 'feeds', rel), path.join(feeds, rel));
  }
  for (const name of ['r1', 'r2', 'r3', 'k1', 'k2', 'k3'] as const) k[name] = await pair(name);

  // v1: root keys r1 r2 (2 of 2), kit keys k1 k2 k3 (2 of 3)
  roots.v1 = path.join(dir, 'root.1.json');
  assertOk(
    await stella(['trust', 'init', '--out', roots.v1, '--root-key', k.r1.pub, '--root-key', k.r2.pub, '--root-threshold', '2',
      '--kit-key', k.k1.pub, '--kit-key', k.k2.pub, '--kit-key', k.k3.pub, '--kit-threshold', '2', '--sign', k.r1.key, '--sign', k.r2.key]),
  );
  // v2: k1 revoked; v3: root keys r2 r3, valid for one day only; v4: v3 renewed
  roots.v2 = path.join(dir, 'root.2.json');
  assertOk(await stella(['trust', 'rotate', '--root', roots.v1, '--out', roots.v2, '--kit-key', k.k2.pub, '--kit-key', k.k3.pub, '--sign', k.r1.key, '--sign', k.r2.key]));
  roots.v3 = path.join(dir, 'root.3.json');
  assertOk(await stella(['trust', 'rotate', '--root', roots.v2, '--out', roots.v3, '--root-key', k.r2.pub, '--root-key', k.r3.pub, '--expires-days', '1', '--sign', k.r1.key, '--sign', k.r2.key, '--sign', k.r3.key]));
  roots.v4 = path.join(dir, 'root.4.json');
  assertOk(await stella(['trust', 'rotate', '--root', roots.v3, '--out', roots.v4, '--sign', k.r2.key, '--sign', k.r3.key]));
  // v5: k1 trusted again (a root update a site may pin to release what k1 signed)
  roots.v5 = path.join(dir, 'root.5.json');
  assertOk(await stella(['trust', 'rotate', '--root', roots.v4, '--out', roots.v5, '--kit-key', k.k1.pub, '--kit-key', k.k2.pub, '--kit-key', k.k3.pub, '--kit-threshold', '2', '--sign', k.r2.key, '--sign', k.r3.key]));

  config = fixtureConfig(fx, redis, { trustRoot: roots.v1, requireAttestation: false });
  workers = startWorkers(config, {
    pool: fx.pool,
    store: fx.s3.store,
    settings: pipelineSettings({ ...FAST_RETRIES, OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000' }),
    logger: fx.logger,
    now: () => new Date(Date.now() + clockOffsetMs),
  });
});

after(async () => {
  await workers?.close();
  await redis?.cleanup();
  await fx?.close();
});

describe('the import pipeline on a pinned root of trust', () => {
  let kit3 = '';

  test('2-of-3: one kit signature is refused (SIGNATURE_THRESHOLD), two are accepted; the pinned root is stored', async () => {
    const both = await build('a', v(1), [k.k1, k.k2]);
    // The same tarball with k1's signature only (its .sig is k1's too: one distinct key).
    const one = await copyKit(both, 'a-one', ['.sig', '.sigstore.json', '.intoto.json']);
    const sigs = JSON.parse(fs.readFileSync(`${both}.sigs.json`, 'utf8'));
    sigs.signatures = sigs.signatures.filter((s: { keyid: string }) => s.keyid === k.k1.keyid);
    await writeFile(`${one}.sigs.json`, JSON.stringify(sigs));

    const refused = await stella(['ouk', 'import', one]);
    assertRefused(refused, 'SIGNATURE_THRESHOLD', /1 valid signature\(s\) by distinct kit keys of root v1, which requires 2/);
    assert.match(refused.stderr, /warning: OUK_TRUST_ROOT and OUK_TRUSTED_KEYS are both set/);
    assert.match(refused.stderr, new RegExp(`uploaded stella-ouk-${TODAY}\\.1\\.tar\\.gz\\.sigs\\.json\\n[\\s\\S]*uploaded stella-ouk-${TODAY}\\.1\\.tar\\.gz\\.intoto\\.json\\n[\\s\\S]*uploaded stella-ouk-${TODAY}\\.1\\.tar\\.gz \\(`));
    // Refused for integrity: quarantined with every file beside it, the one-signature set included.
    assert.match(refused.stderr, new RegExp(`quarantined as quarantine/\\d{4}-\\d{2}-\\d{2}/stella-ouk-${TODAY}\\.1\\.tar\\.gz`));
    const quarantined: string[] = [];
    for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, 'quarantine/', true)) quarantined.push((o as { name: string }).name.replace(/^quarantine\/[^/]+\//, ''));
    assert.deepEqual(quarantined.sort(), ['', '.intoto.json', '.reason.json', '.sig', '.sigs.json', '.sigstore.json'].map((x) => `stella-ouk-${TODAY}.1.tar.gz${x}`).sort());

    // The same tarball with both signatures (as the refusal asks): verified again with the files beside it now.
    const r = await stella(['ouk', 'import', both]);
    assertOk(r);
    assert.match(r.stderr, /this kit was quarantined \(SIGNATURE_THRESHOLD\); verifying it again with the files beside it now/);
    assert.equal(r.stdout, `activated ${v(1)}\n`);
    assert.match(r.stderr, /trust: +root v1 \(OUK_TRUST_ROOT=.*root\.1\.json; stored v1\), 2 kit key\(s\) \(threshold 2\)/);
    assert.match(r.stderr, /attested: feed osv: snapshot .*, 3 records/);
    const objects: string[] = [];
    for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, '', true)) objects.push((o as { name: string }).name);
    for (const ext of ['', '.sig', '.sigs.json', '.sigstore.json', '.intoto.json']) assert.ok(objects.includes(`stella-ouk-${TODAY}.1.tar.gz${ext}`), `${ext} in the bucket: ${objects.join(', ')}`);
    assert.ok(!objects.some((o) => o.startsWith('quarantine/')), `the quarantine is cleared: ${objects.join(', ')}`);
    const held = JSON.parse(await readObject(`stella-ouk-${TODAY}.1.tar.gz.sigs.json`)) as { signatures: unknown[] };
    assert.equal(held.signatures.length, 2, 'the signature set uploaded now, not the quarantined one');

    const root = await siteRoot();
    assert.equal(root.version, 1);
    assert.equal(root.site.kitVersion, v(1));
  });

  test('a rotation v1 → v2 → v3 carried in successive kits is accepted, and the stored root follows', async () => {
    const kit2 = await build('b', v(2), [k.k2, k.k3], [roots.v2]);
    const r2 = await stella(['ouk', 'import', kit2]);
    assertOk(r2);
    assert.match(r2.stderr, /trust: +root v2 \(.*reached v1 → v2; stored v2\)/);
    assert.equal((await siteRoot()).version, 2);

    kit3 = await build('c', v(3), [k.k2, k.k3], [roots.v2, roots.v3]);
    const r3 = await stella(['ouk', 'import', kit3]);
    assertOk(r3);
    assert.match(r3.stderr, /trust: +root v3 \(.*reached v1 → v2 → v3; stored v3\)/);
    const root = await siteRoot();
    assert.equal(root.version, 3);
    assert.equal(root.site.kitVersion, v(3));
    assert.match(root.site.from, new RegExp(`stella-ouk-${TODAY}\\.3\\.tar\\.gz:trust/root\\.3\\.json`));

    const status = await stella(['ouk', 'status']);
    assertOk(status);
    assert.match(status.stdout, /Trust\s+root v3 .*expires .*in 0 days: get the next root/);
    assert.match(status.stdout, /attested: feed osv: snapshot/);
    const json = JSON.parse((await stella(['ouk', 'status', '--json'])).stdout);
    assert.equal(json.trust.rootVersion, 3);
    assert.equal(json.trust.expiresSoon, true);
    const verify = json.imports[0].stages.verify.result;
    assert.deepEqual(verify.trust.chain, [1, 2, 3]);
    assert.ok(verify.attestation.feeds.some((f: { name: string }) => f.name === 'osv'));
  });

  test('/readyz warns and ouk_trust_root_expires_timestamp_seconds tells when the stored root expires (injected clock)', async () => {
    const app = Fastify();
    const trustRoot = () => currentRootSummary(config, fx.pool);
    let now = new Date();
    const r = new Redis(redis.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await app.register(healthRoutes, { pool: fx.pool, redis: r, store: fx.s3.store, bucket: fx.s3.bucket, freshness: config.freshness, airgap: false, trustRoot, now: () => now });
      await app.register(metricsPlugin, { freshness: config.freshness, trustRoot });
      const v3 = JSON.parse(fs.readFileSync(roots.v3, 'utf8')).signed.expires as string;
      const ready = (await app.inject({ url: '/readyz' })).json();
      assert.equal(ready.trust.version, 3);
      assert.equal(ready.trust.expiresSoon, true);
      assert.ok(ready.warnings.some((w: string) => /root of trust v3 expires at .*in 0 days/.test(w)), ready.warnings.join('\n'));
      now = new Date(Date.now() - 60 * DAY); // 60 days before: nothing due
      const early = (await app.inject({ url: '/readyz' })).json();
      assert.equal(early.trust.expiresSoon, false);
      assert.ok(!early.warnings.some((w: string) => /root of trust/.test(w)));
      now = new Date(Date.now() + 2 * DAY);
      const late = (await app.inject({ url: '/readyz' })).json();
      assert.equal(late.trust.expired, true);
      assert.ok(late.warnings.some((w: string) => /root of trust v3 expired at .*carries root v4/.test(w)));
      const metrics = (await app.inject({ url: '/metrics' })).body;
      assert.match(metrics, new RegExp(`^ouk_trust_root_expires_timestamp_seconds\\{version="3"\\} ${Date.parse(v3) / 1000}$`, 'm'));
    } finally {
      await app.close();
      r.disconnect();
    }
  });

  test('a kit signed by a key v2 dropped is refused as KEY_REVOKED and quarantined, though the site moved on to v3 since; released after a root that trusts the key again is pinned, it is imported', async () => {
    const kit = await build('d', v(4), [k.k1, k.k2]);
    const r = await stella(['ouk', 'import', kit]);
    assertRefused(r, 'KEY_REVOKED', new RegExp(`key ${k.k1.keyid.slice(0, 12)}.*a newer root dropped`));
    assert.match(r.stderr, new RegExp(`quarantined as quarantine/\\d{4}-\\d{2}-\\d{2}/stella-ouk-${TODAY}\\.4\\.tar\\.gz`));
    assert.equal((await siteRoot()).version, 3);
    revokedId = /verify failed for import ([0-9a-f]{24})/.exec(r.stderr)![1]!;
    const list = JSON.parse((await stella(['ouk', 'quarantine', 'list', '--json'])).stdout) as Array<{ importId: string; code: string }>;
    assert.deepEqual(list.map((x) => `${x.importId} ${x.code}`), [`${revokedId} KEY_REVOKED`]);

    // Released before the trust changed: verified again, refused again, quarantined again.
    const early = await stella(['ouk', 'quarantine', 'release', revokedId, '--reason', 'before the root update']);
    assertRefused(early, 'KEY_REVOKED');
    // The site pins root v5, which trusts k1 again (a re-pin: a new chain starts there); release imports the kit.
    config.trustRoot = roots.v5;
    try {
      const released = await stella(['ouk', 'quarantine', 'release', revokedId, '--reason', 'k1 trusted again by root v5'], { OUK_TRUST_ROOT: roots.v5 });
      assertOk(released);
      assert.equal(released.stdout, `activated ${v(4)}\n`);
      const after = JSON.parse((await stella(['ouk', 'status', '--json'], { OUK_TRUST_ROOT: roots.v5 })).stdout);
      assert.equal(after.active.version, v(4));
      assert.equal(after.trust.rootVersion, 5);
    } finally {
      config.trustRoot = roots.v1; // back to the first pin: its stored chain (v3) is the site's trust again
    }
    assert.deepEqual(JSON.parse((await stella(['ouk', 'quarantine', 'list', '--json'])).stdout), []);
    assert.equal((await siteRoot()).version, 3);
  });

  test('an attestation naming another digest is refused (ATTESTATION_MISMATCH); OUK_REQUIRE_ATTESTATION makes one mandatory', async () => {
    const kit = await build('e', v(5), [k.k2, k.k3]);
    await copyFile(`${kit3}.intoto.json`, `${kit}.intoto.json`);
    const mismatch = await stella(['ouk', 'import', kit]);
    assertRefused(mismatch, 'ATTESTATION_MISMATCH', /does not attest this kit/);
    assert.match(mismatch.stderr, new RegExp(`quarantined as quarantine/\\d{4}-\\d{2}-\\d{2}/stella-ouk-${TODAY}\\.5\\.tar\\.gz`));

    const bare = await build('f', v(6), [k.k2, k.k3]);
    fs.rmSync(`${bare}.intoto.json`);
    config.requireAttestation = true;
    try {
      const missing = await stella(['ouk', 'import', bare]);
      assertRefused(missing, 'SIGNATURE_MISSING', new RegExp(`release attestation stella-ouk-${TODAY}\\.6\\.tar\\.gz\\.intoto\\.json`));
      assert.doesNotMatch(missing.stderr, /quarantined/, 'a missing file may still arrive: not quarantined');
    } finally {
      config.requireAttestation = false;
    }
  });

  test('an expired root refuses a kit (ROOT_EXPIRED); a kit carrying the next root passes and the site moves to it', async () => {
    const plain = await build('g', v(7), [k.k2, k.k3]);
    const next = await build('h', v(8), [k.k2, k.k3], [roots.v4]);
    clockOffsetMs = 2 * DAY; // v3 was valid for one day
    try {
      const expired = await stella(['ouk', 'import', plain]);
      assertRefused(expired, 'ROOT_EXPIRED', /root of trust v3 .* expired at/);
      assert.match(expired.stderr, new RegExp(`quarantined as quarantine/\\d{4}-\\d{2}-\\d{2}/stella-ouk-${TODAY}\\.7\\.tar\\.gz`));
      const r = await stella(['ouk', 'import', next]);
      assertOk(r);
      assert.match(r.stderr, /trust: +root v4 \(.*reached v1 → v2 → v3 → v4; stored v4\)/);
    } finally {
      clockOffsetMs = 0;
    }
    assert.equal((await siteRoot()).version, 4);
  });
  test('the mirror pull fetches .sigs.json and .intoto.json beside a kit and verifies it against the site\'s stored root (v4)', async () => {
    const mirrorDir = path.join(dir, 'mirror');
    await mkdir(mirrorDir, { recursive: true });
    const out = path.join(mirrorDir, `stella-ouk-${v(9)}.tar.gz`);
    assertOk(await stella(['ouk', 'build', '--feeds', feeds, '--key', k.k2.key, '--key', k.k3.key, '--out', out, '--version', v(9), '--expires-days', '30', '--index']));
    // Only the signature set: against a root it is enough (the .sig and .sigstore.json are k2's alone).
    fs.rmSync(`${out}.sig`);
    fs.rmSync(`${out}.sigstore.json`);
    const server = http.createServer((req, res) => {
      const file = path.join(mirrorDir, decodeURIComponent(new URL(req.url ?? '/', 'http://m').pathname));
      if (!file.startsWith(mirrorDir + path.sep) || !fs.existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(fs.statSync(file).size) });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
      const r = await stella(['ouk', 'mirror', 'pull'], { OUK_MIRROR_URL: url });
      assertOk(r);
      const objects: string[] = [];
      for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, 'mirror/', true)) objects.push((o as { name: string }).name);
      assert.deepEqual(objects.sort(), [`mirror/stella-ouk-${v(9)}.tar.gz`, `mirror/stella-ouk-${v(9)}.tar.gz.intoto.json`, `mirror/stella-ouk-${v(9)}.tar.gz.sigs.json`]);
      const status = JSON.parse((await stella(['ouk', 'status', '--json'])).stdout);
      assert.equal(status.active.version, v(9));
      assert.deepEqual(status.imports[0].stages.verify.result.trust.chain, [1, 2, 3, 4]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
  test('the stored chain never goes back: rows cannot be changed or deleted, and another document for a stored version is a conflict', async () => {
    const pinned = createHash('sha256').update(fs.readFileSync(roots.v1)).digest('hex');
    const before = await readTrustChain(fx.pool, pinned);
    assert.deepEqual(before.map((r) => r.version), [1, 2, 3, 4]);
    await assert.rejects(fx.pool.query('UPDATE ouk_meta.trust_roots SET version = 9 WHERE version = 4'), /insert-only/);
    await assert.rejects(fx.pool.query('DELETE FROM ouk_meta.trust_roots'), /insert-only/);
    const other = { version: 2, document: Buffer.from('{}'), sha256: 'f'.repeat(64), expires: new Date(), source: 'test' };
    const r = await storeTrustRoots(fx.pool, pinned, [other], { importId: null, kitVersion: null }, new Date());
    assert.deepEqual(r, { added: [], conflict: { version: 2, stored: before[1]!.sha256, offered: 'f'.repeat(64) } });
    assert.deepEqual((await readTrustChain(fx.pool, pinned)).map((x) => x.sha256), before.map((x) => x.sha256));
  });

  test('every move of the site\'s root is on the audit trail: the pins (v1, then the re-pin to v5) and each root a kit carried; the releases too', async () => {
    const r = await stella(['ouk', 'audit', '--json']);
    assertOk(r);
    const rows = JSON.parse(r.stdout) as Array<{ action: string; target: string; actor: string; reason: string | null; outcome: string }>;
    const trust = rows.filter((x) => x.action.startsWith('trust.'));
    assert.deepEqual(trust.map((x) => `${x.action} ${x.target} ${x.outcome}`), ['trust.pin root v1 ok', 'trust.advance root v2 ok', 'trust.advance root v3 ok', 'trust.pin root v5 ok', 'trust.advance root v4 ok']);
    assert.ok(trust.every((x) => x.actor === 'system (cli import)' || x.actor === 'system (mirror import)'), JSON.stringify(trust));
    assert.match(trust[0]!.reason ?? '', new RegExp(`pinned OUK_TRUST_ROOT=.*root\\.1\\.json .*first kit verified against it: ${v(1)}`));
    assert.match(trust[2]!.reason ?? '', new RegExp(`carried by kit ${v(3)} \\(import [0-9a-f]{24}\\)`));
    assert.match(trust[3]!.reason ?? '', /root\.5\.json .*it replaces the pin whose chain reached root v3/);
    const releases = rows.filter((x) => x.action === 'quarantine.release').map((x) => `${x.target} ${x.outcome} ${x.reason}`);
    assert.ok(releases.includes(`${revokedId} ok k1 trusted again by root v5`), releases.join('\n'));
    assert.ok(releases.includes(`${revokedId} KEY_REVOKED before the root update`), releases.join('\n'));
    assert.ok(releases.some((x) => / ok imported again with the files beside it$/.test(x)), releases.join('\n'));
  });
});
