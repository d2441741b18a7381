/**
 * Who signed a root: @tufjs/models' own checks (Key.verifySignature over the
 * canonical `signed`, Metadata.verifyDelegate for a role's threshold of
 * distinct keys) with the count in words for the operator.
 */
import type { KeyObject } from 'node:crypto';
import type { RootMetadata } from './document.ts';
import { tufSigner } from './keys.ts';

/** Key ids of `role` in `by` (a root) whose signatures over `md` verify: distinct keys, since a root lists a key once. */
export function rootSigners(by: RootMetadata, role: string, md: RootMetadata): string[] {
  const r = by.signed.roles[role];
  if (!r) return [];
  return r.keyIDs.filter((keyid) => {
    const key = by.signed.keys[keyid];
    if (!key) return false;
    try {
      key.verifySignature(md);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether `md` carries a threshold of `by`'s `role` keys (the library's verifyDelegate decides). */
export function meetsThreshold(by: RootMetadata, role: string, md: RootMetadata): boolean {
  try {
    by.verifyDelegate(role, md);
    return true;
  } catch {
    // UnsignedMetadataError (short of the threshold) or ValueError (no such role)
    return false;
  }
}

/** "2 of its 3 root keys (threshold 2)" */
export function describeSigners(by: RootMetadata, role: string, md: RootMetadata): string {
  const r = by.signed.roles[role];
  return `${rootSigners(by, role, md).length} of ${r?.keyIDs.length ?? 0} ${role} key(s) of root v${by.signed.version} (threshold ${r?.threshold ?? '?'})`;
}

/** Adds each key's signature over the root's canonical `signed` (replacing an earlier one by the same key). */
export function signRoot(md: RootMetadata, privateKeys: KeyObject[]): void {
  for (const k of privateKeys) md.sign(tufSigner(k), true);
}
