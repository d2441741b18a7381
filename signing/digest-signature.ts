/**
 * A kit signature over a digest computed elsewhere: a tarball is hashed once
 * while it streams (SHA-256 always, SM3 when an SM2 key may have signed), and
 * every signature over it (the `.sig`, the `.sigstore.json`, each entry of
 * `.sigs.json`) is then checked against the digest its key's suite signs
 * (suites/suite.ts). ECDSA uses @noble/curves (audited) with prehash
 * disabled, since Node's crypto cannot verify ECDSA over a precomputed digest.
 */
import { kitDigestFor, suiteOf, type KitDigests, type SuiteKey } from './suites/index.ts';

/** Whether `signature` is `key`'s kit signature over the tarball whose digests are `digests`. */
export function verifyDigestSignature(signature: Uint8Array, digests: KitDigests, key: SuiteKey): boolean {
  const suite = suiteOf(key);
  if (!suite) return false;
  const digest = kitDigestFor(suite, digests);
  return digest !== undefined && suite.verifyDigest(signature, digest, key);
}
