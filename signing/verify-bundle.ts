/**
 * Verifies a bundle tarball against bare trusted keys (OUK_TRUSTED_KEYS, one
 * `.sig`) while reading it exactly once (one-read.ts): every chunk goes to the
 * signature verifier (blob.ts) and to the bundle reader (bundle/reader.ts:
 * gunzip, tar walk, manifest first, each member's size and sha256, hostile
 * entries, missing or unexpected members). Against a root of trust, with a
 * threshold of kit keys, see kit/verify.ts.
 *
 * Which failure is reported when several apply:
 *  1. ARCHIVE_CORRUPT (truncated gzip, not a tar): the most useful advice —
 *     the copy is broken, re-download — even though the signature fails too;
 *  2. the signature (SIGNATURE_MISMATCH, or KEY_NOT_TRUSTED when the
 *     .sigstore.json names a key the host does not trust): an unsigned file's
 *     contents are not worth describing;
 *  3. the reader's finding (UNSAFE_ENTRY, MEMBER_*, MANIFEST_INVALID);
 *  4. the .sigstore.json, when present: same key, same digest.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { OukError } from '../lib/errors.ts';
import type { Manifest } from '../bundle/manifest.ts';
import { createBlobVerifier } from './blob.ts';
import { readTarballOnce } from './one-read.ts';
import { parseSignature } from './signature.ts';
import { type KeyedMessageBundle, readSigstoreBundleFile, verifySigstoreBundle } from './sigstore-bundle.ts';
import { readFailure, readSmallFile, SmallFileError } from './small-file.ts';
import type { TrustedKey } from './trusted-keys.ts';
import { sigPathFor, sigstorePathFor } from './write.ts';

export interface BundleVerifyInput {
  signatureDer: Buffer;
  keys: TrustedKey[];
  /** The parsed FILE.sigstore.json, when one is present. */
  sigstoreBundle?: KeyedMessageBundle;
}

export interface BundleVerification {
  sha256: string;
  size: number;
  key: TrustedKey;
  manifest: Manifest;
  manifestSha256: string;
  sigstoreBundleVerified: boolean;
}

export async function verifyBundleStream(input: Readable, opts: BundleVerifyInput): Promise<BundleVerification> {
  const verifier = createBlobVerifier(opts.signatureDer, opts.keys);
  const outcome = await readTarballOnce(input, (b) => verifier.update(b));

  if (!outcome.ok && outcome.error instanceof OukError && outcome.error.code === 'ARCHIVE_CORRUPT') throw outcome.error;

  let signed: ReturnType<typeof verifier.finish>;
  try {
    signed = verifier.finish();
  } catch (e) {
    const hint = opts.sigstoreBundle?.verificationMaterial.content.publicKey.hint;
    if (hint !== undefined && !opts.keys.some((k) => k.hint === hint)) {
      throw new OukError(
        'KEY_NOT_TRUSTED',
        `the tarball is signed by a key this host does not trust (its .sigstore.json names key hint ${hint || '(empty)'}; trusted: ${opts.keys.map((k) => k.path).join(', ')}): pass the publisher's cosign.pub with --key / OUK_TRUSTED_KEYS, or re-download a tarball signed with a trusted key`,
        { cause: e },
      );
    }
    throw e;
  }

  if (!outcome.ok) throw outcome.error;
  const { manifest, manifestSha256 } = outcome.result;

  let sigstoreBundleVerified = false;
  if (opts.sigstoreBundle) {
    const { key } = verifySigstoreBundle(opts.sigstoreBundle, signed.sha256, opts.keys);
    if (key.hint !== signed.key.hint) {
      throw new OukError('SIGNATURE_MISMATCH', `the .sig verifies with ${signed.key.path} but the .sigstore.json with ${key.path}: they are not from the same signing — re-download the tarball, its .sig and its .sigstore.json together`);
    }
    sigstoreBundleVerified = true;
  }
  return { sha256: signed.sha256, size: signed.size, key: signed.key, manifest, manifestSha256, sigstoreBundleVerified };
}

export interface BundleFileVerifyOptions {
  keys: TrustedKey[];
  /** Default: FILE.sig */
  signaturePath?: string;
  /** Default: FILE.sigstore.json, checked when it exists. */
  sigstorePath?: string;
}

/** Reads FILE's .sig (required) and .sigstore.json (when present), then verifyBundleStream on one read of FILE. */
export async function verifyBundleFile(file: string, opts: BundleFileVerifyOptions): Promise<BundleVerification & { signaturePath: string; sigstorePath: string | null }> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new OukError('INPUT_NOT_FOUND', `${file} is not a regular file: pass the bundle tarball`);
  } catch (e) {
    if (e instanceof OukError) throw e;
    throw new OukError('INPUT_NOT_FOUND', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check the path`, { cause: e });
  }
  const signaturePath = opts.signaturePath ?? sigPathFor(file);
  const signatureDer = parseSignature(await readSignatureText(signaturePath, opts.signaturePath === undefined));
  const bundlePath = opts.sigstorePath ?? sigstorePathFor(file);
  const present = await stat(bundlePath).then(() => true, () => false);
  if (opts.sigstorePath !== undefined && !present) {
    throw new OukError('SIGNATURE_MISSING', `no Sigstore bundle at ${bundlePath}: check the path`);
  }
  const sigstoreBundle = present ? await readSigstoreBundleFile(bundlePath) : undefined;
  const result = await verifyBundleStream(createReadStream(file, { highWaterMark: 1024 * 1024 }), { signatureDer, keys: opts.keys, sigstoreBundle });
  return { ...result, signaturePath, sigstorePath: present ? bundlePath : null };
}

async function readSignatureText(path: string, defaulted: boolean): Promise<Buffer> {
  try {
    return await readSmallFile(path, 64 * 1024);
  } catch (e) {
    if (e instanceof SmallFileError) throw new OukError('SIGNATURE_MALFORMED', `${path} is not a signature file (${e.message}): re-download the .sig published with the tarball`, { cause: e });
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new OukError(
        'SIGNATURE_MISSING',
        defaulted
          ? `no signature at ${path}: copy the .sig published with the tarball beside it (or pass --signature PATH)`
          : `no signature at ${path}: check the --signature path`,
        { cause: e },
      );
    }
    throw new OukError('SIGNATURE_MISSING', `cannot read the signature ${path} (${readFailure(e)}): check its permissions`, { cause: e });
  }
}
