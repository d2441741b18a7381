/**
 * The signature suites, behind one interface. Every signature a kit carries
 * is over a digest of the whole tarball computed while it streams (the
 * `.sig`, each `.sigs.json` entry); roots and attestations are signed whole
 * (TUF canonical JSON, the DSSE PAE):
 *
 * | suite      | kit signature                                  | TUF keytype / scheme             |
 * |------------|------------------------------------------------|----------------------------------|
 * | ecdsa-p256 | ECDSA P-256 over SHA-256(tarball), DER (cosign) | ecdsa / ecdsa-sha2-nistp256      |
 * | ed25519    | Ed25519 over the 32 bytes SHA-256(tarball)      | ed25519 / ed25519 (hex keyval)   |
 * | sm2        | SM2 with SM3 (ID 1234567812345678) over the     | sm2 / sm2-sm3 (PEM keyval)       |
 * |            | 32 bytes SM3(tarball), DER                      |                                  |
 */
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { p256 } from '@noble/curves/nist';
import { SUITE_NAMES, type SuiteName } from '../../lib/crypto-policy.ts';
import { isPkcs11Key, isSm2Key, type SuiteKey, Sm2Key } from './key.ts';
import { SM2_DEFAULT_ID, sm2PublicKeyOf, sm2RandomScalar, sm2Sign, sm2Verify } from './sm2.ts';

export { SUITE_NAMES, type SuiteName };

/** The digest of a tarball a suite's kit signature is over. */
export type KitDigestName = 'sha256' | 'sm3';
export type KitDigests = { sha256: Buffer; sm3?: Buffer | undefined };

export interface SignatureSuite {
  name: SuiteName;
  /** For messages: `ECDSA P-256 / SHA-256`. */
  label: string;
  tufKeyType: string;
  tufScheme: string;
  kitDigest: KitDigestName;
  /** The kit signature over `digest` (the tarball's `kitDigest`). */
  signDigest(privateKey: SuiteKey, digest: Buffer): Buffer;
  verifyDigest(signature: Uint8Array, digest: Uint8Array, publicKey: SuiteKey): boolean;
  /** A signature over a whole message (a root's canonical JSON, a DSSE PAE). */
  signMessage(privateKey: SuiteKey, message: Buffer): Buffer;
  verifyMessage(signature: Uint8Array, message: Buffer, publicKey: SuiteKey): boolean;
  generate(): { privateKey: SuiteKey; publicKey: SuiteKey };
}

/** The SM2 distinguishing ID in force (STELLA_SM2_ID, set once at start by the CLI and the services). */
let sm2Id = SM2_DEFAULT_ID;
export function setSm2DistinguishingId(id: string | undefined): void {
  sm2Id = id && id.length > 0 ? id : SM2_DEFAULT_ID;
}
export const sm2DistinguishingId = (): string => sm2Id;

function nodeKey(k: SuiteKey): KeyObject {
  if (isSm2Key(k) || isPkcs11Key(k)) throw new Error(`a ${k.kind} key given to a Node crypto suite`);
  return k;
}
function sm2Key(k: SuiteKey): Sm2Key {
  if (!isSm2Key(k)) throw new Error('a Node key given to the SM2 suite');
  return k;
}
const safely = (f: () => boolean): boolean => {
  try {
    return f();
  } catch {
    return false;
  }
};

function p256Point(k: KeyObject): Uint8Array | null {
  const jwk = k.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) return null;
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
}

