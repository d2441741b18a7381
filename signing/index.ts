/**
 * Keys and signatures of Offline Update Kit bundles. One concern per file:
 *
 * - keys.ts            key pairs of each suite (PKCS#8 / SPKI PEM), loading a signing key (or a pkcs11: URI)
 * - trusted-keys.ts    the host's trusted public keys (OUK_TRUSTED_KEYS) and their Sigstore hints
 * - signature.ts       the cosign `.sig` text: base64 of a DER ECDSA signature
 * - blob.ts            streaming sign / verify of a whole tarball (one pass, flat memory)
 * - sigstore-bundle.ts the `.sigstore.json` Sigstore bundle v0.3: build and offline verify
 * - digest-signature.ts a kit signature over the digest computed while streaming (its key's suite)
 * - kit-digests.ts     the digests of one read: SHA-256, and SM3 when an SM2 key may have signed
 * - policy.ts          the crypto policy (STELLA_CRYPTO_POLICY) applied to a verified kit
 * - write.ts           `FILE.sig` + `FILE.sigstore.json` + `FILE.sigs.json` beside a tarball
 * - one-read.ts        one read of a tarball for a hash or verifier and the bundle reader
 * - verify-bundle.ts   a tarball against bare trusted keys: `.sig` + bundle reader + .sigstore.json
 *
 * and a folder per larger concern:
 *
 * - suites/            the signature suites (ECDSA P-256, Ed25519, SM2/SM3) behind one interface; PKCS#11 keys
 * - root/              the root of trust (TUF root metadata): create, rotate, chain, thresholds
 * - kit/               a kit signed by several keys (FILE.sigs.json) and verified against a root
 * - attestation/       the release attestation FILE.intoto.json (DSSE, in-toto, SLSA provenance)
 */
export type { TrustedKey } from './trusted-keys.ts';
export { loadTrustedKeys, requireTrustedKeys, keyHint, trustedKeyFromPem } from './trusted-keys.ts';
export { generateKeyPair, loadPrivateKey } from './keys.ts';
export { parseSignature, formatSignature } from './signature.ts';
export { createBlobVerifier, verifyBlobStream, signStream, signStreamWithKeys, type BlobVerifier, type BlobVerification } from './blob.ts';
export {
  SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
  buildSigstoreBundleJson,
  parseSigstoreBundle,
  verifySigstoreBundle,
  verifySigstoreBundleFile,
  readSigstoreBundleFile,
  type KeyedMessageBundle,
} from './sigstore-bundle.ts';
export { writeKitSignatureFiles, writeSignatureFiles, sigPathFor, sigstorePathFor, sigsPathFor, type WrittenSignatures } from './write.ts';
export {
  verifyBundleStream,
  verifyBundleFile,
  type BundleVerification,
  type BundleVerifyInput,
  type BundleFileVerifyOptions,
} from './verify-bundle.ts';
export { loadKitSigners, verifyKitFile, type KitSigner, type KitFileVerifyOptions, type KitVerification } from './kit/index.ts';
export { BOTH_TRUSTS_WARNING, configuredTrustSource, loadTrust, requireConfiguredTrust, type ConfiguredTrust, type TrustSource } from './trust-source.ts';
export { kitKeysOf, verifyKitStream, type KitMaterial, type KitStreamOptions, type KitStreamVerification } from './kit/verify-stream.ts';
