/**
 * Keys in TUF's form (spec 1.0 §4.2), one keytype/scheme per signature suite:
 *
 * - ECDSA P-256: keytype `ecdsa`, scheme `ecdsa-sha2-nistp256`, keyval
 *   `{public: <SPKI PEM>}` (securesystemslib's and sigstore's form);
 * - Ed25519: keytype `ed25519`, scheme `ed25519`, keyval `{public: <hex of the
 *   32-byte key>}` (the TUF specification's form);
 * - SM2: keytype `sm2`, scheme `sm2-sm3`, keyval `{public: <SPKI PEM>}` —
 *   TUF names no SM2 type: these names are Stella's (docs/crypto.md).
 *
 * A key's id is the hex SHA-256 of its canonical JSON (OLPC canonical form,
 * @tufjs/canonical-json: the encoder @tufjs/models signs with), so python-tuf,
 * go-tuf and tuf-js compute the same id. A signature is the hex of the suite's
 * signature over the canonical bytes (ECDSA: ASN.1 DER over SHA-256, as
 * securesystemslib writes it; SM2: DER over SM3 with the distinguishing ID).
 */
import { createHash, createPublicKey } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Signature } from '@tufjs/models';
import { OukError } from '../../lib/errors.ts';
import { describeKey, parsePublicKeyPem, publicHalf, spkiDer, spkiPem, SUITES, suiteOf, type SignatureSuite, type SuiteKey } from '../suites/index.ts';

/** Today's (and the default) key type and scheme: ECDSA P-256. */
export const KEY_TYPE = 'ecdsa';
export const KEY_SCHEME = 'ecdsa-sha2-nistp256';

/** Ed25519 SPKI DER is this prefix and the 32-byte key. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** TUF's key id: hex SHA-256 of the canonical JSON of `{keytype, scheme, keyval}`. */
export function keyidOf(keyType: string, scheme: string, keyVal: Record<string, string>): string {
  return createHash('sha256').update(canonicalize({ keytype: keyType, scheme, keyval: keyVal })).digest('hex');
}

function keyValOf(suite: SignatureSuite, publicKey: SuiteKey): Record<string, string> {
  if (suite.name === 'ed25519') return { public: spkiDer(publicKey).subarray(ED25519_SPKI_PREFIX.length).toString('hex') };
  return { public: spkiPem(publicKey) };
}

/** The TUF key of a public (or private: its public half is taken) key of any suite. */
export function tufKey(key: SuiteKey): Key {
  const publicKey = publicHalf(key);
  const suite = suiteOf(publicKey);
  if (!suite) throw new OukError('KEY_INVALID', `a ${describeKey(publicKey)} key cannot be a root or kit key: Stella signs with ECDSA P-256, Ed25519 or SM2 keys (stella ouk keygen --alg)`);
  const keyVal = keyValOf(suite, publicKey);
  return new Key({ keyID: keyidOf(suite.tufKeyType, suite.tufScheme, keyVal), keyType: suite.tufKeyType, scheme: suite.tufScheme, keyVal });
}

/** The key id of a public or private key. */
export function keyidOfKey(key: SuiteKey): string {
  return tufKey(key).keyID;
}

/** The suite of a TUF key's keytype and scheme; null for any other pair. */
export function suiteOfTufKey(key: Key): SignatureSuite | null {
  return Object.values(SUITES).find((s) => s.tufKeyType === key.keyType && s.tufScheme === key.scheme) ?? null;
}

/**
 * The public key a TUF key holds, refused (ROOT_INVALID) unless it is a key of
 * a supported suite in its keytype's form whose id is its canonical hash: a
 * root may not name a key under an id of its choosing.
 */
export function publicKeyOf(key: Key, source: string): SuiteKey {
  const where = `${source}: key ${key.keyID}`;
  const suite = suiteOfTufKey(key);
  if (!suite) {
    throw new OukError('ROOT_INVALID', `${where} is keytype ${key.keyType} scheme ${key.scheme}: Stella roots hold ${Object.values(SUITES).map((s) => `${s.tufKeyType} / ${s.tufScheme}`).join(', ')} keys only`);
  }
  const pub = key.keyVal.public;
  let publicKey: SuiteKey;
  if (suite.name === 'ed25519') {
    if (typeof pub !== 'string' || !/^[0-9a-f]{64}$/.test(pub)) throw new OukError('ROOT_INVALID', `${where} has no 32-byte hex Ed25519 key in keyval.public`);
    publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(pub, 'hex')]), format: 'der', type: 'spki' });
  } else {
    if (typeof pub !== 'string' || !pub.startsWith('-----BEGIN PUBLIC KEY-----') || pub.length > 4096) throw new OukError('ROOT_INVALID', `${where} has no PEM public key in keyval.public`);
    try {
      publicKey = parsePublicKeyPem(pub);
    } catch (e) {
      throw new OukError('ROOT_INVALID', `${where}: keyval.public is not a PEM public key (${(e as Error).message})`, { cause: e });
    }
  }
  if (suiteOf(publicKey) !== suite) throw new OukError('ROOT_INVALID', `${where} is a ${describeKey(publicKey)} key, not ${suite.label} as its keytype ${key.keyType} says`);
  const expected = keyidOf(key.keyType, key.scheme, key.keyVal);
  if (expected !== key.keyID) throw new OukError('ROOT_INVALID', `${where}: the key id is not the SHA-256 of the key's canonical JSON (${expected}): the root names a key under a false id`);
  return publicKey;
}

/** A signer for Metadata.sign: the hex of the key's suite's signature over the canonical bytes it is handed. */
export function tufSigner(privateKey: SuiteKey): (data: Buffer) => Signature {
  const keyID = keyidOfKey(privateKey);
  const suite = suiteOf(privateKey)!;
  return (data: Buffer) => new Signature({ keyID, sig: suite.signMessage(privateKey, data).toString('hex') });
}

/** Whether `sigHex` is `key`'s signature over `data` (a root's canonical bytes). */
export function verifyTufSignature(key: Key, data: Buffer, sigHex: string, source: string): boolean {
  if (!/^[0-9a-f]*$/.test(sigHex) || sigHex.length > 1024) return false;
  const publicKey = publicKeyOf(key, source);
  return suiteOf(publicKey)!.verifyMessage(Buffer.from(sigHex, 'hex'), data, publicKey);
}

/** `abcdef012345…`: a key id short enough for a line of output (the full id is in --json and `stella trust show`). */
export function shortKeyid(keyid: string): string {
  return keyid.length > 12 ? `${keyid.slice(0, 12)}…` : keyid;
}
