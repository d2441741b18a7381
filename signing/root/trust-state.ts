/**
 * What a verifier trusts: a root, and the kit keys that older roots on the
 * way to it listed and a newer one dropped (revoked: a signature by one of
 * them is refused as KEY_REVOKED, not silently ignored). It only ever moves
 * forward through checked steps (chain.ts); it is plain data, so the pipeline
 * can keep it in PostgreSQL and any verifier can be tested with any root.
 */
import type { Key } from '@tufjs/models';
import type { TrustedKey } from '../trusted-keys.ts';
import type { RootMetadata } from './document.ts';

export interface TrustState {
  root: RootMetadata;
  /** Kit keys a root on the way listed and a newer one dropped, by key id. */
  revoked: Map<string, Key>;
  /** Root versions walked, oldest first: the pinned root's, then each carried one accepted. */
  chain: number[];
  /** Where the first root came from: a path, `OUK_TRUST_ROOT=…`, `OUK_TRUSTED_KEYS`. */
  source: string;
  /**
   * True for the root made from bare trusted keys (implicit.ts): it has no
   * root keys of its own to sign a successor, so carried roots are not
   * followed from it.
   */
  implicit: boolean;
  /** The implicit root's keys as configured (their paths name the signer in messages). */
  trustedKeys?: TrustedKey[];
}
