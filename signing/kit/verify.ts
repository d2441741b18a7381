/**
 * Verifying a kit file against a trust state (a pinned root, or the implicit
 * root of OUK_TRUSTED_KEYS), offline, reading the tarball once.
 *
 * Against a root, in this order (the first failure is reported):
 *  1. the signature material beside FILE is read (bounded): FILE.sigs.json
 *     and/or FILE.sig (one of them: SIGNATURE_MISSING), FILE.sigstore.json and
 *     FILE.intoto.json when present;
 *  2. one read of FILE (kit/verify-stream.ts, shared with the pipeline's
 *     verify stage): its sha256, the bundle reader, and the roots the kit
 *     carries (`trust/root.<N>.json`, read first);
 *  3. ARCHIVE_CORRUPT, as everywhere: the copy is broken, re-download;
 *  4. the carried chain from the trusted root (ROOT_INVALID), then the
 *     expiry of the root reached (ROOT_EXPIRED) — the exception for an
 *     expired root falls out: a kit carrying the next root reaches it;
 *  5. the kit role's threshold of the root reached, over the tarball's
 *     sha256 (SIGNATURE_THRESHOLD, KEY_REVOKED, SIGNATURE_MISMATCH);
 *  6. the reader's finding (UNSAFE_ENTRY, MANIFEST_INVALID, MEMBER_*);
 *  7. FILE.sigstore.json: by a kit key, the same as FILE.sig's;
 *  8. the attestation, when present or required (attestation/verify.ts).
 *
 * Against the implicit root the kit is checked exactly as before roots
 * existed (verify-bundle.ts: FILE.sig by one trusted key), then step 8.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../../bundle/manifest.ts';
import { rootVersionOfMember } from '../../bundle/trust.ts';
import { OukError } from '../../lib/errors.ts';
import { intotoPathFor, readAttestationFile } from '../attestation/file.ts';
import { type AttestationVerification, verifyAttestation } from '../attestation/verify.ts';
import { keyidOfKey } from '../root/keys.ts';
import type { ThresholdResult } from '../root/threshold.ts';
import type { TrustState } from '../root/trust-state.ts';
import { parseSignature } from '../signature.ts';
import { type KeyedMessageBundle, readSigstoreBundleFile } from '../sigstore-bundle.ts';
import { readFailure, readSmallFile, SmallFileError } from '../small-file.ts';
import type { TrustedKey } from '../trusted-keys.ts';
import { verifyBundleFile } from '../verify-bundle.ts';
import { sigPathFor, sigstorePathFor } from '../write.ts';
import { type KitSignatures, readKitSignaturesFile, sigsPathFor } from './sigs-file.ts';
import { verifyKitStream } from './verify-stream.ts';
import type { CryptoPolicy } from '../../lib/crypto-policy.ts';
import { requireKitWithinPolicy } from '../policy.ts';

export interface KitFileVerifyOptions {
  trust: TrustState;
  /** The verifier's clock: root expiry. */
  now: Date;
  /** A missing FILE.intoto.json is refused (SIGNATURE_MISSING). */
  requireAttestation?: boolean;
  /** Defaults: FILE.sig, FILE.sigstore.json, FILE.intoto.json; a path given must exist. */
  signaturePath?: string;
  sigstorePath?: string;
  attestationPath?: string;
  /** The crypto policy in force (STELLA_CRYPTO_POLICY); none: every suite. */
  policy?: CryptoPolicy;
}

export interface KitVerification {
  file: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  manifestSha256: string;
  /** The trust reached: the pinned root, or the newest root the kit carried. */
  trust: TrustState;
  /** Root versions the kit carries, and those of them not followed (at or below the trusted version, or an implicit root). */
  carriedRoots: number[];
  ignoredRoots: number[];
  /** The kit keys that signed the tarball, and the threshold they met. */
  signatures: ThresholdResult;
  /** With the implicit root: the trusted key FILE.sig verified with. */
  key: TrustedKey | null;
  files: { signature: string | null; signatures: string | null; sigstore: string | null; attestation: string | null };
  sigstoreBundleVerified: boolean;
  attestation: AttestationVerification | null;
}

