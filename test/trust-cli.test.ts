/**
 * The root of trust and the release attestation through the real CLI
 * (bin/stella.js as a process): `stella trust init|rotate|show` write and
 * describe roots, `stella ouk build --key … --root …` signs kits with several
 * keys and carries newer roots, `stella ouk verify --root` walks the carried
 * chain, counts the kit role's threshold and checks the attestation. Kits are
 * built from real feed records (../shared/feeds). What the CLI cannot make (a
 * root that has already expired, a kit signed by a key a root later dropped,
 * a root forged by somebody else's keys) is made with the library, then
 * verified through the CLI. The DSSE envelope is checked independently of
 * Stella's code: the PAE by hand and with @sigstore/core, each signature with
 * node:crypto, and one signature as a Sigstore bundle with @sigstore/verify.
 *
 * Clock: roots expire relative to the clock every process of the test shares
 * (faketime moves them all); nothing depends on today's date.
 */
import { strict as assert } from 'node:assert';
import { createHash, createPrivateKey, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import fs from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { dsse } from '@sigstore/core';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { canonicalize } from '@tufjs/canonical-json';
import { Metadata, MetadataKind } from '@tufjs/models';
import { EXIT_CODES, type ErrorCode } from '../lib/errors.ts';
import { generateKeyPair, writeSignatureFiles } from '../signing/index.ts';
import { createRoot, rotateRoot, serializeRoot } from '../signing/root/index.ts';
import { childBaseEnv, runStella, sharedDir, tmpDir, type CliRun } from './helpers/services.ts';

interface Pair {
  key: string;
  pub: string;
  keyid: string;
}

let dir: string;
let feeds: string;
const k: Record<'r1' | 'r2' | 'r3' | 'rx' | 'k1' | 'k2' | 'k3', Pair> = {} as never;
const roots: Record<'v1' | 'v2' | 'v3' | 'forged2' | 'expired1' | 'next2', string> = {} as never;
const kits: Record<'a' | 'one' | 'kit2' | 'kit3' | 'gap' | 'forged' | 'exp1' | 'exp2', string> = {} as never;

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => childBaseEnv(extra);
const stella = (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> => runStella(args, { cwd: dir, env: env(extra) });

/** TUF's key id computed here, by hand: canonical JSON (sorted keys, no whitespace, only " and \ escaped — a PEM has neither). */
function tufKeyid(publicPem: string): string {
  return sha256(`{"keytype":"ecdsa","keyval":{"public":"${publicPem}"},"scheme":"ecdsa-sha2-nistp256"}`);
}

async function pair(name: string): Promise<Pair> {
  const { privateKeyPem, publicKeyPem } = await generateKeyPair();
  const key = path.join(dir, 'keys', `${name}.key`);
  const pub = path.join(dir, 'keys', `${name}.pub`);
  await writeFile(key, privateKeyPem, { mode: 0o600 });
  await writeFile(pub, publicKeyPem);
  return { key, pub, keyid: tufKeyid(publicKeyPem) };
}

/** Exactly one `error[CODE]: …` line on stderr and CODE's exit status. */
function assertFails(r: CliRun, code: ErrorCode, message?: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, new RegExp(`^error\\[${code}\\]: `), r.stderr);
  if (message) assert.match(lines[0]!, message);
  assert.equal(r.code, EXIT_CODES[code], `exit code for ${code}; stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stdout, /Verified OK/);
}

function assertOk(r: CliRun): void {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

async function build(name: string, keys: Pair[], carried: string[] = [], version = '2026-03-01'): Promise<string> {
  const out = path.join(dir, name, `stella-ouk-${version}.tar.gz`);
  const r = await stella(['ouk', 'build', '--feeds', feeds, ...keys.flatMap((x) => ['--key', x.key]), ...carried.flatMap((x) => ['--root', x]), '--out', out, '--version', version]);
  assertOk(r);
  return out;
}

/** A copy of a kit (and the files beside it that `with` names) in its own directory. */
async function copyKit(file: string, name: string, with_: string[]): Promise<string> {
  const sub = path.join(dir, name);
  await mkdir(sub, { recursive: true });
  const out = path.join(sub, path.basename(file));
  await copyFile(file, out);
  for (const ext of with_) await copyFile(`${file}${ext}`, `${out}${ext}`);
  return out;
}

const FEED_FILES = ['osv/Go/GO-2020-0001.json', 'osv/Go/GO-2020-0006.json', 'osv/Go/GO-2020-0008.json'];

before(async () => {
  dir = tmpDir('trust-cli');
  await mkdir(path.join(dir, 'keys'));
  feeds = path.join(dir, 'feeds');
  const ghsa = (await readdir(path.join(sharedDir, 'feeds', 'ghsa'))).filter((f) => f.endsWith('.json')).sort().slice(0, 4).map((f) => `ghsa/${f}`);
  for (const rel of [...FEED_FILES, ...ghsa]) {
    await mkdir(path.dirname(path.join(feeds, rel)), { recursive: true });
    fs.symlinkSync(path.join(sharedDir, 'feeds', rel), path.join(feeds, rel));
  }
  for (const name of ['r1', 'r2', 'r3', 'rx', 'k1', 'k2', 'k3'] as const) k[name] = await pair(name);

  // v1: root keys r1 r2 (2 of 2), kit keys k1 k2 k3 (2 of 3)
  roots.v1 = path.join(dir, 'root.1.json');
  assertOk(
    await stella(['trust', 'init', '--out', roots.v1, '--root-key', k.r1.pub, '--root-key', k.r2.pub, '--root-threshold', '2',
      '--kit-key', k.k1.pub, '--kit-key', k.k2.pub, '--kit-key', k.k3.pub, '--kit-threshold', '2', '--sign', k.r1.key, '--sign', k.r2.key]),
  );
  // v2: k1 revoked (kit keys k2 k3, threshold kept at 2)
  roots.v2 = path.join(dir, 'root.2.json');
  assertOk(await stella(['trust', 'rotate', '--root', roots.v1, '--out', roots.v2, '--kit-key', k.k2.pub, '--kit-key', k.k3.pub, '--sign', k.r1.key, '--sign', k.r2.key]));
  // v3: root keys r2 r3 (r1 retired): signed by a threshold of v2's root keys (r1 r2) and of its own (r2 r3)
  roots.v3 = path.join(dir, 'root.3.json');
  assertOk(await stella(['trust', 'rotate', '--root', roots.v2, '--out', roots.v3, '--root-key', k.r2.pub, '--root-key', k.r3.pub, '--sign', k.r1.key, '--sign', k.r2.key, '--sign', k.r3.key]));

  // A "v2" somebody made with their own root key rx: self-signed, never signed by v1's root keys.
  const now = new Date();
  const pub = (p: Pair) => createPublicKey(fs.readFileSync(p.pub));
  const priv = (p: Pair) => createPrivateKey(fs.readFileSync(p.key));
  const forged1 = createRoot({ root: { keys: [pub(k.rx)], threshold: 1 }, kit: { keys: [pub(k.k2), pub(k.k3)], threshold: 2 }, expires: new Date(now.getTime() + 30 * 86_400_000), signers: [priv(k.rx)] });
  roots.forged2 = path.join(dir, 'forged.2.json');
  await writeFile(roots.forged2, serializeRoot(rotateRoot(forged1, { expires: new Date(now.getTime() + 30 * 86_400_000), signers: [priv(k.rx)] })));
  // A root that expired yesterday, and its successor valid for 30 days.
  const expired1 = createRoot({ root: { keys: [pub(k.r1)], threshold: 1 }, kit: { keys: [pub(k.k2), pub(k.k3)], threshold: 2 }, expires: new Date(now.getTime() - 86_400_000), signers: [priv(k.r1)] });
  roots.expired1 = path.join(dir, 'expired.1.json');
  await writeFile(roots.expired1, serializeRoot(expired1));
  roots.next2 = path.join(dir, 'next.2.json');
  await writeFile(roots.next2, serializeRoot(rotateRoot(expired1, { expires: new Date(now.getTime() + 30 * 86_400_000), signers: [priv(k.r1)] })));

  kits.a = await build('a', [k.k1, k.k2]);
  kits.one = await build('one', [k.k1]);
  kits.kit2 = await build('kit2', [k.k2, k.k3], [roots.v2], '2026-03-02');
  kits.kit3 = await build('kit3', [k.k2, k.k3], [roots.v2, roots.v3], '2026-03-03');
  kits.gap = await build('gap', [k.k2, k.k3], [roots.v3]);
  kits.forged = await build('forged', [k.k2, k.k3], [roots.forged2]);
  kits.exp1 = await build('exp1', [k.k2, k.k3]);
  kits.exp2 = await build('exp2', [k.k2, k.k3], [roots.next2]);
});

describe('stella trust', () => {
  test('init writes TUF root v1 that @tufjs/models itself verifies; key ids are the canonical hash; show prints roles, keys and signers', async () => {
    const doc = JSON.parse(await readFile(roots.v1, 'utf8'));
    assert.equal(doc.signed._type, 'root');
    assert.equal(doc.signed.version, 1);
    assert.match(doc.signed.spec_version, /^1\.0\./);
    assert.equal(doc.signed.consistent_snapshot, false);
    assert.deepEqual(doc.signed.roles.root, { keyids: [k.r1.keyid, k.r2.keyid], threshold: 2 });
    assert.deepEqual(doc.signed.roles.kit, { keyids: [k.k1.keyid, k.k2.keyid, k.k3.keyid], threshold: 2 });
    for (const p of [k.r1, k.r2, k.k1]) {
      assert.deepEqual(doc.signed.keys[p.keyid], { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: await readFile(p.pub, 'utf8') } });
    }
    // The library's own threshold check, and each signature by hand over the canonical form.
    const md = Metadata.fromJSON(MetadataKind.Root, doc);
    md.verifyDelegate('root', md);
    const canonical = Buffer.from(canonicalize(doc.signed));
    for (const s of doc.signatures as { keyid: string; sig: string }[]) {
      const p = [k.r1, k.r2].find((x) => x.keyid === s.keyid)!;
      assert.ok(cryptoVerify('sha256', canonical, createPublicKey(await readFile(p.pub)), Buffer.from(s.sig, 'hex')), `signature by ${s.keyid}`);
    }

    const shown = await stella(['trust', 'show', roots.v1]);
    assertOk(shown);
    assert.match(shown.stdout, /^root v1 \(TUF spec 1\.0\.\d+\)/);
    assert.match(shown.stdout, new RegExp(`role kit +threshold 2 of 3: ${k.k1.keyid}, ${k.k2.keyid}, ${k.k3.keyid}`));
    assert.match(shown.stdout, new RegExp(`signatures: 2 valid by its root keys \\(threshold 2\\)`));
    const json = JSON.parse((await stella(['trust', 'show', roots.v1, '--json'])).stdout);
    assert.equal(json.version, 1);
    assert.equal(json.expired, false);
    assert.deepEqual(json.signatures, { valid: [k.r1.keyid, k.r2.keyid], threshold: 2, selfSigned: true });
    assert.equal(json.sha256, sha256(await readFile(roots.v1)));
  });

  test('init refuses what a site would refuse: an unreachable threshold, a kit key signing, too few root signatures, an existing file', async () => {
    const out = path.join(dir, 'refused.json');
    const base = ['trust', 'init', '--out', out, '--root-key', k.r1.pub, '--root-key', k.r2.pub, '--kit-key', k.k1.pub];
    assertFails(await stella([...base, '--root-threshold', '3', '--sign', k.r1.key]), 'USAGE', /threshold of 3 with 2 root key/);
    assertFails(await stella([...base, '--sign', k.k1.key]), 'USAGE', /is not a root key of v1/);
    assertFails(await stella([...base, '--root-threshold', '2', '--sign', k.r1.key]), 'SIGNATURE_THRESHOLD', /signed by 1 of 2 root key\(s\) of root v1 \(threshold 2\)/);
    assertFails(await stella([...base, '--root-key', k.r1.pub, '--sign', k.r1.key]), 'USAGE', /same root key is given twice/);
    assert.equal(fs.existsSync(out), false, 'nothing written');
    assertFails(await stella(['trust', 'init', '--out', roots.v1, '--root-key', k.r1.pub, '--kit-key', k.k1.pub, '--sign', k.r1.key]), 'OUTPUT_EXISTS');
  });

  test('rotate: version + 1, dropped kit key reported as revoked; needs a threshold of the OLD and of the NEW root keys', async () => {
    const v2 = JSON.parse(await readFile(roots.v2, 'utf8'));
    assert.equal(v2.signed.version, 2);
    assert.deepEqual(v2.signed.roles.kit.keyids, [k.k2.keyid, k.k3.keyid]);
    assert.deepEqual(v2.signed.roles.root, { keyids: [k.r1.keyid, k.r2.keyid], threshold: 2 });
    const v3 = JSON.parse(await readFile(roots.v3, 'utf8'));
    assert.deepEqual(v3.signed.roles.root, { keyids: [k.r2.keyid, k.r3.keyid], threshold: 2 });
    assert.deepEqual(new Set(v3.signatures.map((s: { keyid: string }) => s.keyid)), new Set([k.r1.keyid, k.r2.keyid, k.r3.keyid]));
    // @tufjs/models: v2's root role accepts v3, and v3 accepts itself.
    const md2 = Metadata.fromJSON(MetadataKind.Root, v2);
    const md3 = Metadata.fromJSON(MetadataKind.Root, v3);
    md2.verifyDelegate('root', md3);
    md3.verifyDelegate('root', md3);

    const out = path.join(dir, 'rot-refused.json');
    const args = ['trust', 'rotate', '--root', roots.v2, '--out', out, '--root-key', k.r2.pub, '--root-key', k.r3.pub];
    assertFails(await stella([...args, '--sign', k.r2.key, '--sign', k.r3.key]), 'SIGNATURE_THRESHOLD', /root v3 is signed by 1 of 2 root key\(s\) of root v2 \(threshold 2\), short of root v2's root threshold/);
    assertFails(await stella([...args, '--sign', k.r1.key, '--sign', k.r2.key]), 'SIGNATURE_THRESHOLD', /root v3 is signed by 1 of 2 root key\(s\) of root v3 \(threshold 2\), short of its own root threshold/);
    assert.equal(fs.existsSync(out), false);
    const r = await stella(['trust', 'rotate', '--root', roots.v1, '--out', path.join(dir, 'rot-ok.json'), '--kit-key', k.k2.pub, '--sign', k.r1.key, '--sign', k.r2.key, '--kit-threshold', '1']);
    assertOk(r);
    assert.match(r.stdout, new RegExp(`revoked kit keys \\(worth nothing from v2 on\\): ${k.k1.keyid}, ${k.k3.keyid}`));
  });

  test('show of a root not signed by its own threshold: described, then ROOT_INVALID', async () => {
    const doc = JSON.parse(await readFile(roots.v1, 'utf8'));
    doc.signatures = doc.signatures.slice(0, 1);
    const file = path.join(dir, 'half-signed.json');
    await writeFile(file, JSON.stringify(doc));
    const r = await stella(['trust', 'show', file]);
    assert.match(r.stdout, /signatures: 1 valid by its root keys \(threshold 2\)/);
    assertFails({ ...r, stdout: '' }, 'ROOT_INVALID', /short of its own root threshold/);
  });
});

describe('stella ouk build with several keys and carried roots', () => {
  test('every key signs: FILE.sigs.json by key id (each entry cosign-format), FILE.sig by the first; roots carried as trust/root.<N>.json', async () => {
    const tarball = await readFile(kits.kit3);
    const sigs = JSON.parse(await readFile(`${kits.kit3}.sigs.json`, 'utf8'));
    assert.equal(sigs.sha256, sha256(tarball));
    assert.deepEqual(sigs.signatures.map((s: { keyid: string }) => s.keyid), [k.k2.keyid, k.k3.keyid]);
    for (const s of sigs.signatures as { keyid: string; sig: string }[]) {
      const p = [k.k2, k.k3].find((x) => x.keyid === s.keyid)!;
      assert.ok(cryptoVerify('sha256', tarball, createPublicKey(await readFile(p.pub)), Buffer.from(s.sig, 'base64')));
    }
    assert.ok(cryptoVerify('sha256', tarball, createPublicKey(await readFile(k.k2.pub)), Buffer.from(await readFile(`${kits.kit3}.sig`, 'utf8'), 'base64')));
    const listed = await runTar(['-tzf', kits.kit3]);
    assert.deepEqual(listed.slice(0, 3), ['manifest.json', 'trust/root.2.json', 'trust/root.3.json']);
    const x = path.join(dir, 'x-kit3');
    await mkdir(x);
    await runTar(['-xzf', kits.kit3, '-C', x]);
    assert.deepEqual(await readFile(path.join(x, 'trust/root.3.json')), await readFile(roots.v3), 'the root as its signers wrote it');
    const manifest = JSON.parse(await readFile(path.join(x, 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.members.filter((m: { role: string }) => m.role === 'trust').map((m: { path: string }) => m.path), ['trust/root.2.json', 'trust/root.3.json']);
  });

  test('a build whose keys do not meet the newest carried root\'s kit threshold is refused, nothing written', async () => {
    const out = path.join(dir, 'refused-build', 'k.tar.gz');
    const r = await stella(['ouk', 'build', '--feeds', feeds, '--key', k.k1.key, '--key', k.k2.key, '--root', roots.v2, '--out', out, '--version', '2026-03-01']);
    assertFails(r, 'SIGNATURE_THRESHOLD', /1 of the kit keys of root v2 .* which requires 2/);
    assert.deepEqual(fs.existsSync(path.dirname(out)) ? await readdir(path.dirname(out)) : [], []);
    assertFails(await stella(['ouk', 'build', '--feeds', feeds, '--key', k.k2.key, '--key', k.k2.key, '--out', out]), 'USAGE', /are the same key/);
  });
});

describe('stella ouk verify --root: chain, threshold, revocation, expiry', () => {
  test('rotation v1 → v2 → v3 carried in kits is accepted from the pinned v1 (and from v2, v3)', async () => {
    const r3 = await stella(['ouk', 'verify', kits.kit3, '--root', roots.v1]);
    assertOk(r3);
    assert.match(r3.stdout, /^Verified OK\nsha256:[0-9a-f]{64}\n/);
    assert.match(r3.stdout, /trust: +root v3 \(.*root\.1\.json, reached v1 → v2 → v3 through the roots the kit carries\)/);
    assert.match(r3.stdout, new RegExp(`signed by: 2 kit key\\(s\\) of root v3 \\(threshold 2\\): ${k.k2.keyid.slice(0, 12)}…, ${k.k3.keyid.slice(0, 12)}…`));
    const r2 = await stella(['ouk', 'verify', kits.kit2, '--root', roots.v1, '--json']);
    assertOk(r2);
    const j = JSON.parse(r2.stdout);
    assert.deepEqual(j.trust.chain, [1, 2]);
    assert.deepEqual(j.carriedRoots, [2]);
    assert.deepEqual(j.signatures.keyids, [k.k2.keyid, k.k3.keyid]);
    for (const [root, chain, ignored] of [[roots.v2, [2, 3], [2]], [roots.v3, [3], [2, 3]]] as const) {
      const r = await stella(['ouk', 'verify', kits.kit3, '--root', root, '--json']);
      assertOk(r);
      assert.deepEqual(JSON.parse(r.stdout).trust.chain, chain);
      assert.deepEqual(JSON.parse(r.stdout).ignoredRoots, ignored);
    }
  });

  test('2 of 3: one kit key\'s signature is refused (SIGNATURE_THRESHOLD), two are accepted', async () => {
    assertFails(await stella(['ouk', 'verify', kits.one, '--root', roots.v1]), 'SIGNATURE_THRESHOLD', /1 valid signature\(s\) by distinct kit keys of root v1, which requires 2/);
    assertOk(await stella(['ouk', 'verify', kits.a, '--root', roots.v1]));
    // One key's signature filed under a second kit key id counts for nothing: distinct keys only.
    const file = await copyKit(kits.one, 'one-twice', ['.sig']);
    const sigs = JSON.parse(await readFile(`${kits.one}.sigs.json`, 'utf8'));
    sigs.signatures.push({ keyid: k.k2.keyid, sig: sigs.signatures[0].sig });
    await writeFile(`${file}.sigs.json`, JSON.stringify(sigs));
    assertFails(await stella(['ouk', 'verify', file, '--root', roots.v1]), 'SIGNATURE_THRESHOLD', /1 valid signature/);
  });

  test('a kit signed by a key v2 revoked is refused with KEY_REVOKED on a chain that reaches v2', async () => {
    // kit2 carries root v2; signed again (library) by k1 — revoked in v2 — and k2.
    const file = await copyKit(kits.kit2, 'revoked', []);
    await writeSignatureFiles(file, [k.k1.key, k.k2.key]);
    assertFails(await stella(['ouk', 'verify', file, '--root', roots.v1]), 'KEY_REVOKED', new RegExp(`signed by key ${k.k1.keyid.slice(0, 12)}…, which a newer root dropped \\(root v2 reached through v1 → v2\\)`));
    // The same signatures on a kit that does not take the chain to v2 are still good on v1.
    const before = await copyKit(kits.a, 'before-rotation', []);
    await writeSignatureFiles(before, [k.k1.key, k.k2.key]);
    assertOk(await stella(['ouk', 'verify', before, '--root', roots.v1]));
  });

  test('carried roots that do not chain are refused: a gap, a root signed by other keys (ROOT_INVALID)', async () => {
    assertFails(await stella(['ouk', 'verify', kits.gap, '--root', roots.v1]), 'ROOT_INVALID', /carries root v3 but not v2/);
    assertFails(await stella(['ouk', 'verify', kits.forged, '--root', roots.v1]), 'ROOT_INVALID', /root v2 is signed by 0 of 2 root key\(s\) of root v1 \(threshold 2\), short of v1's root threshold/);
  });

  test('an expired root refuses a kit (ROOT_EXPIRED) except one that carries the next root', async () => {
    assertFails(await stella(['ouk', 'verify', kits.exp1, '--root', roots.expired1]), 'ROOT_EXPIRED', /root of trust v1 .* expired at .*trust\/root\.2\.json/);
    const r = await stella(['ouk', 'verify', kits.exp2, '--root', roots.expired1, '--json']);
    assertOk(r);
    assert.deepEqual(JSON.parse(r.stdout).trust.chain, [1, 2]);
    // The expired root itself: show says so.
    assert.match((await stella(['trust', 'show', roots.expired1])).stdout, /EXPIRED: a site on this root accepts only a kit that carries the next root/);
  });

  test('OUK_TRUST_ROOT is the default trust; with OUK_TRUSTED_KEYS too, a warning and the root wins', async () => {
    assertOk(await stella(['ouk', 'verify', kits.kit3], { OUK_TRUST_ROOT: roots.v1 }));
    const both = await stella(['ouk', 'verify', kits.one], { OUK_TRUST_ROOT: roots.v1, OUK_TRUSTED_KEYS: k.k1.pub });
    assert.match(both.stderr, /^warning: OUK_TRUST_ROOT and OUK_TRUSTED_KEYS are both set/);
    assert.equal(both.code, EXIT_CODES.SIGNATURE_THRESHOLD, 'the root decides: one signature of 2 required');
    assertFails(await stella(['ouk', 'verify', kits.a, '--root', roots.v1, '--key', k.k1.pub]), 'USAGE', /give one/);
  });

  test('OUK_TRUSTED_KEYS keeps working as a one-key root: FILE.sig by one trusted key; carried roots noted, not followed', async () => {
    const r = await stella(['ouk', 'verify', kits.kit3], { OUK_TRUSTED_KEYS: k.k2.pub });
    assertOk(r);
    assert.match(r.stdout, /signed by: .*k2\.pub/);
    assert.match(r.stdout, /roots: +the kit carries root v2, v3: not followed — the trust is OUK_TRUSTED_KEYS/);
    assert.match(r.stdout, /attested: .*signed by 1 kit key\(s\) \(threshold 1\)/);
    // FILE.sig is the first key's (k2): trusting k3 alone is as before, its .sigstore.json names an untrusted key.
    assertFails(await stella(['ouk', 'verify', kits.kit3], { OUK_TRUSTED_KEYS: k.k3.pub }), 'KEY_NOT_TRUSTED');
  });
});

describe('the release attestation', () => {
  test('verify prints the attested feed snapshots', async () => {
    const r = await stella(['ouk', 'verify', kits.kit3, '--root', roots.v1]);
    assertOk(r);
    assert.match(r.stdout, /attested: .*stella-ouk-2026-03-03\.tar\.gz\.intoto\.json: in-toto statement for stella-ouk-2026-03-03\.tar\.gz, SLSA provenance v1 by https:\/\/stella-ouk\.invalid\/builder\/stella-ouk \(stella-ouk \d/);
    assert.match(r.stdout, /attested: +feed osv: snapshot \S+, 3 records from 3 files, inputs sha256:[0-9a-f]{64}, from https:\/\/osv-vulnerabilities/);
    assert.match(r.stdout, /attested: +feed ghsa: snapshot \d{4}-\d\d-\d\dT[^,]+, \d+ records from 4 files/);
  });

  test('an attestation naming another digest is refused (ATTESTATION_MISMATCH), with a root and with bare keys', async () => {
    const file = await copyKit(kits.kit3, 'other-attestation', ['.sig', '.sigs.json', '.sigstore.json']);
    await copyFile(`${kits.kit2}.intoto.json`, `${file}.intoto.json`);
    const want = sha256(await readFile(kits.kit2));
    assertFails(await stella(['ouk', 'verify', file, '--root', roots.v1]), 'ATTESTATION_MISMATCH', new RegExp(`its subject is sha256 ${want}, this tarball is sha256 ${sha256(await readFile(file))}`));
    assertFails(await stella(['ouk', 'verify', file, '--key', k.k2.pub]), 'ATTESTATION_MISMATCH');
  });

  test('an attestation signed by one kit key only is short of the threshold; a missing one is refused when required', async () => {
    const file = await copyKit(kits.a, 'att-one', ['.sig', '.sigs.json', '.sigstore.json', '.intoto.json']);
    const env_ = JSON.parse(await readFile(`${file}.intoto.json`, 'utf8'));
    env_.signatures = env_.signatures.slice(0, 1);
    await writeFile(`${file}.intoto.json`, JSON.stringify(env_));
    assertFails(await stella(['ouk', 'verify', file, '--root', roots.v1]), 'SIGNATURE_THRESHOLD', /the attestation .* has 1 valid signature/);

    const bare = await copyKit(kits.a, 'att-none', ['.sig', '.sigs.json']);
    assertOk(await stella(['ouk', 'verify', bare, '--root', roots.v1]));
    assertFails(await stella(['ouk', 'verify', bare, '--root', roots.v1, '--require-attestation']), 'SIGNATURE_MISSING', /no release attestation at .*\.intoto\.json/);
    assertFails(await stella(['ouk', 'verify', bare, '--root', roots.v1], { OUK_REQUIRE_ATTESTATION: 'true' }), 'SIGNATURE_MISSING', /OUK_REQUIRE_ATTESTATION/);
  });

  test('DSSE checked independently: PAE by hand and by @sigstore/core, signatures by node:crypto and @sigstore/verify; the statement names the tarball and every feed input', async () => {
    const tarball = await readFile(kits.kit3);
    const envelope = JSON.parse(await readFile(`${kits.kit3}.intoto.json`, 'utf8')) as { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
    assert.equal(envelope.payloadType, 'application/vnd.in-toto+json');
    const payload = Buffer.from(envelope.payload, 'base64');
    const pae = Buffer.concat([Buffer.from(`DSSEv1 28 application/vnd.in-toto+json ${payload.length} `), payload]);
    assert.deepEqual(dsse.preAuthEncoding(envelope.payloadType, payload), pae);
    assert.deepEqual(envelope.signatures.map((s) => s.keyid), [k.k2.keyid, k.k3.keyid]);
    for (const s of envelope.signatures) {
      const p = [k.k2, k.k3].find((x) => x.keyid === s.keyid)!;
      assert.ok(cryptoVerify('sha256', pae, createPublicKey(await readFile(p.pub)), Buffer.from(s.sig, 'base64')), `DSSE signature by ${s.keyid}`);
      assert.ok(!cryptoVerify('sha256', payload, createPublicKey(await readFile(p.pub)), Buffer.from(s.sig, 'base64')), 'over the PAE, not the bare payload');
    }

    // sigstore-js: the first signature as a keyed Sigstore bundle v0.3 with this DSSE envelope.
    const pem = await readFile(k.k2.pub);
    const hint = createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('base64');
    const bundle = bundleFromJSON({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
      dsseEnvelope: { payload: envelope.payload, payloadType: envelope.payloadType, signatures: [{ keyid: envelope.signatures[0]!.keyid, sig: envelope.signatures[0]!.sig }] },
    });
    const tm = toTrustMaterial(
      { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] },
      (h: string) => {
        assert.equal(h, hint);
        return { publicKey: createPublicKey(pem), validFor: () => true };
      },
    );
    new Verifier(tm, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));

    const statement = JSON.parse(payload.toString('utf8'));
    assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
    assert.deepEqual(statement.subject, [{ name: 'stella-ouk-2026-03-03.tar.gz', digest: { sha256: sha256(tarball) } }]);
    assert.equal(statement.predicateType, 'https://slsa.dev/provenance/v1');
    const def = statement.predicate.buildDefinition;
    assert.deepEqual({ version: def.externalParameters.version, kind: def.externalParameters.kind, roots: def.externalParameters.roots }, { version: '2026-03-03', kind: 'full', roots: [2, 3] });
    assert.equal(statement.predicate.runDetails.builder.id, 'https://stella-ouk.invalid/builder/stella-ouk');
    assert.match(statement.predicate.runDetails.builder.version['stella-ouk'], /^\d+\.\d+\.\d+/);
    // Each feed's input digest, recomputed here by the documented rule: "<path> <sha256>\n" per file, depth first, names in byte order.
    const x = path.join(dir, 'x-kit3-manifest');
    await mkdir(x, { recursive: true });
    await runTar(['-xzf', kits.kit3, '-C', x, 'manifest.json']);
    const manifest = JSON.parse(await readFile(path.join(x, 'manifest.json'), 'utf8'));
    assert.deepEqual(def.resolvedDependencies.map((d: { name: string }) => d.name), manifest.feeds.map((f: { name: string }) => f.name));
    for (const d of def.resolvedDependencies as { name: string; digest: { sha256: string }; annotations: { records: number; snapshot: string | null; files: number } }[]) {
      const f = manifest.feeds.find((m: { name: string }) => m.name === d.name);
      assert.equal(d.annotations.records, f.records);
      assert.equal(d.annotations.snapshot, f.snapshot);
      const files = [...FEED_FILES, ...(await readdir(path.join(feeds, 'ghsa'))).map((n) => `ghsa/${n}`)].filter((r) => r.startsWith(`${d.name}/`)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const lines = await Promise.all(files.map(async (r) => `${r.slice(d.name.length + 1)} ${sha256(await readFile(path.join(feeds, r)))}\n`));
      assert.equal(d.digest.sha256, sha256(lines.join('')), `input digest of ${d.name}`);
      assert.equal(d.annotations.files, files.length);
    }
  });
});

async function runTar(args: string[]): Promise<string[]> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) =>
    execFile('tar', args, (err, stdout) => (err ? reject(err) : resolve(stdout.split('\n').filter(Boolean)))),
  );
}
