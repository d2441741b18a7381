/**
 * The trust a verifier starts from, from where the host configures it: a
 * pinned root file (OUK_TRUST_ROOT, `--root`), or bare trusted keys
 * (OUK_TRUSTED_KEYS, `--key`) as the implicit one-threshold root. Values are
 * passed in (the CLI resolves flags and configuration); nothing here reads
 * the environment.
 */
import { pinnedTrust } from './root/chain.ts';
import { readRootFile } from './root/document.ts';
import { implicitTrust } from './root/implicit.ts';
import type { TrustState } from './root/trust-state.ts';
import { loadTrustedKeys } from './trusted-keys.ts';

export type TrustSource = { root: string; label: string } | { keys: string[]; label: string };

export async function loadTrust(source: TrustSource): Promise<TrustState> {
  if ('root' in source) {
    const { md } = await readRootFile(source.root, source.label);
    return pinnedTrust(md, source.label === source.root ? source.root : `${source.label}=${source.root}`);
  }
  return implicitTrust(await loadTrustedKeys(source.keys), source.label);
}
