/**
 * A kit's signatures by several keys, and its verification against a root of
 * trust. One concern a file:
 *
 * - sign.ts       the publisher's kit keys, loaded once, with their key ids
 * - sigs-file.ts  FILE.sigs.json: every kit key's cosign-format signature, by key id
 * - verify.ts     one read of a kit: carried roots, threshold, attestation
 */
export { loadKitSigners, type KitSigner } from './sign.ts';
export { KIT_SIGNATURES_MEDIA_TYPE, parseKitSignatures, readKitSignaturesFile, serializeKitSignatures, sigsPathFor, type KitSignature, type KitSignatures } from './sigs-file.ts';
export { verifyKitFile, type KitFileVerifyOptions, type KitVerification } from './verify.ts';
