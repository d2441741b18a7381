/**
 * The crypto policy in force (STELLA_CRYPTO_POLICY), as data: which signature
 * suites may sign kits and roots, and which JWT algorithms tokens may use.
 * Where law or policy requires it:
 *
 * - `default`: every suite (ECDSA P-256, Ed25519, SM2/SM3); tokens ES256,
 *   EdDSA, RS256.
 * - `fips`: FIPS 186-5 / 140-3 approved algorithms only — ECDSA P-256 with
 *   SHA-256 for kits and roots, ES256 for tokens (no Ed25519: a FIPS module
 *   may not offer it; no SM2).
 * - `gm`: the Chinese commercial cryptography standards — kits and roots
 *   signed with SM2/SM3 only (GB/T 32918.2, GB/T 32905). Tokens are JWTs,
 *   which have no SM2 algorithm: they keep the default's algorithms.
 *
 * A kit, a root or a token outside the policy is refused with
 * ALGORITHM_NOT_ALLOWED. The suites themselves live in signing/suites/; their
 * names are the ground floor's, so this file depends on nothing.
 */
import { OukError } from './errors.ts';

export const SUITE_NAMES = ['ecdsa-p256', 'ed25519', 'sm2'] as const;
export type SuiteName = (typeof SUITE_NAMES)[number];

export const CRYPTO_POLICY_NAMES = ['default', 'fips', 'gm'] as const;
export type CryptoPolicyName = (typeof CRYPTO_POLICY_NAMES)[number];

export type PolicyTokenAlg = 'ES256' | 'EdDSA' | 'RS256';

export interface CryptoPolicy {
  name: CryptoPolicyName;
  /** Suites whose keys may sign a kit (and count towards a root's kit threshold). */
  kitSuites: readonly SuiteName[];
  /** Suites a root of trust may hold (its root and kit keys). */
  rootSuites: readonly SuiteName[];
  tokenAlgs: readonly PolicyTokenAlg[];
  /** One line for `stella ouk status`. */
  summary: string;
}

export const CRYPTO_POLICIES: Record<CryptoPolicyName, CryptoPolicy> = {
  default: {
    name: 'default',
    kitSuites: SUITE_NAMES,
    rootSuites: SUITE_NAMES,
    tokenAlgs: ['ES256', 'EdDSA', 'RS256'],
    summary: 'kits and roots: ECDSA P-256, Ed25519, SM2/SM3; tokens: ES256, EdDSA, RS256',
  },
  fips: {
    name: 'fips',
    kitSuites: ['ecdsa-p256'],
    rootSuites: ['ecdsa-p256'],
    tokenAlgs: ['ES256'],
    summary: 'FIPS 186-5 only — kits and roots: ECDSA P-256/SHA-256; tokens: ES256',
  },
  gm: {
    name: 'gm',
    kitSuites: ['sm2'],
    rootSuites: ['sm2'],
    tokenAlgs: ['ES256', 'EdDSA', 'RS256'],
    summary: 'GM/T — kits and roots: SM2/SM3 only; tokens: ES256, EdDSA, RS256 (JWT has no SM2)',
  },
};

/** STELLA_CRYPTO_POLICY's value -> the policy (unset: default); USAGE for anything else. */
export function parseCryptoPolicy(value: string | undefined): CryptoPolicy {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '') return CRYPTO_POLICIES.default;
  if (!(CRYPTO_POLICY_NAMES as readonly string[]).includes(v)) {
    throw new OukError('USAGE', `STELLA_CRYPTO_POLICY=${value} is not a crypto policy: set default, fips or gm (docs/crypto.md)`);
  }
  return CRYPTO_POLICIES[v as CryptoPolicyName];
}

export function notAllowed(policy: CryptoPolicy, what: string, used: string, allowed: readonly string[]): OukError {
  return new OukError(
    'ALGORITHM_NOT_ALLOWED',
    `${what} uses ${used}, which the crypto policy "${policy.name}" (STELLA_CRYPTO_POLICY) does not allow — it allows ${allowed.join(', ')}: get it signed with an allowed key (stella ouk keygen --alg ${allowed[0]}), or change the policy only if your rules permit it (docs/crypto.md)`,
  );
}

/** Refuses a token algorithm outside the policy. */
export function requireTokenAlg(policy: CryptoPolicy, alg: string, what: string): void {
  if (!(policy.tokenAlgs as readonly string[]).includes(alg)) throw notAllowed(policy, what, alg, policy.tokenAlgs);
}
