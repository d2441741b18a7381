/**
 * The crypto policy (STELLA_CRYPTO_POLICY, lib/crypto-policy.ts): `fips`
 * takes ECDSA P-256 kits and ES256 tokens only, `gm` SM2/SM3 kits and roots
 * only. A kit outside it is refused by the real verify stage (PostgreSQL,
 * s3rver) with ALGORITHM_NOT_ALLOWED and nothing is activated; a kit inside
 * it imports; a root holding a key outside it is refused; a token outside it
 * is refused; `stella ouk status` shows the policy in force.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../lib/config.ts';
import { CRYPTO_POLICIES } from '../lib/crypto-policy.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import { REVERIFIED_ON_IMPORT, shouldQuarantine } from '../lib/quarantine.ts';
import { issueToken, loadPublicTokenKey, verifyToken } from '../lib/tokens.ts';
import { generateKeyPair, loadPrivateKey, loadTrustedKeys, verifyKitFile } from '../signing/index.ts';
import { createRoot, pinnedTrust } from '../signing/root/index.ts';
import { publicHalf } from '../signing/suites/index.ts';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { activeCounts, pipelineFixture, putBundle, registerImport, runStages, stageContext, TEST_BUNDLE_CREATED, TEST_BUNDLE_EXPIRES, type PipelineFixture } from './pipeline-fixtures.ts';
import { runStella } from './helpers/services.ts';

let fx: PipelineFixture;
const keys: Record<'ecdsa' | 'ed25519' | 'sm2', { key: string; pub: string }> = {} as never;

async function kit(name: string, version: string, key: string): Promise<string> {
  const file = path.join(fx.dir, name);
  await writeSyntheticBundle(file, { version, advisories: 8, created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES }, key);
  return file;
}

/** Uploads the kit and runs the real stages under `policy` with `trusted` as the site's keys. */
async function importUnder(policy: keyof typeof CRYPTO_POLICIES, file: string, trusted: string[]) {
  const name = path.basename(file);
  const p = await putBundle(fx, file, name);
  await registerImport(fx, p);
  const ctx = stageContext(fx, { config: { bucket: fx.s3.bucket, trustedKeys: trusted, cryptoPolicy: CRYPTO_POLICIES[policy] }, trustedKeys: () => loadTrustedKeys(trusted) });
  return runStages(p, ctx);
}

const refused = (e: unknown): boolean => {
  const err = e as { code?: string; message?: string };
  assert.equal(err.code, 'ALGORITHM_NOT_ALLOWED', err.message);
  return true;
};

before(async () => {
  fx = await pipelineFixture('crypto-policy');
  keys.ecdsa = { key: fx.privateKey, pub: fx.publicKey };
  for (const alg of ['ed25519', 'sm2'] as const) {
    const kp = await generateKeyPair(undefined, alg);
    keys[alg] = { key: path.join(fx.dir, `${alg}.key`), pub: path.join(fx.dir, `${alg}.pub`) };
    await writeFile(keys[alg].key, kp.privateKeyPem, { mode: 0o600 });
    await writeFile(keys[alg].pub, kp.publicKeyPem);
  }
});

after(async () => {
  await fx?.close();
});

test('fips: an Ed25519 kit is refused by the verify stage and nothing is activated; an ECDSA P-256 kit imports', async () => {
  await assert.rejects(importUnder('fips', await kit('stella-ouk-2026-11-19.tar.gz', '2026-11-19', keys.ed25519.key), [keys.ed25519.pub]), refused);
  await assert.rejects(activeCounts(fx.pool), 'no DB was activated');
  const activated = await importUnder('fips', await kit('stella-ouk-2026-11-20.tar.gz', '2026-11-20', keys.ecdsa.key), [keys.ecdsa.pub]);
  assert.equal(activated.version, '2026-11-20');
});

