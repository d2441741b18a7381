/**
 * The root of trust as a library (signing/root/), with an injected clock:
 * roots made and checked with real P-256 keys, the TUF rules a site relies on
 * (a step is version + 1 signed by a threshold of the old and of the new root
 * keys; thresholds count distinct keys; a root may not name a key under a
 * false id; expiry on the verifier's clock), the kit threshold's verdicts
 * (accepted, SIGNATURE_THRESHOLD, KEY_REVOKED, SIGNATURE_MISMATCH), the
 * implicit root of bare trusted keys, the bundle's rules for carried roots,
 * and the DSSE PAE against @sigstore/core and a hand-written encoding.
 * The CLI's behaviour is in trust-cli.test.ts.
 */
import { strict as assert } from 'node:assert';
import { createHash, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { dsse } from '@sigstore/core';
import { FORMAT_VERSION, parseManifest, serializeManifest, type Manifest } from '../bundle/manifest.ts';
import { OukError, type ErrorCode } from '../lib/errors.ts';
import { preAuthEncoding, readKitStatement, signEnvelope, verifyAttestation } from '../signing/attestation/index.ts';
import { keyHint, type TrustedKey } from '../signing/index.ts';
import type { KitSigner } from '../signing/kit/index.ts';
import {
  advanceTrust,
  createRoot,
  implicitTrust,
  keyidOfKey,
  parseRoot,
  pinnedTrust,
  requireKitThreshold,
  requireUnexpired,
  rotateRoot,
  serializeRoot,
  type RootMetadata,
  type SignatureCandidate,
  type TrustState,
} from '../signing/root/index.ts';

const NOW = new Date('2026-06-01T12:00:00Z');
const days = (n: number): Date => new Date(NOW.getTime() + n * 86_400_000);
const P256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const [r1, r2, r3, k1, k2, k3] = [P256(), P256(), P256(), P256(), P256(), P256()];

function throwsCode(fn: () => unknown, code: ErrorCode, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OukError, `an OukError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

function v1(expires = days(365)): RootMetadata {
  return createRoot({ root: { keys: [r1.publicKey, r2.publicKey], threshold: 2 }, kit: { keys: [k1.publicKey, k2.publicKey, k3.publicKey], threshold: 2 }, expires, signers: [r1.privateKey, r2.privateKey] });
}

const carried = (md: RootMetadata) => ({ version: md.signed.version, raw: Buffer.from(serializeRoot(md)), source: `root.${md.signed.version}.json` });

/** A candidate signature by `signer` over `data` (the kit threshold's view of one .sigs.json entry). */
function candidate(signer: KeyObject, data: Buffer, keyid?: string): SignatureCandidate {
  const der = cryptoSign('sha256', data, signer);
  return { keyid, source: 'test', verify: (key) => cryptoVerify('sha256', data, key as KeyObject, der) };
}

describe('root documents', () => {
  test('the key id is the hex sha256 of the canonical key JSON, written by hand here', () => {
    const pem = String(k1.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.equal(keyidOfKey(k1.publicKey), createHash('sha256').update(`{"keytype":"ecdsa","keyval":{"public":"${pem}"},"scheme":"ecdsa-sha2-nistp256"}`).digest('hex'));
    assert.equal(keyidOfKey(k1.privateKey), keyidOfKey(k1.publicKey), 'a private key names its public half');
  });

  test('a written root parses back to the same document', () => {
    const md = v1();
    const back = parseRoot(serializeRoot(md), 'v1');
    assert.deepEqual(back.toJSON(), md.toJSON());
    pinnedTrust(back, 'v1');
  });

  test('refused as ROOT_INVALID: a false key id, one key under two ids, an unreachable threshold, no kit role, a non-P-256 key, not JSON, too large', () => {
    const base = JSON.parse(serializeRoot(v1()));
    const edit = (fn: (d: typeof base) => void): string => {
      const d = structuredClone(base);
      fn(d);
      return JSON.stringify(d);
    };
    const kid = keyidOfKey(k1.publicKey);
    const fake = 'f'.repeat(64);
    throwsCode(() => parseRoot(edit((d) => {
      d.signed.keys[fake] = d.signed.keys[kid];
      delete d.signed.keys[kid];
      d.signed.roles.kit.keyids = d.signed.roles.kit.keyids.map((x: string) => (x === kid ? fake : x));
    }), 'x'), 'ROOT_INVALID', /false id/);
    throwsCode(() => parseRoot(edit((d) => {
      // the same key again with its PEM's line breaks as CRLF: another canonical JSON, another (true) id
      const pem = d.signed.keys[kid].keyval.public.replace(/\n/g, '\r\n');
      const key = { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: pem } };
      const id = createHash('sha256').update(`{"keytype":"ecdsa","keyval":{"public":"${pem}"},"scheme":"ecdsa-sha2-nistp256"}`).digest('hex');
      d.signed.keys[id] = key;
      d.signed.roles.kit.keyids.push(id);
    }), 'x'), 'ROOT_INVALID', /same public key/);
    throwsCode(() => parseRoot(edit((d) => (d.signed.roles.kit.threshold = 4)), 'x'), 'ROOT_INVALID', /threshold 4 with 3 key/);
    throwsCode(() => parseRoot(edit((d) => delete d.signed.roles.kit), 'x'), 'ROOT_INVALID', /no "kit" role/);
    const ed = generateKeyPairSync('ed25519').publicKey;
    const edPem = String(ed.export({ type: 'spki', format: 'pem' }));
    throwsCode(() => parseRoot(edit((d) => (d.signed.keys[kid].keyval.public = edPem)), 'x'), 'ROOT_INVALID', /not ECDSA P-256|false id/);
    throwsCode(() => parseRoot('{"signed":', 'x'), 'ROOT_INVALID', /not JSON/);
    throwsCode(() => parseRoot(edit((d) => (d.signed._type = 'targets')), 'x'), 'ROOT_INVALID', /not TUF root metadata/);
    throwsCode(() => parseRoot(Buffer.alloc(1024 * 1024 + 1, 0x20), 'x'), 'ROOT_INVALID', /over the 1048576-byte limit/);
  });
});

describe('the chain', () => {
  test('v1 → v2 → v3: each step needs a threshold of the old root keys and of the new', () => {
    const one = v1();
    const two = rotateRoot(one, { kit: { keys: [k2.publicKey, k3.publicKey] }, expires: days(365), signers: [r1.privateKey, r2.privateKey] });
    const three = rotateRoot(two, { root: { keys: [r2.publicKey, r3.publicKey] }, expires: days(365), signers: [r1.privateKey, r2.privateKey, r3.privateKey] });
    const { state, ignored } = advanceTrust(pinnedTrust(one, 'v1'), [carried(three), carried(two)]);
    assert.deepEqual(state.chain, [1, 2, 3]);
    assert.deepEqual(ignored, []);
    assert.deepEqual([...state.revoked.keys()], [keyidOfKey(k1.publicKey)]);
    // Already at v2: root 2 is ignored, 3 is followed.
    assert.deepEqual(advanceTrust(pinnedTrust(two, 'v2'), [carried(two), carried(three)]).ignored, [2]);
    // A gap.
    throwsCode(() => advanceTrust(pinnedTrust(one, 'v1'), [carried(three)]), 'ROOT_INVALID', /carries root v3 but not v2/);
    // Only the new root keys signed v3 (short of v2's threshold): the library refuses to make it ...
    throwsCode(() => rotateRoot(two, { root: { keys: [r2.publicKey, r3.publicKey] }, expires: days(365), signers: [r2.privateKey, r3.privateKey] }), 'SIGNATURE_THRESHOLD');
    // ... and a site refuses one made anyway.
    const forged = JSON.parse(serializeRoot(three));
    forged.signatures = forged.signatures.filter((s: { keyid: string }) => s.keyid !== keyidOfKey(r1.publicKey));
    throwsCode(() => advanceTrust(pinnedTrust(two, 'v2'), [{ version: 3, raw: Buffer.from(JSON.stringify(forged)), source: 'forged' }]), 'ROOT_INVALID', /short of v2's root threshold/);
    // A file named for another version than it holds.
    throwsCode(() => advanceTrust(pinnedTrust(one, 'v1'), [{ ...carried(three), version: 2 }]), 'ROOT_INVALID', /holds root v3, not v2/);
  });

  test('a kit key dropped and added back is trusted again: the newest root decides', () => {
    const one = v1();
    const two = rotateRoot(one, { kit: { keys: [k2.publicKey, k3.publicKey] }, expires: days(365), signers: [r1.privateKey, r2.privateKey] });
    const three = rotateRoot(two, { kit: { keys: [k1.publicKey, k2.publicKey, k3.publicKey] }, expires: days(365), signers: [r1.privateKey, r2.privateKey] });
    const { state } = advanceTrust(pinnedTrust(one, 'v1'), [carried(two), carried(three)]);
    assert.equal(state.revoked.size, 0);
  });

  test('expiry on the injected clock; an expired root reaches a valid next root through the chain', () => {
    const old = v1(days(-1));
    throwsCode(() => requireUnexpired(pinnedTrust(old, 'v1'), NOW), 'ROOT_EXPIRED', /expired at .*trust\/root\.2\.json/);
    requireUnexpired(pinnedTrust(old, 'v1'), days(-2));
    const next = rotateRoot(old, { expires: days(30), signers: [r1.privateKey, r2.privateKey] });
    requireUnexpired(advanceTrust(pinnedTrust(old, 'v1'), [carried(next)]).state, NOW);
    throwsCode(() => requireUnexpired(advanceTrust(pinnedTrust(old, 'v1'), [carried(next)]).state, days(31)), 'ROOT_EXPIRED');
  });
});

describe('the kit threshold', () => {
  const digest = createHash('sha256').update('a kit').digest();
  const trust = (): TrustState => pinnedTrust(v1(), 'v1');

  test('distinct keys: two signatures by one key count once', () => {
    throwsCode(() => requireKitThreshold(trust(), [candidate(k1.privateKey, digest), candidate(k1.privateKey, digest)], 'the kit'), 'SIGNATURE_THRESHOLD', /1 valid signature/);
    const ok = requireKitThreshold(trust(), [candidate(k1.privateKey, digest), candidate(k3.privateKey, digest, keyidOfKey(k3.publicKey))], 'the kit');
    assert.deepEqual(ok.keyids, [keyidOfKey(k1.publicKey), keyidOfKey(k3.publicKey)]);
  });

  test('a key id is a hint: an unknown one is tried against every key; a signature counts only for the key it names', () => {
    const unknownId = candidate(k1.privateKey, digest, 'a'.repeat(64));
    throwsCode(() => requireKitThreshold(trust(), [unknownId, candidate(k2.privateKey, digest, keyidOfKey(k3.publicKey))], 'the kit'), 'SIGNATURE_THRESHOLD', /1 valid signature/);
    assert.equal(requireKitThreshold(trust(), [unknownId, candidate(k2.privateKey, digest, keyidOfKey(k2.publicKey))], 'the kit').keyids.length, 2);
  });

  test('none valid: SIGNATURE_MISMATCH; a revoked key: KEY_REVOKED', () => {
    const stranger = P256();
    throwsCode(() => requireKitThreshold(trust(), [candidate(stranger.privateKey, digest)], 'the kit'), 'SIGNATURE_MISMATCH', /no signature verifies with a kit key of root v1/);
    const one = v1();
    const two = rotateRoot(one, { kit: { keys: [k2.publicKey, k3.publicKey] }, expires: days(365), signers: [r1.privateKey, r2.privateKey] });
    const t = advanceTrust(pinnedTrust(one, 'v1'), [carried(two)]).state;
    throwsCode(() => requireKitThreshold(t, [candidate(k1.privateKey, digest), candidate(k2.privateKey, digest)], 'the kit'), 'KEY_REVOKED', /which a newer root dropped/);
    // Pinned at v2 directly, the history is unknown: the signature by k1 simply does not count.
    throwsCode(() => requireKitThreshold(pinnedTrust(two, 'v2'), [candidate(k1.privateKey, digest, keyidOfKey(k1.publicKey)), candidate(k2.privateKey, digest)], 'the kit'), 'SIGNATURE_THRESHOLD', /does not list/);
  });

  test('the implicit root of bare trusted keys: threshold 1, never expires, follows no carried root', () => {
    const keys: TrustedKey[] = [k1, k2].map((p, i) => ({ path: `k${i}.pub`, key: p.publicKey, hint: keyHint(p.publicKey) }));
    const t = implicitTrust(keys);
    assert.equal(t.implicit, true);
    requireUnexpired(t, new Date('9000-01-01T00:00:00Z'));
    assert.deepEqual(requireKitThreshold(t, [candidate(k2.privateKey, digest)], 'the kit').keyids, [keyidOfKey(k2.publicKey)]);
    const two = rotateRoot(v1(), { expires: days(365), signers: [r1.privateKey, r2.privateKey] });
    assert.deepEqual(advanceTrust(t, [carried(two)]), { state: t, ignored: [2] });
    throwsCode(() => implicitTrust([]), 'KEY_NOT_TRUSTED');
  });
});

describe('carried roots in the bundle format', () => {
  const manifest = (members: Manifest['members']): string =>
    serializeManifest({
      formatVersion: FORMAT_VERSION,
      bundleVersion: '2026-06-01',
      kind: 'full',
      created: '2026-06-01T00:00:00Z',
      expires: '2026-07-01T00:00:00Z',
      generator: 'test',
      feeds: [],
      db: { digest: '0'.repeat(64), advisories: 0 },
      members,
    });
  const m = (path: string, role: Manifest['members'][number]['role'], size = 10) => ({ path, role, size, sha256: '1'.repeat(64) });

  test('trust/root.<N>.json of role trust is accepted; anything else under trust/ or of role trust is MANIFEST_INVALID', () => {
    assert.equal(parseManifest(manifest([m('trust/root.2.json', 'trust'), m('trust/root.3.json', 'trust')])).members.length, 2);
    for (const bad of [[m('trust/evil.json', 'trust')], [m('trust/root.2.json', 'db')], [m('db/root.2.json', 'trust')], [m('trust/root.02.json', 'trust')], [m('trust/root.2.json', 'trust', 1024 * 1024 + 1)]]) {
      assert.throws(() => parseManifest(manifest(bad)), (e: unknown) => e instanceof OukError && e.code === 'MANIFEST_INVALID', JSON.stringify(bad));
    }
    const many = Array.from({ length: 65 }, (_, i) => m(`trust/root.${i + 1}.json`, 'trust'));
    assert.throws(() => parseManifest(manifest(many)), /at most 64/);
    const heavy = Array.from({ length: 5 }, (_, i) => m(`trust/root.${i + 1}.json`, 'trust', 1024 * 1024));
    assert.throws(() => parseManifest(manifest(heavy)), /at most 64, 4194304 bytes in all/);
  });
});

describe('DSSE', () => {
  test('the PAE is DSSE v1 (by hand and by @sigstore/core); envelopes verify against a kit threshold; the subject must be the tarball', () => {
    const payload = Buffer.from('{"héllo":"wörld"}', 'utf8');
    const type = 'application/vnd.in-toto+json';
    const byHand = Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);
    assert.deepEqual(preAuthEncoding(type, payload), byHand);
    assert.deepEqual(dsse.preAuthEncoding(type, payload), byHand);

    const signer = (p: { privateKey: KeyObject; publicKey: KeyObject }): KitSigner => ({ path: 'x', privateKey: p.privateKey, publicKey: p.publicKey, keyid: keyidOfKey(p.publicKey), hint: keyHint(p.publicKey) });
    const sha = 'ab'.repeat(32);
    const statement = { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'k.tar.gz', digest: { sha256: sha } }], predicateType: 'https://slsa.dev/provenance/v1', predicate: {} };
    const env = signEnvelope(type, Buffer.from(JSON.stringify(statement)), [signer(k1), signer(k2)]);
    const t = pinnedTrust(v1(), 'v1');
    assert.equal(verifyAttestation(env, { sha256: sha, trust: t, source: 'a' }).subjectName, 'k.tar.gz');
    throwsCode(() => verifyAttestation(env, { sha256: 'cd'.repeat(32), trust: t, source: 'a' }), 'ATTESTATION_MISMATCH', /its subject is sha256 abab/);
    throwsCode(() => verifyAttestation({ ...env, signatures: env.signatures.slice(0, 1) }, { sha256: sha, trust: t, source: 'a' }), 'SIGNATURE_THRESHOLD');
    throwsCode(() => verifyAttestation({ ...env, payloadType: 'text/plain' }, { sha256: sha, trust: t, source: 'a' }), 'ATTESTATION_MISMATCH', /not an in-toto statement/);
    // A signature over another payload type does not verify (the PAE binds the type).
    const retyped = signEnvelope('application/json', env.payload, [signer(k1), signer(k2)]);
    throwsCode(() => verifyAttestation({ ...retyped, payloadType: type }, { sha256: sha, trust: t, source: 'a' }), 'SIGNATURE_MISMATCH');
    throwsCode(() => readKitStatement(Buffer.from(JSON.stringify({ ...statement, predicateType: 'https://example.com/x' })), sha, 'a'), 'ATTESTATION_MISMATCH', /not SLSA provenance v1/);
  });
});
