/**
 * Who signed a root: each key of a role checked against its signature over
 * the canonical `signed` (OLPC canonical JSON, what @tufjs/models signs) by
 * the key's suite (keys.ts: ECDSA P-256, Ed25519 or SM2 — @tufjs/models'
 * own Key.verifySignature knows no SM2), a role's threshold counted over
 * distinct keys, with the count in words for the operator.
 */
import { canonicalize } from '@tufjs/canonical-json';
import type { SuiteKey } from '../suites/index.ts';
import type { RootMetadata } from './document.ts';
import { tufSigner, verifyTufSignature } from './keys.ts';

/** Key ids of `role` in `by` (a root) whose signatures over `md` verify: distinct keys, since a root lists a key once. */
export function rootSigners(by: RootMetadata, role: string, md: RootMetadata): string[] {
  const r = by.signed.roles[role];
  if (!r) return [];
  const data = Buffer.from(canonicalize(md.signed.toJSON()));
  return r.keyIDs.filter((keyid) => {
    const key = by.signed.keys[keyid];
    const sig = md.signatures[keyid];
    if (!key || !sig) return false;
    try {
      return verifyTufSignature(key, data, sig.sig, `root v${by.signed.version}`);
    } catch {
      return false;
    }
  });
}

/** Whether `md` carries a threshold of distinct `by`'s `role` keys. */
export function meetsThreshold(by: RootMetadata, role: string, md: RootMetadata): boolean {
  const r = by.signed.roles[role];
  return r !== undefined && rootSigners(by, role, md).length >= r.threshold;
}

/** "2 of its 3 root keys (threshold 2)" */
export function describeSigners(by: RootMetadata, role: string, md: RootMetadata): string {
  const r = by.signed.roles[role];
  return `${rootSigners(by, role, md).length} of ${r?.keyIDs.length ?? 0} ${role} key(s) of root v${by.signed.version} (threshold ${r?.threshold ?? '?'})`;
}

/** Adds each key's signature over the root's canonical `signed` (replacing an earlier one by the same key). */
export function signRoot(md: RootMetadata, privateKeys: SuiteKey[]): void {
  for (const k of privateKeys) md.sign(tufSigner(k), true);
}
