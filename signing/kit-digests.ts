/**
 * The digests of a tarball computed in its one read: SHA-256 always (the
 * kit's identity, what ECDSA P-256 and Ed25519 kit signatures are over), SM3
 * when an SM2 key may have signed (SM3 runs at about a third of SHA-256's
 * speed here, so it is not computed for sites that trust no SM2 key).
 */
import { createHash, type Hash } from 'node:crypto';
import type { KitDigests } from './suites/index.ts';

export interface KitHasher {
  update(chunk: Buffer): void;
  /** Ends hashing; call once. */
  digest(): { sha256: string; digests: KitDigests };
}

export function createKitHasher(withSm3: boolean): KitHasher {
  const sha256 = createHash('sha256');
  const sm3: Hash | null = withSm3 ? createHash('sm3') : null;
  return {
    update(chunk) {
      sha256.update(chunk);
      sm3?.update(chunk);
    },
    digest() {
      const d = sha256.digest();
      return { sha256: d.toString('hex'), digests: { sha256: d, sm3: sm3?.digest() } };
    },
  };
}
