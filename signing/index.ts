/**
 * Keys and signatures of Offline Update Kit bundles. One concern per file:
 *
 * - keys.ts            ECDSA P-256 key pairs (PKCS#8 / SPKI PEM), loading a signing key
 * - trusted-keys.ts    the host's trusted public keys (OUK_TRUSTED_KEYS) and their Sigstore hints
 * - signature.ts       the cosign `.sig` text: base64 of a DER ECDSA signature
 * - blob.ts            streaming sign / verify of a whole tarball (one pass, flat memory)
 * - sigstore-bundle.ts the `.sigstore.json` Sigstore bundle v0.3: build and offline verify
 * - write.ts           `FILE.sig` + `FILE.sigstore.json` beside a tarball
 * - verify-bundle.ts   one read of a tarball: signature + bundle reader + .sigstore.json
 */
export type { TrustedKey } from './trusted-keys.ts';
export { loadTrustedKeys, requireTrustedKeys, keyHint, trustedKeyFromPem } from './trusted-keys.ts';
export { generateKeyPair, loadPrivateKey } from './keys.ts';
export { parseSignature, formatSignature } from './signature.ts';
export { createBlobVerifier, verifyBlobStream, signStream, type BlobVerifier, type BlobVerification } from './blob.ts';
export {
  SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
  buildSigstoreBundleJson,
  parseSigstoreBundle,
  verifySigstoreBundle,
  verifySigstoreBundleFile,
  readSigstoreBundleFile,
  type KeyedMessageBundle,
} from './sigstore-bundle.ts';
export { writeSignatureFiles, sigPathFor, sigstorePathFor } from './write.ts';
export {
  verifyBundleStream,
  verifyBundleFile,
  type BundleVerification,
  type BundleVerifyInput,
  type BundleFileVerifyOptions,
} from './verify-bundle.ts';
