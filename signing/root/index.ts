/**
 * The root of trust (TUF root metadata, spec 1.0, through @tufjs/models): the
 * keys a site trusts to sign kits and to sign the next root, with thresholds,
 * rotation and revocation. One concern a file:
 *
 * - keys.ts        TUF keys (ecdsa / ecdsa-sha2-nistp256, PEM), key ids, signers
 * - document.ts    parse, check, write and read a root document (ROOT_INVALID)
 * - signatures.ts  who signed a root; a role's threshold (verifyDelegate)
 * - create.ts      a new root (v1) and the next one (N+1), signed by the rule
 * - trust-state.ts what a verifier trusts: a root plus the keys dropped on the way
 * - chain.ts       pinned root, steps N → N+1 from carried roots, expiry
 * - implicit.ts    OUK_TRUSTED_KEYS as a one-threshold root
 * - threshold.ts   the kit role's threshold over a kit or an attestation
 */
export { KEY_SCHEME, KEY_TYPE, keyidOf, keyidOfKey, publicKeyOf, shortKeyid, tufKey, tufSigner } from './keys.ts';
export { KIT_ROLE, ROOT_ROLE, TUF_MIRRORED_ROLES, checkRoot, parseRoot, readRootFile, serializeRoot, type RootMetadata } from './document.ts';
export { describeSigners, meetsThreshold, rootSigners, signRoot } from './signatures.ts';
export { createRoot, rotateRoot, tufTime, TUF_SPEC_VERSION, type CreateRootOptions, type RoleKeys, type RotateRootOptions } from './create.ts';
export type { TrustState } from './trust-state.ts';
export { advanceTrust, daysToExpiry, pinnedTrust, requireUnexpired, stepTrust, type CarriedRoot } from './chain.ts';
export { IMPLICIT_ROOT_VERSION, implicitTrust } from './implicit.ts';
export { requireKitThreshold, type SignatureCandidate, type ThresholdResult } from './threshold.ts';
