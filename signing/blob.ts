/**
 * Signs and verifies a whole tarball as a stream, in one pass and flat memory:
 * the bytes go to SHA-256 (and SM3 when an SM2 key is involved) at once, so a
 * caller can tee the same chunks into the bundle reader and check everything
 * while reading the file a single time; each signature is then checked over
 * the digest its key's suite signs (digest-signature.ts).
 */
import type { Readable } from 'node:stream';
import { OukError } from '../lib/errors.ts';
import { verifyDigestSignature } from './digest-signature.ts';
import { createKitHasher } from './kit-digests.ts';
import { isSm2Key, kitDigestFor, suiteOf, type SuiteKey } from './suites/index.ts';
import { NO_TRUSTED_KEY_MESSAGE, type TrustedKey } from './trusted-keys.ts';

export const SIGNATURE_MISMATCH_MESSAGE =
  'signature does not verify: file corrupted or not signed by this key — re-download both the tarball and its .sig';

export interface BlobVerification {
  /** sha256 hex of every byte fed in. */
  sha256: string;
  size: number;
  /** The trusted key the signature verified with. */
  key: TrustedKey;
}

export interface BlobVerifier {
  update(chunk: Buffer): void;
  /** Throws SIGNATURE_MISMATCH when no trusted key verifies the signature. */
  finish(): BlobVerification;
  /** sha256 hex and size of the bytes fed so far; ends hashing (call once, instead of finish). */
  digest(): { sha256: string; size: number };
}

export function createBlobVerifier(signatureDer: Buffer, keys: TrustedKey[]): BlobVerifier {
  if (keys.length === 0) throw new OukError('KEY_NOT_TRUSTED', NO_TRUSTED_KEY_MESSAGE);
  const hash = createKitHasher(keys.some((k) => isSm2Key(k.key)));
  let size = 0;
  let done = false;
  let digests: ReturnType<typeof hash.digest>['digests'] | null = null;
  const digest = (): { sha256: string; size: number } => {
    if (done) throw new Error('BlobVerifier: already finished');
    done = true;
    const d = hash.digest();
    digests = d.digests;
    return { sha256: d.sha256, size };
  };
  return {
    update(chunk: Buffer): void {
      if (done) throw new Error('BlobVerifier: update after finish');
      size += chunk.length;
      hash.update(chunk);
    },
    digest,
    finish(): BlobVerification {
      const d = digest();
      for (const k of keys) if (verifyDigestSignature(signatureDer, digests!, k.key)) return { ...d, key: k };
      throw new OukError('SIGNATURE_MISMATCH', SIGNATURE_MISMATCH_MESSAGE);
    },
  };
}

export async function verifyBlobStream(input: Readable, signatureDer: Buffer, keys: TrustedKey[]): Promise<BlobVerification> {
  const verifier = createBlobVerifier(signatureDer, keys);
  for await (const chunk of input) verifier.update(chunk as Buffer);
  return verifier.finish();
}

/** Signs a stream: the key's kit signature (ECDSA P-256: DER over its SHA-256, what cosign sign-blob does), plus its sha256 and size. */
export async function signStream(input: Readable, privateKey: SuiteKey): Promise<{ signatureDer: Buffer; sha256: string; size: number }> {
  const { signaturesDer, sha256, size } = await signStreamWithKeys(input, [privateKey]);
  return { signatureDer: signaturesDer[0]!, sha256, size };
}

/** Signs a stream with each key in one read: each key's kit signature over the digest its suite signs, in the keys' order. */
export async function signStreamWithKeys(input: Readable, privateKeys: SuiteKey[]): Promise<{ signaturesDer: Buffer[]; sha256: string; size: number }> {
  const hash = createKitHasher(privateKeys.some(isSm2Key));
  let size = 0;
  for await (const chunk of input) {
    const b = chunk as Buffer;
    size += b.length;
    hash.update(b);
  }
  const { sha256, digests } = hash.digest();
  const signaturesDer = privateKeys.map((k) => {
    const suite = suiteOf(k)!;
    return suite.signDigest(k, kitDigestFor(suite, digests)!);
  });
  return { signaturesDer, sha256, size };
}
