/**
 * Keys in TUF's form (spec 1.0 §4.2): keytype `ecdsa`, scheme
 * `ecdsa-sha2-nistp256`, keyval `{public: <SPKI PEM>}` — the same P-256 keys
 * `stella ouk keygen` writes. A key's id is the hex SHA-256 of its canonical
 * JSON (OLPC canonical form, @tufjs/canonical-json: the encoder @tufjs/models
 * signs with), so python-tuf, go-tuf and tuf-js compute the same id. A
 * signature is the hex of an ASN.1 DER ECDSA signature over SHA-256, as
 * securesystemslib writes it and @tufjs/models' Key.verifySignature checks it.
 */
import { createHash, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Signature } from '@tufjs/models';
import { OukError } from '../../lib/errors.ts';
import { describeKey, isP256 } from '../trusted-keys.ts';

export const KEY_TYPE = 'ecdsa';
export const KEY_SCHEME = 'ecdsa-sha2-nistp256';

/** TUF's key id: hex SHA-256 of the canonical JSON of `{keytype, scheme, keyval}`. */
export function keyidOf(keyType: string, scheme: string, keyVal: Record<string, string>): string {
  return createHash('sha256').update(canonicalize({ keytype: keyType, scheme, keyval: keyVal })).digest('hex');
}

/** The TUF key of a P-256 public (or private: its public half is taken) key. */
export function tufKey(key: KeyObject): Key {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (!isP256(publicKey)) throw new OukError('KEY_INVALID', `a ${describeKey(publicKey)} key cannot be a root or kit key: Stella signs with ECDSA P-256 keys (stella ouk keygen)`);
  const keyVal = { public: String(publicKey.export({ type: 'spki', format: 'pem' })) };
  return new Key({ keyID: keyidOf(KEY_TYPE, KEY_SCHEME, keyVal), keyType: KEY_TYPE, scheme: KEY_SCHEME, keyVal });
}

/** The key id of a P-256 public or private key. */
export function keyidOfKey(key: KeyObject): string {
  return tufKey(key).keyID;
}

/**
 * The public key a TUF key holds, refused (ROOT_INVALID) unless it is an ECDSA
 * P-256 key in PEM whose id is its canonical hash: a root may not name a key
 * under an id of its choosing.
 */
export function publicKeyOf(key: Key, source: string): KeyObject {
  const where = `${source}: key ${key.keyID}`;
  if (key.keyType !== KEY_TYPE || key.scheme !== KEY_SCHEME) {
    throw new OukError('ROOT_INVALID', `${where} is keytype ${key.keyType} scheme ${key.scheme}: Stella roots hold ${KEY_TYPE} / ${KEY_SCHEME} keys only`);
  }
  const pem = key.keyVal.public;
  if (typeof pem !== 'string' || !pem.startsWith('-----BEGIN PUBLIC KEY-----')) throw new OukError('ROOT_INVALID', `${where} has no PEM public key in keyval.public`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new OukError('ROOT_INVALID', `${where}: keyval.public is not a PEM public key (${(e as Error).message})`, { cause: e });
  }
  if (!isP256(publicKey)) throw new OukError('ROOT_INVALID', `${where} is a ${describeKey(publicKey)} key, not ECDSA P-256`);
  const expected = keyidOf(key.keyType, key.scheme, key.keyVal);
  if (expected !== key.keyID) throw new OukError('ROOT_INVALID', `${where}: the key id is not the SHA-256 of the key's canonical JSON (${expected}): the root names a key under a false id`);
  return publicKey;
}

/** A signer for Metadata.sign: hex DER ECDSA P-256 over SHA-256 of the canonical bytes it is handed. */
export function tufSigner(privateKey: KeyObject): (data: Buffer) => Signature {
  const keyID = keyidOfKey(privateKey);
  return (data: Buffer) => new Signature({ keyID, sig: cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'der' }).toString('hex') });
}

/** `abcdef012345…`: a key id short enough for a line of output (the full id is in --json and `stella trust show`). */
export function shortKeyid(keyid: string): string {
  return keyid.length > 12 ? `${keyid.slice(0, 12)}…` : keyid;
}
