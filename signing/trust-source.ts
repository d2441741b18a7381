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
import { loadTrustedKeys, requireTrustedKeys } from './trusted-keys.ts';

export type TrustSource = { root: string; label: string } | { keys: string[]; label: string };

export async function loadTrust(source: TrustSource): Promise<TrustState> {
  if ('root' in source) {
    const { md } = await readRootFile(source.root, source.label);
    return pinnedTrust(md, source.label === source.root ? source.root : `${source.label}=${source.root}`);
  }
  return implicitTrust(await loadTrustedKeys(source.keys), source.label);
}

/** The trust a host configures: OUK_TRUST_ROOT when set (the only trust), else OUK_TRUSTED_KEYS. */
export interface ConfiguredTrust {
  trustRoot?: string | undefined;
  trustedKeys: string[];
}

export const BOTH_TRUSTS_WARNING = 'OUK_TRUST_ROOT and OUK_TRUSTED_KEYS are both set: the root of trust is the only trust, OUK_TRUSTED_KEYS is ignored';

/** Where the host's trust comes from, and a warning when the configuration names both. */
export function configuredTrustSource(c: ConfiguredTrust): { source: TrustSource; warning: string | null } {
  if (c.trustRoot) return { source: { root: c.trustRoot, label: 'OUK_TRUST_ROOT' }, warning: c.trustedKeys.length ? BOTH_TRUSTS_WARNING : null };
  return { source: { keys: c.trustedKeys, label: 'OUK_TRUSTED_KEYS' }, warning: null };
}

/**
 * A service's start: trust is configured, never defaulted — a pinned root
 * that is readable and signed by its own threshold, or at least one readable
 * trusted key (KEY_NOT_TRUSTED otherwise).
 */
export async function requireConfiguredTrust(c: ConfiguredTrust): Promise<TrustState> {
  const { source } = configuredTrustSource(c);
  if ('root' in source) return loadTrust(source);
  return implicitTrust(await requireTrustedKeys(source.keys), source.label);
}