test('gm: an ECDSA kit is refused, so is an SM2 kit while the site also trusts an ECDSA key; an SM2 kit on SM2 trust imports', async () => {
  await assert.rejects(importUnder('gm', await kit('stella-ouk-2026-11-21.tar.gz', '2026-11-21', keys.ecdsa.key), [keys.ecdsa.pub]), refused);
  await assert.rejects(importUnder('gm', await kit('stella-ouk-2026-11-22.tar.gz', '2026-11-22', keys.sm2.key), [keys.sm2.pub, keys.ecdsa.pub]), (e: unknown) => refused(e) && /trusted keys/.test((e as Error).message));
  const activated = await importUnder('gm', await kit('stella-ouk-2026-11-23.tar.gz', '2026-11-23', keys.sm2.key), [keys.sm2.pub]);
  assert.equal(activated.version, '2026-11-23');
  assert.equal((await activeCounts(fx.pool)).version, '2026-11-23');
});

test('a pinned root with an Ed25519 root key is refused under fips even for an ECDSA-signed kit; accepted by default', async () => {
  const ec = await loadPrivateKey(keys.ecdsa.key);
  const ed = await loadPrivateKey(keys.ed25519.key);
  const md = createRoot({ root: { keys: [publicHalf(ed)], threshold: 1 }, kit: { keys: [publicHalf(ec)], threshold: 1 }, expires: new Date('2126-01-01T00:00:00Z'), signers: [ed] });
  const trust = pinnedTrust(md, 'root.json');
  const file = await kit('rooted.tar.gz', '2026-11-24', keys.ecdsa.key);
  const now = new Date('2026-12-01T00:00:00Z');
  await assert.rejects(verifyKitFile(file, { trust, now, policy: CRYPTO_POLICIES.fips }), (e: unknown) => refused(e) && /root of trust v1/.test((e as Error).message));
  assert.equal((await verifyKitFile(file, { trust, now, policy: CRYPTO_POLICIES.default })).signatures.keyids.length, 1);
});

test('tokens: an EdDSA token is refused under fips (verifying and issuing), accepted by default', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = String(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const pub = loadPublicTokenKey(String(publicKey.export({ type: 'spki', format: 'pem' })));
  const now = new Date('2026-06-01T00:00:00Z');
  const { token } = await issueToken({ privateKey: priv, sub: 'alice', ttl: '1d', now });
  await assert.rejects(verifyToken(token, pub, { now, policy: CRYPTO_POLICIES.fips }), refused);
  assert.equal((await verifyToken(token, pub, { now, policy: CRYPTO_POLICIES.default })).claims.sub, 'alice');
  await assert.rejects(issueToken({ privateKey: priv, sub: 'alice', ttl: '1d', now, policy: CRYPTO_POLICIES.fips }), refused);
});

test('STELLA_CRYPTO_POLICY: an unknown policy is a USAGE error; stella ouk status shows the policy in force', async () => {
  assert.throws(() => loadConfig({ STELLA_CRYPTO_POLICY: 'nsa' }), (e: { code?: string }) => e.code === 'USAGE');
  assert.equal(loadConfig({}).cryptoPolicy.name, 'default');
  const env = { ...process.env, DATABASE_URL: fx.db.url, OUK_TRUSTED_KEYS: keys.sm2.pub, STELLA_CRYPTO_POLICY: 'gm', STELLA_AIRGAP: 'true' };
  const r = await runStella(['ouk', 'status', '--json'], { cwd: fx.dir, env });
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { cryptoPolicy: { name: string; kitSuites: string[] } };
  assert.deepEqual(json.cryptoPolicy.kitSuites, ['sm2']);
  assert.equal(json.cryptoPolicy.name, 'gm');
  assert.equal(EXIT_CODES.ALGORITHM_NOT_ALLOWED, 150);
  // A refused kit is quarantined, and verified again when imported after the trust or the policy changed.
  assert.ok(shouldQuarantine('ALGORITHM_NOT_ALLOWED') && REVERIFIED_ON_IMPORT.has('ALGORITHM_NOT_ALLOWED'));
});
