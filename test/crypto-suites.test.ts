/**
 * The signature suites (signing/suites/): ECDSA P-256, Ed25519 and SM2 with
 * SM3. SM2 is checked against the worked example of GB/T 32918.2-2016 /
 * GM/T 0003.2-2012 (Annex A: its own test curve, ID ALICE123@YAHOO.COM, a
 * fixed k) and both ways against Debian's OpenSSL 3 (`openssl pkeyutl -rawin
 * -digest sm3 -pkeyopt distid:…`, keys from `openssl genpkey -algorithm SM2`);
 * Ed25519 against OpenSSL too. A kit signed with each suite imports end to
 * end through the real stages on real PostgreSQL and s3rver; roots of trust
 * hold each suite's keys under their TUF names.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Metadata, MetadataKind } from '@tufjs/models';
import { generateKeyPair, loadPrivateKey, loadTrustedKeys, verifyBundleFile, verifyKitFile, writeSignatureFiles } from '../signing/index.ts';
import { createRoot, pinnedTrust, ROOT_ROLE, serializeRoot } from '../signing/root/index.ts';
import { sm2PublicKeyOf, sm2Sign, sm2Verify, sm2Z, sm3, type Sm2Curve } from '../signing/suites/sm2.ts';
import { isSm2Key, publicHalf, type SuiteKey } from '../signing/suites/index.ts';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { pipelineFixture, putBundle, putFile, registerImport, runStages, stageContext, TEST_BUNDLE_CREATED, TEST_BUNDLE_EXPIRES, type PipelineFixture } from './pipeline-fixtures.ts';
import { runStella } from './helpers/services.ts';

const run = promisify(execFile);
const ID = '1234567812345678';

let fx: PipelineFixture;
const keys: Record<'ecdsa-p256' | 'ed25519' | 'sm2', { key: string; pub: string }> = {} as never;

async function writePair(name: string, alg: 'ecdsa-p256' | 'ed25519'): Promise<{ key: string; pub: string }> {
  const kp = await generateKeyPair(undefined, alg);
  const key = path.join(fx.dir, `${name}.key`);
  const pub = path.join(fx.dir, `${name}.pub`);
  await writeFile(key, kp.privateKeyPem, { mode: 0o600 });
  await writeFile(pub, kp.publicKeyPem);
  return { key, pub };
}

async function kit(name: string, version: string, key: string): Promise<string> {
  const file = path.join(fx.dir, name);
  await writeSyntheticBundle(file, { version, advisories: 12, created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES }, key);
  return file;
}

before(async () => {
  fx = await pipelineFixture('crypto-suites');
  keys['ecdsa-p256'] = await writePair('ecdsa', 'ecdsa-p256');
  keys.ed25519 = await writePair('ed25519', 'ed25519');
  // The SM2 key as OpenSSL 3 writes it.
  const sm2 = { key: path.join(fx.dir, 'sm2.key'), pub: path.join(fx.dir, 'sm2.pub') };
  await run('openssl', ['genpkey', '-algorithm', 'SM2', '-out', sm2.key]);
  await run('openssl', ['pkey', '-in', sm2.key, '-pubout', '-out', sm2.pub]);
  keys.sm2 = sm2;
});

after(async () => {
  await fx?.close();
});

describe('SM2 (GB/T 32918.2)', () => {
  test("the standard's worked example (GM/T 0003.2 Annex A.2, its Fp-256 test curve): the public key, Z_A and e as printed, and the printed (r, s) verifies", () => {
    const curve: Sm2Curve = {
      p: 0x8542d69e4c044f18e8b92435bf6ff7de457283915c45517d722edb8b08f1dfc3n,
      a: 0x787968b4fa32c3fd2417842e73bbfeff2f3c848b6831d7e0ec65228b3937e498n,
      b: 0x63e4c6d3b23b0c849cf84241484bfe48f61d59a5b16ba06e6e12d1da27c5249an,
      Gx: 0x421debd61b62eab6746434ebc3cc315e32220b3badd50bdc4c4e6c147fedd43dn,
      Gy: 0x0680512bcbb42c07d47349d2153b70c4e5d7fdfcbfa36ea1a85841b9e46e09a2n,
      n: 0x8542d69e4c044f18e8b92435bf6ff7dd297720630485628d5ae74ee7c32e79b7n,
    };
    const d = 0x128b2fa8bd433c6c068c8d803dff79792a519a55171b1b650c23661d15897263n;
    const P = sm2PublicKeyOf(d, curve);
    assert.equal(P.toString('hex'), '04' + '0ae4c7798aa0f119471bee11825be46202bb79e2a5844495e97c04ff4df2548a' + '7c0240f88f1cd4e16352a73c17b7f16f07353e53a176d684a9fe0c6bb798e857');
    const id = 'ALICE123@YAHOO.COM';
    assert.equal(sm2Z(P, id, curve).toString('hex'), 'f4a38489e32b45b6f876e3ac2168ca392362dc8f23459c1d1146fc3dbfb7bc9a');
    const msg = Buffer.from('message digest', 'ascii');
    assert.equal(sm3(sm2Z(P, id, curve), msg).toString('hex'), 'b524f552cd82b8b028476e005c377fb19a87e6fc682d48bb5d42e3d9b9effe76', 'e = SM3(Z_A || M)');
    const r = '40f1ec59f793d9f49e09dcef49130d4194f79fb1eed2caa55bacdb49c4e755d1';
    const s = '6fc6dac32c5d5cf10c77dfb20f7c2eb667a457872fb09ec56327a67ec7deebe7';
    const sig = Buffer.from(`30440220${r}0220${s}`, 'hex');
    assert.ok(sm2Verify(sig, msg, P, { id, curve }));
    assert.ok(!sm2Verify(sig, Buffer.from('message digesT'), P, { id, curve }));
    assert.ok(!sm2Verify(sig, msg, P, { id: 'BOB', curve }), 'the distinguishing ID is part of what is signed');
    // Our own signature on the test curve verifies (the signing side is checked against OpenSSL below).
    assert.ok(sm2Verify(sm2Sign(msg, d, P, { id, curve }), msg, P, { id, curve }));
  });

  test("OpenSSL verifies the project's SM2 kit signature, and the project verifies OpenSSL's (SM3 of the tarball, distid 1234567812345678)", async () => {
    const file = await kit('sm2-openssl.tar.gz', '2026-11-01', keys.sm2.key);
    const sm3File = `${file}.sm3`;
    await writeFile(sm3File, (await run('openssl', ['dgst', '-sm3', '-binary', file], { encoding: 'buffer' })).stdout);
    const ours = `${file}.sig.der`;
    await writeFile(ours, Buffer.from(await readFile(`${file}.sig`, 'utf8'), 'base64'));
    const verify = (sig: string, distid: string) =>
      run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', keys.sm2.pub, '-rawin', '-digest', 'sm3', '-pkeyopt', `distid:${distid}`, '-in', sm3File, '-sigfile', sig]);
    assert.match((await verify(ours, ID)).stdout, /Signature Verified Successfully/);
    await assert.rejects(verify(ours, 'another-id'), 'OpenSSL refuses it under another distinguishing ID');

    // OpenSSL signs the same digest; stella ouk verify's check accepts it as the kit's .sig.
    const theirs = (await run('openssl', ['pkeyutl', '-sign', '-inkey', keys.sm2.key, '-rawin', '-digest', 'sm3', '-pkeyopt', `distid:${ID}`, '-in', sm3File], { encoding: 'buffer' })).stdout;
    await writeFile(`${file}.sig`, theirs.toString('base64'));
    const trusted = await loadTrustedKeys([keys.sm2.pub]);
    const r = await verifyBundleFile(file, { keys: trusted });
    assert.equal(r.key.path, keys.sm2.pub);
    // Signed under another ID, it is not this key's signature for Stella either.
    const otherId = (await run('openssl', ['pkeyutl', '-sign', '-inkey', keys.sm2.key, '-rawin', '-digest', 'sm3', '-pkeyopt', 'distid:another-id', '-in', sm3File], { encoding: 'buffer' })).stdout;
    await writeFile(`${file}.sig`, otherId.toString('base64'));
    await assert.rejects(verifyBundleFile(file, { keys: trusted }), (e: Error & { code?: string }) => e.code === 'SIGNATURE_MISMATCH');
  });

  test('stella ouk keygen --alg sm2 writes the PEM OpenSSL 3 writes: OpenSSL reads it, derives the same public key, and its signatures verify here', async () => {
    const out = path.join(fx.dir, 'keygen-sm2');
    const r = await runStella(['ouk', 'keygen', '--alg', 'sm2', '--out-dir', out], { cwd: fx.dir, env: { ...process.env, STELLA_KEY_PASSWORD: '' } });
    assert.equal(r.code, 0, r.stderr);
    const text = (await run('openssl', ['pkey', '-in', path.join(out, 'cosign.key'), '-noout', '-text'])).stdout;
    assert.match(text, /ASN1 OID: SM2/);
    const derived = (await run('openssl', ['pkey', '-in', path.join(out, 'cosign.key'), '-pubout'])).stdout;
    assert.equal(derived, await readFile(path.join(out, 'cosign.pub'), 'utf8'));
    const msg = path.join(out, 'msg');
    await writeFile(msg, 'stella');
    const sig = (await run('openssl', ['pkeyutl', '-sign', '-inkey', path.join(out, 'cosign.key'), '-rawin', '-digest', 'sm3', '-pkeyopt', `distid:${ID}`, '-in', msg], { encoding: 'buffer' })).stdout;
    const pub = (await loadTrustedKeys([path.join(out, 'cosign.pub')]))[0]!.key;
    assert.ok(isSm2Key(pub) && sm2Verify(sig, Buffer.from('stella'), pub.publicPoint));
  });
});

test("OpenSSL verifies the project's Ed25519 kit signature: Ed25519 over the 32 bytes of the tarball's SHA-256", async () => {
  const file = await kit('ed25519-openssl.tar.gz', '2026-11-01', keys.ed25519.key);
  await writeFile(`${file}.sha256`, (await run('openssl', ['dgst', '-sha256', '-binary', file], { encoding: 'buffer' })).stdout);
  await writeFile(`${file}.sig.raw`, Buffer.from(await readFile(`${file}.sig`, 'utf8'), 'base64'));
  const r = await run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', keys.ed25519.pub, '-rawin', '-in', `${file}.sha256`, '-sigfile', `${file}.sig.raw`]);
  assert.match(r.stdout, /Signature Verified Successfully/);
  assert.equal(await readFile(`${file}.sigstore.json`, 'utf8').catch(() => null), null, 'a Sigstore bundle is written for ECDSA keys only');
});

test('a kit signed with each suite imports end to end: verify, unpack, load, activate on PostgreSQL and s3rver', async () => {
  const versions = { 'ecdsa-p256': '2026-11-20', ed25519: '2026-11-21', sm2: '2026-11-22' } as const;
  for (const alg of ['ecdsa-p256', 'ed25519', 'sm2'] as const) {
    const name = `stella-ouk-${versions[alg]}.tar.gz`;
    const file = await kit(`e2e-${name}`, versions[alg], keys[alg].key);
    await putFile(fx, `${file}.sigs.json`, `${name}.sigs.json`);
    const p = await putBundle(fx, file, name);
    await registerImport(fx, p);
    const ctx = stageContext(fx, { config: { bucket: fx.s3.bucket, trustedKeys: [keys[alg].pub] }, trustedKeys: () => loadTrustedKeys([keys[alg].pub]) });
    const activated = await runStages(p, ctx);
    assert.equal(activated.version, versions[alg], `${alg}: activated`);
  }
});

test('roots of trust hold every suite (TUF ecdsa / ed25519 / sm2 names); a 2-of-3 kit threshold met by SM2 + Ed25519 verifies', async () => {
  const priv = async (alg: keyof typeof keys): Promise<SuiteKey> => loadPrivateKey(keys[alg].key);
  const [ec, ed, sm] = [await priv('ecdsa-p256'), await priv('ed25519'), await priv('sm2')];
  const pub = (k: SuiteKey) => publicHalf(k);
  const md = createRoot({
    root: { keys: [pub(sm), pub(ed)], threshold: 2 },
    kit: { keys: [pub(ec), pub(ed), pub(sm)], threshold: 2 },
    expires: new Date('2126-01-01T00:00:00Z'),
    signers: [sm, ed],
  });
  const json = JSON.parse(serializeRoot(md)) as { signed: { keys: Record<string, { keytype: string; scheme: string; keyval: { public: string } }> } };
  const types = Object.values(json.signed.keys).map((k) => `${k.keytype}/${k.scheme}`).sort();
  assert.deepEqual(types, ['ecdsa/ecdsa-sha2-nistp256', 'ed25519/ed25519', 'sm2/sm2-sm3']);
  const edKey = Object.values(json.signed.keys).find((k) => k.keytype === 'ed25519')!;
  assert.match(edKey.keyval.public, /^[0-9a-f]{64}$/, 'Ed25519 keyval is the hex of the raw key, as the TUF specification writes it');
  const trust = pinnedTrust(md, 'test root');

  const file = await kit('root-threshold.tar.gz', '2026-11-02', keys.sm2.key);
  await writeSignatureFiles(file, [keys.sm2.key, keys.ed25519.key]);
  const r = await verifyKitFile(file, { trust, now: new Date('2026-12-01T00:00:00Z') });
  assert.equal(r.signatures.keyids.length, 2);

  // An independent TUF implementation (@tufjs/models) accepts a root of ECDSA and Ed25519 keys signed here.
  const plain = createRoot({ root: { keys: [pub(ec), pub(ed)], threshold: 2 }, kit: { keys: [pub(ec)], threshold: 1 }, expires: new Date('2126-01-01T00:00:00Z'), signers: [ec, ed] });
  const reparsed = Metadata.fromJSON(MetadataKind.Root, JSON.parse(serializeRoot(plain)));
  assert.doesNotThrow(() => reparsed.verifyDelegate(ROOT_ROLE, reparsed));
});

test('a key generated inside SoftHSM2 signs a kit (pkcs11: URI) that a site imports with the exported public key; the private key is never readable', async () => {
  const module = '/usr/lib/softhsm/libsofthsm2.so';
  const hsm = path.join(fx.dir, 'softhsm');
  await run('mkdir', ['-p', path.join(hsm, 'tokens')]);
  await writeFile(path.join(hsm, 'softhsm2.conf'), `directories.tokendir = ${path.join(hsm, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  // SoftHSM2 finds its token directory by this variable; the pkcs11-tool children inherit it.
  process.env.SOFTHSM2_CONF = path.join(hsm, 'softhsm2.conf');
  const tool = (args: string[]) => run('pkcs11-tool', ['--module', module, '--token-label', 'stella-kit', ...args]);
  await run('softhsm2-util', ['--init-token', '--free', '--label', 'stella-kit', '--so-pin', '10203040', '--pin', '1234']);
  await tool(['--login', '--pin', '1234', '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'kit-1', '--id', '01']);
  const pubDer = path.join(hsm, 'kit-1.pub.der');
  await tool(['--read-object', '--type', 'pubkey', '--label', 'kit-1', '-o', pubDer]);
  const pub = path.join(hsm, 'kit-1.pub');
  await run('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', pubDer, '-out', pub]);

  const uri = `pkcs11:token=stella-kit;object=kit-1?module-path=${module}&pin-value=1234`;
  const name = 'stella-ouk-2026-11-25.tar.gz';
  const file = await kit(`hsm-${name}`, '2026-11-25', uri);
  // cosign's format: openssl checks it with the exported public key.
  await writeFile(`${file}.sig.der`, Buffer.from(await readFile(`${file}.sig`, 'utf8'), 'base64'));
  assert.match((await run('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', `${file}.sig.der`, file])).stdout, /Verified OK/);
  const p = await putBundle(fx, file, name);
  await registerImport(fx, p);
  const ctx = stageContext(fx, { config: { bucket: fx.s3.bucket, trustedKeys: [pub] }, trustedKeys: () => loadTrustedKeys([pub]) });
  assert.equal((await runStages(p, ctx)).version, '2026-11-25');

  // The token holds it CKA_SENSITIVE and never CKA_EXTRACTABLE: no PKCS#11 call returns its value.
  const listed = (await tool(['--login', '--pin', '1234', '--list-objects', '--type', 'privkey'])).stdout;
  assert.match(listed, /sensitive, always sensitive, never extractable/);
  await tool(['--login', '--pin', '1234', '--read-object', '--type', 'privkey', '--label', 'kit-1', '-o', path.join(hsm, 'stolen.der')]).catch(() => undefined);
  await assert.rejects(readFile(path.join(hsm, 'stolen.der')), 'nothing of the private key was written');
  // A wrong PIN is the operator's KEY_INVALID, and the PIN is not in the message.
  await assert.rejects(writeSignatureFiles(file, [uri.replace('pin-value=1234', 'pin-value=9999')]), (e: Error & { code?: string }) => !/9999/.test(e.message) && /PKCS#11 module refused/.test(e.message));
});
