/**
 * A key of any signature suite: a Node KeyObject for ECDSA P-256 and Ed25519,
 * an Sm2Key for SM2 (Node cannot hold SM2 keys: sm2-pem.ts). Parsing a PEM
 * looks at the algorithm first, so an SM2 key never reaches Node's parser's
 * KeyObject (whose export of one aborts the process).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { Pkcs11Key } from './pkcs11.ts';
import { namesSm2, pemBody, sm2KeyFromPkcs8, sm2PointFromSpki, sm2PublicPem, sm2SpkiDer } from './sm2-pem.ts';

export class Sm2Key {
  readonly kind = 'sm2';
  readonly type: 'public' | 'private';
  /** 04 ‖ x ‖ y */
  readonly publicPoint: Buffer;
  /** The private scalar (private keys only). */
  readonly d: bigint | undefined;
  constructor(publicPoint: Buffer, d?: bigint) {
    this.publicPoint = publicPoint;
    this.d = d;
    this.type = d === undefined ? 'public' : 'private';
  }
}

/** A key file's key, an SM2 key, or a key inside a hardware module (pkcs11.ts: it signs, nothing more). */
export type SuiteKey = KeyObject | Sm2Key | Pkcs11Key;

export const isSm2Key = (k: SuiteKey): k is Sm2Key => k instanceof Sm2Key;
export const isPkcs11Key = (k: SuiteKey): k is Pkcs11Key => k instanceof Pkcs11Key;

/** The public half of a private key (a public key as it is). */
export function publicHalf(k: SuiteKey): KeyObject | Sm2Key {
  if (isSm2Key(k)) return k.type === 'public' ? k : new Sm2Key(k.publicPoint);
  if (isPkcs11Key(k)) return k.publicKey;
  return k.type === 'private' ? createPublicKey(k) : k;
}

const nodePublic = (k: KeyObject): KeyObject => (k.type === 'private' ? createPublicKey(k) : k);

/** DER SubjectPublicKeyInfo of the key's public half. */
export function spkiDer(k: SuiteKey): Buffer {
  if (isSm2Key(k)) return sm2SpkiDer(k.publicPoint);
  if (isPkcs11Key(k)) return spkiDer(k.publicKey);
  return nodePublic(k).export({ type: 'spki', format: 'der' });
}

export function spkiPem(k: SuiteKey): string {
  if (isSm2Key(k)) return sm2PublicPem(k.publicPoint);
  if (isPkcs11Key(k)) return spkiPem(k.publicKey);
  return String(nodePublic(k).export({ type: 'spki', format: 'pem' }));
}

export function sameKey(a: SuiteKey, b: SuiteKey): boolean {
  return spkiDer(a).equals(spkiDer(b));
}

/** A PEM public key of any suite; throws Error (the caller words the OukError). */
export function parsePublicKeyPem(text: string): SuiteKey {
  const spki = pemBody(text, 'PUBLIC KEY');
  if (spki && namesSm2(spki)) {
    const point = sm2PointFromSpki(spki);
    if (!point) throw new Error('an SM2 public key whose point is not on the curve or not in SubjectPublicKeyInfo form');
    return new Sm2Key(point);
  }
  return createPublicKey({ key: text, format: 'pem' });
}

/** A PEM private key of any suite (an encrypted one with `passphrase`); throws Error. */
export function parsePrivateKeyPem(text: string, passphrase: string): SuiteKey {
  const pkcs8 = pemBody(text, 'PRIVATE KEY');
  if (pkcs8 && namesSm2(pkcs8)) {
    const k = sm2KeyFromPkcs8(pkcs8);
    if (!k) throw new Error('an SM2 private key not in the PKCS#8 form OpenSSL 3 writes, or whose public point is not its own');
    return new Sm2Key(k.publicPoint, k.d);
  }
  if (/BEGIN (EC PRIVATE KEY|ENCRYPTED PRIVATE KEY)/.test(text) && /SM2|06082a811ccf5501822d/i.test(peekDer(text))) {
    throw new Error('an encrypted or SEC1 SM2 key: write it as plain PKCS#8 (openssl pkey -in KEY -out KEY.pem)');
  }
  const key = createPrivateKey({ key: text, format: 'pem', passphrase });
  if (key.asymmetricKeyType === undefined) throw new Error('a key of an algorithm Stella does not sign with');
  return key;
}

function peekDer(text: string): string {
  const m = /-----BEGIN [A-Z ]+-----([A-Za-z0-9+/=\s]+)-----END/.exec(text);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('hex') : '';
}
