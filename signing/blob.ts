/**
 * Signs and verifies a whole tarball as a stream, in one pass and flat memory:
 * the bytes go to SHA-256 and to one ECDSA verifier per trusted key at once, so a
 * caller can tee the same chunks into the bundle reader and check everything
 * while reading the file a single time.
 */
import { createHash, createSign, createVerify, type KeyObject, type Verify } from 'node:crypto';
import type { Readable } from 'node:stream';
import { OukError } from '../lib/errors.ts';
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
  const hash = createHash('sha256');
  const verifiers: Verify[] = keys.map(() => createVerify('sha256'));
  let size = 0;
  let done = false;
  const digest = (): { sha256: string; size: number } => {
    if (done) throw new Error('BlobVerifier: already finished');
    done = true;
    return { sha256: hash.digest('hex'), size };
  };
  return {
    update(chunk: Buffer): void {
      if (done) throw new Error('BlobVerifier: update after finish');
      size += chunk.length;
      hash.update(chunk);
      for (const v of verifiers) v.update(chunk);
    },
    digest,
    finish(): BlobVerification {
      const d = digest();
      for (let i = 0; i < keys.length; i++) {
        let ok = false;
        try {
          ok = verifiers[i].verify(keys[i].key, signatureDer);
        } catch {
          ok = false;
        }
        if (ok) return { ...d, key: keys[i] };
      }
      throw new OukError('SIGNATURE_MISMATCH', SIGNATURE_MISMATCH_MESSAGE);
    },
  };
}

export async function verifyBlobStream(input: Readable, signatureDer: Buffer, keys: TrustedKey[]): Promise<BlobVerification> {
  const verifier = createBlobVerifier(signatureDer, keys);
  for await (const chunk of input) verifier.update(chunk as Buffer);
  return verifier.finish();
}

/** Signs a stream: DER ECDSA signature over its SHA-256 (what cosign sign-blob does), plus its sha256 and size. */
export async function signStream(input: Readable, privateKey: KeyObject): Promise<{ signatureDer: Buffer; sha256: string; size: number }> {
  const { signaturesDer, sha256, size } = await signStreamWithKeys(input, [privateKey]);
  return { signatureDer: signaturesDer[0]!, sha256, size };
}

/** Signs a stream with each key in one read: one DER ECDSA signature over its SHA-256 per key, in the keys' order. */
export async function signStreamWithKeys(input: Readable, privateKeys: KeyObject[]): Promise<{ signaturesDer: Buffer[]; sha256: string; size: number }> {
  const signers = privateKeys.map(() => createSign('sha256'));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of input) {
    const b = chunk as Buffer;
    size += b.length;
    hash.update(b);
    for (const s of signers) s.update(b);
  }
  // For EC keys Node's default signature encoding is DER, as cosign writes it.
  return { signaturesDer: signers.map((s, i) => s.sign({ key: privateKeys[i]!, dsaEncoding: 'der' })), sha256: hash.digest('hex'), size };
}
