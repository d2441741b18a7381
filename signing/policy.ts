/**
 * The crypto policy (lib/crypto-policy.ts, STELLA_CRYPTO_POLICY) applied to a
 * verified kit: after its signatures hold (a forged kit stays
 * SIGNATURE_MISMATCH), the keys whose signatures counted must be of a suite
 * the policy allows for kits, and the root of trust reached — its root and
 * kit keys, or the bare trusted keys — of suites it allows for roots.
 * Anything else is ALGORITHM_NOT_ALLOWED.
 */
import { type CryptoPolicy, notAllowed, type SuiteName } from '../lib/crypto-policy.ts';
import { KIT_ROLE, ROOT_ROLE } from './root/document.ts';
import { shortKeyid, suiteOfTufKey } from './root/keys.ts';
import type { TrustState } from './root/trust-state.ts';
import { SUITES } from './suites/index.ts';

const labels = (names: readonly SuiteName[]): string[] => names.map((n) => SUITES[n].label);

/** Refuses a kit signed (`signerKeyids`: the keys of `trust.root` that counted) or trusted outside `policy`. */
export function requireKitWithinPolicy(policy: CryptoPolicy, trust: TrustState, signerKeyids: readonly string[], what: string): void {
  const root = trust.root.signed;
  for (const id of signerKeyids) {
    const key = root.keys[id];
    const suite = key ? suiteOfTufKey(key) : null;
    if (suite && !policy.kitSuites.includes(suite.name)) throw notAllowed(policy, `${what} (its signature by key ${shortKeyid(id)})`, suite.label, labels(policy.kitSuites));
  }
  requireRootWithinPolicy(policy, trust);
}

/** Refuses a root of trust holding a root or kit key of a suite outside `policy`. */
export function requireRootWithinPolicy(policy: CryptoPolicy, trust: TrustState): void {
  const root = trust.root.signed;
  const name = trust.implicit ? `the trusted keys (${trust.source})` : `the root of trust v${root.version} (${trust.source})`;
  for (const role of [ROOT_ROLE, KIT_ROLE]) {
    for (const id of root.roles[role]?.keyIDs ?? []) {
      const suite = suiteOfTufKey(root.keys[id]!);
      if (suite && !policy.rootSuites.includes(suite.name)) throw notAllowed(policy, `${name} (its ${role} key ${shortKeyid(id)})`, suite.label, labels(policy.rootSuites));
    }
  }
}
