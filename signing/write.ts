/**
 * Writes a kit's signature files beside its tarball, reading the tarball once:
 *
 * - FILE.sig          the FIRST key's cosign-format signature (compatibility:
 *                     cosign verify-blob, openssl, sites on OUK_TRUSTED_KEYS)
 * - FILE.sigstore.json the same signature as a Sigstore bundle v0.3, when the
 *                     first key is ECDSA P-256 (a Sigstore bundle of a
 *                     digest signature exists for ECDSA only)
 * - FILE.sigs.json    every key's signature, by TUF key id (kit/sigs-file.ts):
 *                     what a root's kit threshold is counted on
 *
 * Each file is written to a temporary name and renamed, so a reader never
 * sees half a signature.
 */
import { createReadStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { signStreamWithKeys } from './blob.ts';
import { type KitSigner, loadKitSigners } from './kit/sign.ts';
import { serializeKitSignatures, sigsPathFor } from './kit/sigs-file.ts';
import { formatSignature } from './signature.ts';
import { buildSigstoreBundleJson } from './sigstore-bundle.ts';
import { ECDSA_P256, suiteOf } from './suites/index.ts';

export const sigPathFor = (file: string): string => `${file}.sig`;
export const sigstorePathFor = (file: string): string => `${file}.sigstore.json`;
export { sigsPathFor } from './kit/sigs-file.ts';

export interface WrittenSignatures {
  sha256: string;
  size: number;
  sigPath: string;
  /** Null unless the first key is ECDSA P-256 (see the header). */
  sigstorePath: string | null;
  sigsPath: string;
  /** Key ids that signed, in order (the first one's signature is FILE.sig). */
  keyids: string[];
}

/** Signs `tarballPath` with every signer (see the header). */
export async function writeKitSignatureFiles(tarballPath: string, signers: readonly KitSigner[]): Promise<WrittenSignatures> {
  const { signaturesDer, sha256, size } = await signStreamWithKeys(createReadStream(tarballPath, { highWaterMark: 1024 * 1024 }), signers.map((s) => s.privateKey));
  const first = signers[0]!;
  const paths = { sigPath: sigPathFor(tarballPath), sigstorePath: sigstorePathFor(tarballPath), sigsPath: sigsPathFor(tarballPath) };
  await writeAtomic(paths.sigPath, formatSignature(signaturesDer[0]!));
  const sigstore = suiteOf(first.privateKey) === ECDSA_P256;
  if (sigstore) await writeAtomic(paths.sigstorePath, buildSigstoreBundleJson(sha256, signaturesDer[0]!, first.hint));
  else await rm(paths.sigstorePath, { force: true });
  await writeAtomic(paths.sigsPath, serializeKitSignatures({ sha256, signatures: signers.map((s, i) => ({ keyid: s.keyid, signatureDer: signaturesDer[i]! })) }));
  return { sha256, size, ...paths, sigstorePath: sigstore ? paths.sigstorePath : null, keyids: signers.map((s) => s.keyid) };
}

/** Loads the private key(s) (PKCS#8 PEM; `password` for encrypted ones) and signs `tarballPath` with each. */
export async function writeSignatureFiles(tarballPath: string, privateKeyPaths: string | readonly string[], password?: string): Promise<WrittenSignatures> {
  const signers = await loadKitSigners(typeof privateKeyPaths === 'string' ? [privateKeyPaths] : privateKeyPaths, password);
  return writeKitSignatureFiles(tarballPath, signers);
}

export async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
