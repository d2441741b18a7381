/**
 * ECDSA P-256 over a SHA-256 computed elsewhere: a tarball is hashed once while
 * it streams, and every signature over it (the `.sig`, the `.sigstore.json`,
 * each entry of `.sigs.json`) is then checked against that digest. Node's
 * crypto cannot verify ECDSA over a precomputed digest, so this one step uses
 * @noble/curves (audited) with prehash disabled; signing stays with Node.
 */
import type { KeyObject } from 'node:crypto';
import { p256 } from '@noble/curves/nist';

/** Whether `signatureDer` (ASN.1 DER) is `key`'s ECDSA P-256 signature over the 32-byte `digest`. */
export function verifyDigestSignature(signatureDer: Uint8Array, digest: Uint8Array, key: KeyObject): boolean {
  if (digest.length !== 32) return false;
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) return false;
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  try {
    return p256.verify(signatureDer, digest, point, { prehash: false, lowS: false, format: 'der' });
  } catch {
    return false;
  }
}
