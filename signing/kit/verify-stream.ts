/**
 * The check of a kit against a root of trust, on one read of its bytes from
 * wherever they are (a local file: kit/verify.ts; an object in the bucket: the
 * pipeline's verify stage). The signature material beside the kit is read by
 * the caller (bounded, from its own place) and passed in, so both sides decide
 * by the same code in the same order:
 *
 *  1. one read: the tarball's sha256, the bundle reader, and the roots the kit
 *     carries (`trust/root.<N>.json`);
 *  2. ARCHIVE_CORRUPT, as everywhere: the copy is broken;
 *  3. the carried chain from the trusted root (ROOT_INVALID), then the expiry
 *     of the root reached (ROOT_EXPIRED) — a kit carrying the next root
 *     reaches it, which is how it passes while the site's root has expired;
 *  4. the kit role's threshold of the root reached over the tarball's sha256
 *     (SIGNATURE_THRESHOLD, KEY_REVOKED, SIGNATURE_MISMATCH);
 *  5. the reader's finding (UNSAFE_ENTRY, MANIFEST_INVALID, MEMBER_*);
 *  6. the Sigstore bundle: by a kit key, the same as the `.sig`'s;
 *  7. the attestation, when given (attestation/verify.ts).
 */
import { createHash } from 'node:crypto';
import { createKitHasher } from '../kit-digests.ts';
import { SM2 } from '../suites/index.ts';
import type { CryptoPolicy } from '../../lib/crypto-policy.ts';
import { requireKitWithinPolicy } from '../policy.ts';
import type { Readable } from 'node:stream';
import type { Manifest, ManifestMember } from '../../bundle/manifest.ts';
import { rootVersionOfMember } from '../../bundle/trust.ts';
import { OukError } from '../../lib/errors.ts';
import type { DsseEnvelope } from '../attestation/dsse.ts';
import { type AttestationVerification, verifyAttestation } from '../attestation/verify.ts';
import { verifyDigestSignature } from '../digest-signature.ts';
import { readTarballOnce } from '../one-read.ts';
import { advanceTrust, type CarriedRoot, requireUnexpired } from '../root/chain.ts';
import { KIT_ROLE } from '../root/document.ts';
import { keyidOfKey, publicKeyOf } from '../root/keys.ts';
import { requireKitThreshold, type SignatureCandidate, type ThresholdResult } from '../root/threshold.ts';
import type { TrustState } from '../root/trust-state.ts';
import { type KeyedMessageBundle, verifySigstoreBundle } from '../sigstore-bundle.ts';
import { keyHint, type TrustedKey } from '../trusted-keys.ts';
import type { KitSignatures } from './sigs-file.ts';

/** What lies beside the kit, already read and parsed by the caller; `source` names each for messages. */
export interface KitMaterial {
  /** The kit's file name (messages). */
  name: string;
  signature: { der: Buffer; source: string } | null;
  signatures: { sigs: KitSignatures; source: string } | null;
  sigstore: { bundle: KeyedMessageBundle; source: string } | null;
  attestation: { env: DsseEnvelope; source: string } | null;
}

export interface KitStreamOptions {
  trust: TrustState;
  /** The verifier's clock: root expiry. */
  now: Date;
  /** Sees every chunk read (progress). */
  onChunk?: (chunk: Buffer) => void;
  /** The error a failed read of the input becomes (default: INPUT_NOT_FOUND, a local file). */
  readError?: (e: unknown) => Error;
  /**
   * The caller checks every member later (the pipeline's unpack stage does):
   * the bundle reader stops once it has the manifest and every root the
   * manifest lists (each checked against its sha256); the rest of the input is
   * only hashed. A kit's roots follow its manifest, so this reads the kit
   * about as fast as the bare-key check. Default false: every member is
   * checked here (`stella ouk verify`).
   */
  membersCheckedLater?: boolean;
  /**
   * Compute the SM3 digest too even when the trusted root names no SM2 key.
   * Otherwise it is computed only when it does: a carried root that brings
   * the first SM2 kit keys is followed, but a kit signed by those keys alone
   * verifies once the site trusts that root (docs/crypto.md).
   */
  withSm3?: boolean;
  /** The crypto policy in force (STELLA_CRYPTO_POLICY): signers and root outside it are ALGORITHM_NOT_ALLOWED. */
  policy?: CryptoPolicy;
}

/** Whether any key of the trusted root (or a revoked one) is an SM2 key. */
export function trustNamesSm2(trust: TrustState): boolean {
  const keys = [...Object.values(trust.root.signed.keys), ...trust.revoked.values()];
  return keys.some((k) => k.keyType === SM2.tufKeyType);
}

/** Ends the bundle reader early (membersCheckedLater): not a failure. */
class RootsRead extends OukError {
  constructor() {
    super('ARCHIVE_CORRUPT', 'the manifest and the carried roots are read: the members are checked later');
  }
}

export interface KitStreamVerification {
  sha256: string;
  size: number;
  manifest: Manifest;
  manifestSha256: string;
  /** The trust reached: the trusted root, or the newest root the kit carried. */
  trust: TrustState;
  /** Every root the kit carries, as read (the pipeline stores the ones it followed). */
  carried: CarriedRoot[];
  /** Carried versions not followed (at or below the trusted version). */
  ignoredRoots: number[];
  signatures: ThresholdResult;
  sigstoreBundleVerified: boolean;
  attestation: AttestationVerification | null;
}