export const ECDSA_P256: SignatureSuite = {
  name: 'ecdsa-p256',
  label: 'ECDSA P-256 / SHA-256',
  tufKeyType: 'ecdsa',
  tufScheme: 'ecdsa-sha2-nistp256',
  kitDigest: 'sha256',
  signDigest(privateKey, digest) {
    if (isPkcs11Key(privateKey)) return privateKey.signDigest(digest);
    const jwk = nodeKey(privateKey).export({ format: 'jwk' });
    if (!jwk.d) throw new Error('ECDSA_P256.signDigest: not a private key');
    return Buffer.from(p256.sign(digest, Buffer.from(jwk.d, 'base64url'), { prehash: false, lowS: false }).toDERRawBytes());
  },
  verifyDigest(signature, digest, publicKey) {
    if (digest.length !== 32 || isSm2Key(publicKey)) return false;
    const pub = isPkcs11Key(publicKey) ? publicKey.publicKey : publicKey;
    return safely(() => {
      const point = p256Point(pub);
      return point !== null && p256.verify(signature, digest, point, { prehash: false, lowS: false, format: 'der' });
    });
  },
  signMessage: (privateKey, message) => (isPkcs11Key(privateKey) ? privateKey.signMessage(message) : cryptoSign('sha256', message, { key: nodeKey(privateKey), dsaEncoding: 'der' })),
  verifyMessage: (signature, message, publicKey) => !isSm2Key(publicKey) && safely(() => cryptoVerify('sha256', message, { key: isPkcs11Key(publicKey) ? publicKey.publicKey : publicKey, dsaEncoding: 'der' }, signature)),
  generate() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { privateKey, publicKey };
  },
};

export const ED25519: SignatureSuite = {
  name: 'ed25519',
  label: 'Ed25519',
  tufKeyType: 'ed25519',
  tufScheme: 'ed25519',
  kitDigest: 'sha256',
  signDigest: (privateKey, digest) => cryptoSign(null, digest, nodeKey(privateKey)),
  verifyDigest: (signature, digest, publicKey) => digest.length === 32 && ED25519.verifyMessage(signature, Buffer.from(digest), publicKey),
  signMessage: (privateKey, message) => cryptoSign(null, message, nodeKey(privateKey)),
  verifyMessage: (signature, message, publicKey) => !isSm2Key(publicKey) && !isPkcs11Key(publicKey) && signature.length === 64 && safely(() => cryptoVerify(null, message, publicKey, signature)),
  generate() {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return { privateKey, publicKey };
  },
};

export const SM2: SignatureSuite = {
  name: 'sm2',
  label: 'SM2 / SM3',
  tufKeyType: 'sm2',
  tufScheme: 'sm2-sm3',
  kitDigest: 'sm3',
  signDigest: (privateKey, digest) => SM2.signMessage(privateKey, digest),
  verifyDigest: (signature, digest, publicKey) => digest.length === 32 && SM2.verifyMessage(signature, Buffer.from(digest), publicKey),
  signMessage(privateKey, message) {
    const k = sm2Key(privateKey);
    if (k.d === undefined) throw new Error('SM2.signMessage: not a private key');
    return sm2Sign(message, k.d, k.publicPoint, { id: sm2Id });
  },
  verifyMessage: (signature, message, publicKey) => isSm2Key(publicKey) && sm2Verify(signature, message, publicKey.publicPoint, { id: sm2Id }),
  generate() {
    const d = sm2RandomScalar();
    const point = sm2PublicKeyOf(d);
    return { privateKey: new Sm2Key(point, d), publicKey: new Sm2Key(point) };
  },
};

export const SUITES: Record<SuiteName, SignatureSuite> = { 'ecdsa-p256': ECDSA_P256, ed25519: ED25519, sm2: SM2 };

/** The suite a key belongs to; null for a key of no supported suite (RSA, P-384, secp256k1, …). */
export function suiteOf(key: SuiteKey): SignatureSuite | null {
  if (isSm2Key(key)) return SM2;
  if (isPkcs11Key(key)) return suiteOf(key.publicKey);
  if (key.asymmetricKeyType === 'ed25519') return ED25519;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return ECDSA_P256;
  return null;
}

export function describeKey(key: SuiteKey): string {
  if (isSm2Key(key)) return 'sm2';
  if (isPkcs11Key(key)) return `PKCS#11 ${describeKey(key.publicKey)}`;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType} ${curve}` : String(key.asymmetricKeyType);
}

/** The kit digest a key's signatures are over, from the digests computed while reading. */
export function kitDigestFor(suite: SignatureSuite, digests: KitDigests): Buffer | undefined {
  return suite.kitDigest === 'sm3' ? digests.sm3 : digests.sha256;
}
