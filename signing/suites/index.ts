/**
 * Signature suites: ECDSA P-256 (cosign's), Ed25519, SM2 with SM3. One
 * concern a file:
 *
 * - suite.ts    the interface, the three suites, which suite a key is of
 * - key.ts      a key of any suite (KeyObject, or Sm2Key), PEM in and out
 * - sm2.ts      the SM2 signature scheme (GB/T 32918.2) and SM3
 * - sm2-pem.ts  SM2 keys in OpenSSL 3's PKCS#8 / SPKI PEM
 * - pkcs11.ts   an ECDSA P-256 key inside a hardware module (RFC 7512 URI)
 */
export * from './suite.ts';
export { isPkcs11Key, isSm2Key, parsePrivateKeyPem, parsePublicKeyPem, publicHalf, sameKey, Sm2Key, spkiDer, spkiPem, type SuiteKey } from './key.ts';
export { SM2_DEFAULT_ID } from './sm2.ts';
export { parsePkcs11Uri, Pkcs11Key, type Pkcs11Defaults } from './pkcs11.ts';
