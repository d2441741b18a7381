/**
 * Keys and signatures with real crypto and the real tools: keys from
 * generateKeyPair / `stella ouk keygen`, `.sig` files checked by the openssl
 * binary, `.sigstore.json` checked by @sigstore/verify offline.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { bundleFromJSON } from '@sigstore/bundle';
import { VerificationError, Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { OukError } from '../lib/errors.ts';
import {
  SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
  buildSigstoreBundleJson,
  createBlobVerifier,
  generateKeyPair,
  loadPrivateKey,
  loadTrustedKeys,
  parseSignature,
  parseSigstoreBundle,
  verifyBlobStream,
  verifySigstoreBundle,
  verifySigstoreBundleFile,
  writeSignatureFiles,
  type TrustedKey,
} from '../signing/index.ts';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stella = path.join(repoRoot, 'bin', 'stella.js');

let dir: string;
let keyA: { key: string; pub: string };
let keyB: { key: string; pub: string };
let file: string;

async function writePair(name: string, password?: string): Promise<{ key: string; pub: string }> {
  const { privateKeyPem, publicKeyPem } = await generateKeyPair(password);
  const key = path.join(dir, `${name}.key`);
  const pub = path.join(dir, `${name}.pub`);
  await writeFile(key, privateKeyPem, { mode: 0o600 });
  await writeFile(pub, publicKeyPem);
  return { key, pub };
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string, re?: RegExp): Promise<OukError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OukError, `expected OukError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (re) assert.match(err.message, re);
  return err;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stella-signing-'));
  keyA = await writePair('a');
  keyB = await writePair('b');
  file = path.join(dir, 'payload.bin');
  // ~3 MB of varied bytes: several stream chunks.
  const block = createHash('sha512').update('stella').digest();
  const parts: Buffer[] = [];
  for (let i = 0; i < 50_000; i++) parts.push(Buffer.concat([block, Buffer.from(String(i))]));
  await writeFile(file, Buffer.concat(parts));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('keys', () => {
  test('a plain pair is PKCS#8 / SPKI PEM on P-256 and loads back', async () => {
    const { privateKeyPem, publicKeyPem } = await generateKeyPair();
    assert.match(privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    const k = await loadPrivateKey(keyA.key);
    assert.equal((k as KeyObject).asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const { stdout } = await run('openssl', ['pkey', '-in', keyA.key, '-noout', '-text']);
    assert.match(stdout, /NIST CURVE: P-256|prime256v1/);
  });

  test('an encrypted pair is encrypted PKCS#8 with aes-256-cbc; the wrong or a missing password is KEY_INVALID', async () => {
    const enc = await writePair('enc', 'correct horse');
    const pem = await readFile(enc.key, 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    const { stdout } = await run('openssl', ['asn1parse', '-in', enc.key]);
    assert.match(stdout, /aes-256-cbc/);
    // openssl decrypts it with the password: a standard format.
    await run('openssl', ['pkey', '-in', enc.key, '-passin', 'pass:correct horse', '-noout']);
    const k = await loadPrivateKey(enc.key, 'correct horse');
    assert.equal((k as KeyObject).asymmetricKeyDetails?.namedCurve, 'prime256v1');
    await rejectsWith(loadPrivateKey(enc.key, 'wrong'), 'KEY_INVALID', /wrong password/);
    await rejectsWith(loadPrivateKey(enc.key), 'KEY_INVALID', /STELLA_KEY_PASSWORD/);
  });

  test('unreadable, non-P-256 and garbage keys are KEY_INVALID', async () => {
    await rejectsWith(loadPrivateKey(path.join(dir, 'nope.key')), 'KEY_INVALID', /ENOENT/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaKey = path.join(dir, 'rsa.key');
    const rsaPub = path.join(dir, 'rsa.pub');
    await writeFile(rsaKey, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(rsaPub, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    await rejectsWith(loadPrivateKey(rsaKey), 'KEY_INVALID', /not ECDSA P-256/);
    await rejectsWith(loadTrustedKeys([rsaPub]), 'KEY_INVALID', /not ECDSA P-256/);
    const junk = path.join(dir, 'junk.pub');
    await writeFile(junk, 'hello\n');
    await rejectsWith(loadTrustedKeys([junk]), 'KEY_INVALID', /not a PEM public key/);
    await rejectsWith(loadTrustedKeys([keyA.key]), 'KEY_INVALID', /is a private key/);
    await rejectsWith(loadTrustedKeys([path.join(dir, 'missing.pub')]), 'KEY_INVALID', /cannot read/);
    await rejectsWith(loadTrustedKeys([]), 'KEY_NOT_TRUSTED', /OUK_TRUSTED_KEYS/);
  });

  test('the hint is base64 SHA-256 of the SPKI DER (as openssl computes it)', async () => {
    const [k] = await loadTrustedKeys([keyA.pub]);
    const der = path.join(dir, 'a.pub.der');
    await run('openssl', ['pkey', '-pubin', '-in', keyA.pub, '-outform', 'DER', '-out', der]);
    const expected = createHash('sha256').update(await readFile(der)).digest('base64');
    assert.equal(k.hint, expected);
  });

  test('stella ouk keygen writes cosign.key 0600 and cosign.pub, refuses to overwrite, --force replaces', async () => {
    const out = path.join(dir, 'keygen');
    const env = { ...process.env, STELLA_KEY_PASSWORD: 's3cret' };
    await run(process.execPath, [stella, 'ouk', 'keygen', '--out-dir', out], { env });
    const key = path.join(out, 'cosign.key');
    const pub = path.join(out, 'cosign.pub');
    assert.equal((await stat(key)).mode & 0o777, 0o600);
    assert.match(await readFile(key, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    assert.match(await readFile(pub, 'utf8'), /BEGIN PUBLIC KEY/);
    await loadPrivateKey(key, 's3cret');
    const before = await readFile(key, 'utf8');
    const again = await run(process.execPath, [stella, 'ouk', 'keygen', '--out-dir', out], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(again.code, 42);
    assert.match(again.stderr, /^error\[OUTPUT_EXISTS\]: .*--force/);
    assert.equal(await readFile(key, 'utf8'), before, 'the existing key is untouched');
    const plainEnv = { ...process.env };
    delete plainEnv.STELLA_KEY_PASSWORD;
    await run(process.execPath, [stella, 'ouk', 'keygen', '--out-dir', out, '--force'], { env: plainEnv });
    assert.match(await readFile(key, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    assert.equal((await stat(key)).mode & 0o777, 0o600);
  });
});

describe('.sig', () => {
  let sha256: string;
  let sigPath: string;
  let keysA: TrustedKey[];
  let keysB: TrustedKey[];

  before(async () => {
    ({ sha256, sigPath } = await writeSignatureFiles(file, keyA.key));
    keysA = await loadTrustedKeys([keyA.pub]);
    keysB = await loadTrustedKeys([keyB.pub]);
  });

  test('is base64 DER with no trailing newline, and openssl dgst -verify accepts it', async () => {
    assert.equal(sha256, createHash('sha256').update(await readFile(file)).digest('hex'));
    const text = await readFile(sigPath, 'utf8');
    assert.match(text, /^[A-Za-z0-9+/]+={0,2}$/);
    const der = path.join(dir, 'payload.sig.der');
    await writeFile(der, Buffer.from(text, 'base64'));
    const ok = await run('openssl', ['dgst', '-sha256', '-verify', keyA.pub, '-signature', der, file]);
    assert.equal(ok.stdout.trim(), 'Verified OK');
    const bad = await run('openssl', ['dgst', '-sha256', '-verify', keyB.pub, '-signature', der, file]).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    assert.notEqual(bad, 0, 'openssl rejects it for another key');
  });

  test('a signature made by openssl verifies here (both directions)', async () => {
    const der = path.join(dir, 'openssl.sig.der');
    await run('openssl', ['dgst', '-sha256', '-sign', keyA.key, '-out', der, file]);
    const r = await verifyBlobStream(createReadStream(file), parseSignature((await readFile(der)).toString('base64')), keysA);
    assert.equal(r.sha256, sha256);
    assert.equal(r.key.path, keyA.pub);
  });

  test('the streaming verifier picks the key that verifies, in any chunking, and refuses others', async () => {
    const sig = parseSignature(await readFile(sigPath));
    const data = await readFile(file);
    const v = createBlobVerifier(sig, [...keysB, ...keysA]);
    for (let i = 0; i < data.length; i += 7777) v.update(data.subarray(i, i + 7777));
    const r = v.finish();
    assert.equal(r.key.path, keyA.pub);
    assert.equal(r.size, data.length);
    await rejectsWith(verifyBlobStream(createReadStream(file), sig, keysB), 'SIGNATURE_MISMATCH', /file corrupted or not signed by this key — re-download both the tarball and its \.sig/);
    const flipped = Buffer.from(data);
    flipped[12345] ^= 0x01;
    await rejectsWith(verifyBlobStream(Readable.from([flipped]), sig, keysA), 'SIGNATURE_MISMATCH');
  });

  test('parseSignature tolerates whitespace and refuses what is not base64 DER ECDSA', async () => {
    const text = await readFile(sigPath, 'utf8');
    const der = parseSignature(text);
    assert.deepEqual(parseSignature(`  ${text.slice(0, 10)}\n${text.slice(10)}\n`), der);
    for (const bad of ['', 'not base64!!', 'AAAA', Buffer.concat([der, Buffer.from([0])]).toString('base64'), Buffer.from('hello world, not a signature').toString('base64')]) {
      await rejectsWith(() => parseSignature(bad), 'SIGNATURE_MALFORMED', /garbled/);
    }
    // DER that is not strict, or integers no P-256 signature holds
    const seq = (...ints: number[][]): string => {
      const body = ints.flatMap((i) => [0x02, i.length, ...i]);
      return Buffer.from([0x30, body.length, ...body]).toString('base64');
    };
    assert.deepEqual(parseSignature(seq([1], [2])), Buffer.from([0x30, 6, 2, 1, 1, 2, 1, 2]), 'small r and s in strict DER are a signature');
    for (const bad of [seq([0], [1]), seq([1], [0x80]), seq([1], [0, 1]), seq([1]), Buffer.from([0x30, 0x81, 6, 2, 1, 1, 2, 1, 1]).toString('base64'), seq([0, ...Buffer.alloc(32, 0xff)], [1])]) {
      await rejectsWith(() => parseSignature(bad), 'SIGNATURE_MALFORMED', /garbled: its DER does not decode as an ECDSA P-256 signature/);
    }
  });
});

describe('.sigstore.json', () => {
  let sha256: string;
  let sigstorePath: string;
  let keysA: TrustedKey[];
  let keysB: TrustedKey[];

  before(async () => {
    const w = await writeSignatureFiles(file, keyA.key);
    sha256 = w.sha256;
    sigstorePath = w.sigstorePath!;
    keysA = await loadTrustedKeys([keyA.pub]);
    keysB = await loadTrustedKeys([keyB.pub]);
  });

  test('is a v0.3 message-signature bundle with the key hint and no tlog entries', async () => {
    const json = JSON.parse(await readFile(sigstorePath, 'utf8')) as {
      mediaType: string;
      verificationMaterial: { publicKey: { hint: string }; tlogEntries: unknown[] };
      messageSignature: { messageDigest: { algorithm: string; digest: string }; signature: string };
    };
    assert.equal(json.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.equal(json.mediaType, SIGSTORE_BUNDLE_V03_MEDIA_TYPE);
    assert.equal(json.verificationMaterial.publicKey.hint, keysA[0].hint);
    assert.deepEqual(json.verificationMaterial.tlogEntries, []);
    assert.equal(json.messageSignature.messageDigest.algorithm, 'SHA2_256');
    assert.equal(Buffer.from(json.messageSignature.messageDigest.digest, 'base64').toString('hex'), sha256);
    assert.equal(json.messageSignature.signature, await readFile(`${file}.sig`, 'utf8'));
  });

  test('@sigstore/verify accepts it offline with the trusted key, and rejects it for another key', async () => {
    const bundle = bundleFromJSON(JSON.parse(await readFile(sigstorePath, 'utf8')));
    const artifact = await readFile(file); // small test file: the library's own path needs the bytes
    const trustFor = (k: TrustedKey) =>
      toTrustMaterial({ mediaType: '', tlogs: [], ctlogs: [], certificateAuthorities: [], timestampAuthorities: [] }, (hint: string) => {
        if (hint !== keysA[0].hint) throw new VerificationError({ code: 'PUBLIC_KEY_ERROR', message: `key not found: ${hint}` });
        return { publicKey: k.key as KeyObject, validFor: () => true };
      });
    const opts = { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 };
    const signer = new Verifier(trustFor(keysA[0]), opts).verify(toSignedEntity(bundle, artifact));
    assert.ok(signer.key.equals(keysA[0].key as KeyObject));
    // The finder hands back key B for A's hint: the signature must not verify.
    assert.throws(() => new Verifier(trustFor(keysB[0]), opts).verify(toSignedEntity(bundle, artifact)), (e: unknown) => e instanceof VerificationError && e.code === 'SIGNATURE_ERROR');
  });

  test('verifySigstoreBundleFile checks it from the digest: right key passes; other key, other file, other signature fail', async () => {
    const ok = await verifySigstoreBundleFile(sigstorePath, sha256, keysA);
    assert.equal(ok.key.path, keyA.pub);
    await rejectsWith(verifySigstoreBundleFile(sigstorePath, sha256, keysB), 'KEY_NOT_TRUSTED', /does not trust/);
    await rejectsWith(verifySigstoreBundleFile(sigstorePath, 'ab'.repeat(32), keysA), 'SIGNATURE_MISMATCH', /another file/);
    // A well-formed signature by the same key over other bytes, pasted into the bundle.
    const other = cryptoSign('sha256', Buffer.from('other bytes'), createPrivateKey(await readFile(keyA.key)));
    const forged = parseSigstoreBundle(buildSigstoreBundleJson(sha256, other, keysA[0].hint));
    await rejectsWith(async () => verifySigstoreBundle(forged, sha256, keysA), 'SIGNATURE_MISMATCH', /re-download/);
    // Key B's hint with key B trusted, but the signature is A's: fails on the signature.
    const relabelled = parseSigstoreBundle(buildSigstoreBundleJson(sha256, parseSignature(await readFile(`${file}.sig`)), keysB[0].hint));
    await rejectsWith(async () => verifySigstoreBundle(relabelled, sha256, keysB), 'SIGNATURE_MISMATCH');
    await rejectsWith(verifySigstoreBundleFile(path.join(dir, 'none.sigstore.json'), sha256, keysA), 'SIGNATURE_MISSING');
  });

  test('a high-S signature (valid for OpenSSL and cosign) verifies both ways', async () => {
    // ECDSA (r, s) and (r, n - s) are both valid; OpenSSL does not normalise s, so neither may we.
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const der = parseSignature(await readFile(`${file}.sig`));
    const rLen = der[3];
    const r = der.subarray(4, 4 + rLen);
    const s = BigInt('0x' + der.subarray(6 + rLen).toString('hex'));
    const flip = (n - s).toString(16).padStart(64, '0');
    const sBytes = Buffer.from(flip, 'hex');
    const sInt = sBytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), sBytes]) : sBytes.subarray(sBytes.findIndex((b) => b !== 0));
    const body = Buffer.concat([Buffer.from([2, r.length]), r, Buffer.from([2, sInt.length]), sInt]);
    const flipped = Buffer.concat([Buffer.from([0x30, body.length]), body]);
    assert.notDeepEqual(flipped, der);
    const viaNode = await verifyBlobStream(createReadStream(file), parseSignature(flipped.toString('base64')), keysA);
    assert.equal(viaNode.sha256, sha256);
    const b = parseSigstoreBundle(buildSigstoreBundleJson(sha256, flipped, keysA[0].hint));
    assert.equal(verifySigstoreBundle(b, sha256, keysA).key.path, keyA.pub);
  });

  test('garbled bundles are SIGNATURE_MALFORMED', async () => {
    const pub = createPublicKey(await readFile(keyA.pub));
    assert.ok(pub);
    await rejectsWith(async () => parseSigstoreBundle('{nope'), 'SIGNATURE_MALFORMED', /not JSON/);
    await rejectsWith(async () => parseSigstoreBundle('{"mediaType":"x"}'), 'SIGNATURE_MALFORMED');
    const json = JSON.parse(await readFile(sigstorePath, 'utf8')) as { mediaType: string };
    json.mediaType = 'application/vnd.example+json';
    await rejectsWith(async () => parseSigstoreBundle(JSON.stringify(json)), 'SIGNATURE_MALFORMED', /mediaType|media type/);
  });
});