async function requireFile(file: string): Promise<void> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new OukError('INPUT_NOT_FOUND', `${file} is not a regular file: pass the kit tarball`);
  } catch (e) {
    if (e instanceof OukError) throw e;
    throw new OukError('INPUT_NOT_FOUND', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check the path`, { cause: e });
  }
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

async function readAttestation(file: string, opts: KitFileVerifyOptions) {
  const attestationPath = opts.attestationPath ?? intotoPathFor(file);
  const env = await readAttestationFile(attestationPath);
  if (!env && (opts.attestationPath !== undefined || opts.requireAttestation)) {
    throw new OukError(
      'SIGNATURE_MISSING',
      `no release attestation at ${attestationPath}${opts.attestationPath === undefined ? ' (--require-attestation / OUK_REQUIRE_ATTESTATION=true makes it mandatory)' : ''}: copy the .intoto.json published with the kit beside it`,
    );
  }
  return env ? { env, path: attestationPath } : null;
}

export async function verifyKitFile(file: string, opts: KitFileVerifyOptions): Promise<KitVerification> {
  if (!opts.trust.implicit) return verifyWithRoot(file, opts);
  const r = await verifyWithKeys(file, opts);
  if (opts.policy) requireKitWithinPolicy(opts.policy, r.trust, r.signatures.keyids, `the kit ${path.basename(file)}`);
  return r;
}

/** Today's check (FILE.sig by one of the bare trusted keys), then the attestation against the same keys. */
async function verifyWithKeys(file: string, opts: KitFileVerifyOptions): Promise<KitVerification> {
  const keys = opts.trust.trustedKeys ?? [];
  const r = await verifyBundleFile(file, { keys, signaturePath: opts.signaturePath, sigstorePath: opts.sigstorePath });
  const attestation = await readAttestation(file, opts);
  const carried = r.manifest.members.map((m) => rootVersionOfMember(m.path)).filter((v): v is number => v !== null);
  return {
    file,
    sha256: r.sha256,
    size: r.size,
    manifest: r.manifest,
    manifestSha256: r.manifestSha256,
    trust: opts.trust,
    carriedRoots: carried,
    ignoredRoots: carried,
    signatures: { keyids: [keyidOfKey(r.key.key)], threshold: 1, rootVersion: opts.trust.root.signed.version },
    key: r.key,
    files: { signature: r.signaturePath, signatures: null, sigstore: r.sigstorePath, attestation: attestation?.path ?? null },
    sigstoreBundleVerified: r.sigstoreBundleVerified,
    attestation: attestation ? verifyAttestation(attestation.env, { sha256: r.sha256, trust: opts.trust, source: attestation.path }) : null,
  };
}

async function readSig(p: string, given: boolean): Promise<Buffer | null> {
  if (!given && !(await exists(p))) return null;
  let raw: Buffer;
  try {
    raw = await readSmallFile(p, 64 * 1024);
  } catch (e) {
    if (e instanceof SmallFileError) throw new OukError('SIGNATURE_MALFORMED', `${p} is not a signature file (${e.message}): re-download the .sig published with the kit`, { cause: e });
    throw new OukError('SIGNATURE_MISSING', `no signature at ${p} (${readFailure(e)}): check the --signature path`, { cause: e });
  }
  return parseSignature(raw);
}

async function verifyWithRoot(file: string, opts: KitFileVerifyOptions): Promise<KitVerification> {
  await requireFile(file);
  const name = path.basename(file);
  const signaturePath = opts.signaturePath ?? sigPathFor(file);
  const sigsPath = sigsPathFor(file);
  const sigstorePath = opts.sigstorePath ?? sigstorePathFor(file);
  const sigDer = await readSig(signaturePath, opts.signaturePath !== undefined);
  const sigs: KitSignatures | null = await readKitSignaturesFile(sigsPath);
  if (!sigDer && !sigs) {
    throw new OukError('SIGNATURE_MISSING', `no signatures beside ${file}: copy the kit's ${path.basename(sigsPath)} (every kit key's signature) or its .sig next to it`);
  }
  const sigstorePresent = await exists(sigstorePath);
  if (opts.sigstorePath !== undefined && !sigstorePresent) throw new OukError('SIGNATURE_MISSING', `no Sigstore bundle at ${sigstorePath}: check the path`);
  const sigstoreBundle: KeyedMessageBundle | undefined = sigstorePresent ? await readSigstoreBundleFile(sigstorePath) : undefined;
  const attestation = await readAttestation(file, opts);

  const r = await verifyKitStream(
    createReadStream(file, { highWaterMark: 1024 * 1024 }),
    {
      name,
      signature: sigDer ? { der: sigDer, source: signaturePath } : null,
      signatures: sigs ? { sigs, source: sigsPath } : null,
      sigstore: sigstoreBundle ? { bundle: sigstoreBundle, source: sigstorePath } : null,
      attestation: attestation ? { env: attestation.env, source: attestation.path } : null,
    },
    { trust: opts.trust, now: opts.now, ...(opts.policy ? { policy: opts.policy } : {}) },
  );
  return {
    file,
    sha256: r.sha256,
    size: r.size,
    manifest: r.manifest,
    manifestSha256: r.manifestSha256,
    trust: r.trust,
    carriedRoots: r.carried.map((c) => c.version),
    ignoredRoots: r.ignoredRoots,
    signatures: r.signatures,
    key: null,
    files: { signature: sigDer ? signaturePath : null, signatures: sigs ? sigsPath : null, sigstore: sigstorePresent ? sigstorePath : null, attestation: attestation?.path ?? null },
    sigstoreBundleVerified: r.sigstoreBundleVerified,
    attestation: r.attestation,
  };
}
