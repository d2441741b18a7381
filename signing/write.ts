/**
 * Writes FILE.sig and FILE.sigstore.json beside a tarball, reading the tarball
 * once. Each file is written to a temporary name and renamed, so a reader never
 * sees half a signature.
 */
import { createPublicKey } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { signStream } from './blob.ts';
import { loadPrivateKey } from './keys.ts';
import { formatSignature } from './signature.ts';
import { buildSigstoreBundleJson } from './sigstore-bundle.ts';
import { keyHint } from './trusted-keys.ts';

export const sigPathFor = (file: string): string => `${file}.sig`;
export const sigstorePathFor = (file: string): string => `${file}.sigstore.json`;

export async function writeSignatureFiles(
  tarballPath: string,
  privateKeyPath: string,
  password?: string,
): Promise<{ sha256: string; sigPath: string; sigstorePath: string }> {
  const privateKey = await loadPrivateKey(privateKeyPath, password);
  const hint = keyHint(createPublicKey(privateKey));
  const { signatureDer, sha256 } = await signStream(createReadStream(tarballPath, { highWaterMark: 1024 * 1024 }), privateKey);
  const sigPath = sigPathFor(tarballPath);
  const sigstorePath = sigstorePathFor(tarballPath);
  await writeAtomic(sigPath, formatSignature(signatureDer));
  await writeAtomic(sigstorePath, buildSigstoreBundleJson(sha256, signatureDer, hint));
  return { sha256, sigPath, sigstorePath };
}

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