/** The kit keys of the trusted root as TrustedKeys (for the Sigstore bundle check), labelled by key id. */
export function kitKeysOf(trust: TrustState): TrustedKey[] {
  const root = trust.root.signed;
  return root.roles[KIT_ROLE]!.keyIDs.map((id) => {
    const key = publicKeyOf(root.keys[id]!, `root v${root.version}`);
    return { path: `kit key ${id}`, key, hint: keyHint(key) };
  });
}

export async function verifyKitStream(input: Readable, m: KitMaterial, opts: KitStreamOptions): Promise<KitStreamVerification> {
  if (opts.trust.implicit) throw new Error('verifyKitStream: a root of trust is needed (the implicit root is checked by verify-bundle.ts)');
  if (!m.signature && !m.signatures) throw new OukError('SIGNATURE_MISSING', `no signatures beside ${m.name}: copy its .sigs.json (every kit key's signature) or its .sig next to it`);
  const hash = createKitHasher(opts.withSm3 === true || trustNamesSm2(opts.trust));
  let size = 0;
  const carried: CarriedRoot[] = [];
  const isRoot = (member: ManifestMember): boolean => member.role === 'trust' && rootVersionOfMember(member.path) !== null;
  let early: { manifest: Manifest; manifestSha256: string; roots: Set<string> } | null = null;
  const onManifest = (manifest: Manifest, raw: Buffer): void => {
    if (!opts.membersCheckedLater) return;
    early = { manifest, manifestSha256: createHash('sha256').update(raw).digest('hex'), roots: new Set(manifest.members.filter(isRoot).map((x) => x.path)) };
    if (early.roots.size === 0) throw new RootsRead();
  };
  const onMember = async (member: ManifestMember, stream: Readable): Promise<void> => {
    const version = member.role === 'trust' ? rootVersionOfMember(member.path) : null;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) if (version !== null) chunks.push(chunk as Buffer);
    if (version !== null) carried.push({ version, raw: Buffer.concat(chunks), source: `${m.name}:${member.path}` });
    // Consumed whole: its sha256 matched the manifest. Once every root is in, the rest waits for unpack.
    if (early && early.roots.delete(member.path) && early.roots.size === 0) throw new RootsRead();
  };
  const read = await readTarballOnce(
    input,
    (b) => {
      hash.update(b);
      size += b.length;
      opts.onChunk?.(b);
    },
    { onManifest, onMember },
    opts.readError,
  );
  const { sha256, digests: digest } = hash.digest();
  const stopped = early as { manifest: Manifest; manifestSha256: string } | null;
  const outcome = !read.ok && read.error instanceof RootsRead && stopped
    ? { ok: true as const, result: { manifest: stopped.manifest, manifestSha256: stopped.manifestSha256 } }
    : read;
  if (!outcome.ok && outcome.error instanceof OukError && outcome.error.code === 'ARCHIVE_CORRUPT') throw outcome.error;

  const { state, ignored } = advanceTrust(opts.trust, carried);
  requireUnexpired(state, opts.now);

  const sigs = m.signatures;
  if (sigs && sigs.sigs.sha256 !== sha256) {
    throw new OukError('SIGNATURE_MISMATCH', `${sigs.source} is for another file (sha256 ${sigs.sigs.sha256}, ${m.name} is ${sha256}): re-download the kit and its signature files together`);
  }
  const kitKeys = kitKeysOf(state);
  const sigstoreHint = m.sigstore?.bundle.verificationMaterial.content.publicKey.hint;
  const candidates: SignatureCandidate[] = (sigs?.sigs.signatures ?? []).map((s) => ({ keyid: s.keyid, source: sigs!.source, verify: (key) => verifyDigestSignature(s.signatureDer, digest, key) }));
  const sigDer = m.signature?.der;
  if (sigDer) {
    const hinted = kitKeys.find((k) => k.hint === sigstoreHint);
    candidates.push({ keyid: hinted ? keyidOfKey(hinted.key) : undefined, source: m.signature!.source, verify: (key) => verifyDigestSignature(sigDer, digest, key) });
  }
  const signatures = requireKitThreshold(state, candidates, `the kit ${m.name}`);
  if (opts.policy) requireKitWithinPolicy(opts.policy, state, signatures.keyids, `the kit ${m.name}`);

  if (!outcome.ok) throw outcome.error;
  const { manifest, manifestSha256 } = outcome.result;

  let sigstoreBundleVerified = false;
  if (m.sigstore) {
    const { key } = verifySigstoreBundle(m.sigstore.bundle, sha256, kitKeys);
    const sigKey = sigDer ? kitKeys.find((k) => verifyDigestSignature(sigDer, digest, k.key)) : undefined;
    if (sigDer && sigKey?.hint !== key.hint) {
      throw new OukError('SIGNATURE_MISMATCH', `the .sig and the .sigstore.json beside ${m.name} are not from the same signing: re-download the kit, its .sig and its .sigstore.json together`);
    }
    sigstoreBundleVerified = true;
  }

  return {
    sha256,
    size,
    manifest,
    manifestSha256,
    trust: state,
    carried: [...carried].sort((a, b) => a.version - b.version),
    ignoredRoots: ignored,
    signatures,
    sigstoreBundleVerified,
    attestation: m.attestation ? verifyAttestation(m.attestation.env, { sha256, trust: state, source: m.attestation.source }) : null,
  };
}
