/**
 * The verify stage's check of a kit in the bucket against the site's trust
 * (site-trust.ts), reading the tarball once; no write anywhere, so other
 * callers (a dry run) can use it with their own I/O.
 *
 * - Bare trusted keys (the implicit root): exactly as before roots existed —
 *   `<key>.sig` by one trusted key over the whole tarball, the manifest peeked
 *   from the start of the same read — then the attestation when present.
 * - A root of trust: `<key>.sigs.json` and/or `<key>.sig`, `<key>.sigstore.json`
 *   and `<key>.intoto.json` when present, read from the bucket (bounded), then
 *   signing/kit/verify-stream.ts — the same code and order as
 *   `stella ouk verify --root`: carried chain, expiry, the kit role's
 *   threshold, the reader's finding, Sigstore bundle, attestation.
 *
 * `requireAttestation` (OUK_REQUIRE_ATTESTATION) makes a missing
 * `<key>.intoto.json` SIGNATURE_MISSING on both.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createManifestPeek } from '../../bundle/manifest-peek.ts';
import { parseManifest, type Manifest } from '../../bundle/manifest.ts';
import { getStream, readSmallObject } from '../../infra/store.ts';
import { OukError } from '../../lib/errors.ts';
import {
  createBlobVerifier,
  parseSigstoreBundle,
  parseSignature,
  verifyKitStream,
  type KitMaterial,
} from '../../signing/index.ts';
import { parseEnvelope, verifyAttestation, type AttestationVerification, type DsseEnvelope } from '../../signing/attestation/index.ts';
import { parseKitSignatures } from '../../signing/kit/index.ts';
import type { CarriedRoot, ThresholdResult, TrustState } from '../../signing/root/index.ts';
import { throttledProgress, type StageContext, type StagePayload } from '../context.ts';
import type { SiteTrust } from './site-trust.ts';
import type { CryptoPolicy } from '../../lib/crypto-policy.ts';
import { requireKitWithinPolicy } from '../../signing/policy.ts';
import { keyidOfKey } from '../../signing/root/index.ts';

/** The most of a `.sig` the stage reads (the dry run reads as much). */
export const MAX_SIG_BYTES = 8 * 1024;
const MAX_SIGS_BYTES = 256 * 1024;
const MAX_SIGSTORE_BYTES = 1024 * 1024;
const MAX_ATTESTATION_BYTES = 4 * 1024 * 1024;

/** The files beside a kit in the bucket, by suffix. */
export const KIT_SIBLING_SUFFIXES = ['.sig', '.sigs.json', '.sigstore.json', '.intoto.json'] as const;

export interface CheckedKit {
  sha256: string;
  size: number;
  manifest: Manifest;
  manifestSha256: string;
  /** The trust the kit was verified against (the root reached), and the roots it carries. */
  trust: TrustState;
  carried: CarriedRoot[];
  signatures: ThresholdResult;
  /** With bare keys: the trusted key the `.sig` verified with. */
  key: { hint: string; path: string } | null;
  attestation: AttestationVerification | null;
}

export type KitCheckContext = Pick<StageContext, 'store' | 'progress' | 'now'>;

export interface KitCheckOptions {
  requireAttestation: boolean;
  /** The crypto policy in force (STELLA_CRYPTO_POLICY); none: every suite. */
  policy?: CryptoPolicy;
}

function signatureMissing(p: StagePayload, what: string, resumes = true): OukError {
  const then = resumes ? `the import resumes by itself once it arrives (or run \`stella ouk retry ${p.importId}\`)` : `then run \`stella ouk retry ${p.importId}\``;
  return new OukError('SIGNATURE_MISSING', `no ${what} beside the tarball in bucket ${p.bucket}: upload it there — ${then}`);
}

const storeRead = (key: string) => (e: unknown): Error =>
  e instanceof OukError ? e : new OukError('STORE_UNAVAILABLE', `reading ${key} from the store failed (${(e as Error).message}); will retry`, { cause: e, retryable: true });

async function readAttestationObject(p: StagePayload, ctx: KitCheckContext, opts: KitCheckOptions): Promise<{ env: DsseEnvelope; source: string } | null> {
  const key = `${p.key}.intoto.json`;
  const raw = await readSmallObject(ctx.store, p.bucket, key, MAX_ATTESTATION_BYTES);
  if (!raw) {
    if (opts.requireAttestation) throw signatureMissing(p, `release attestation ${key} (OUK_REQUIRE_ATTESTATION=true makes it mandatory)`, false);
    return null;
  }
  return { env: parseEnvelope(raw, key), source: key };
}

/** Counts the bytes read against the object's size (a short read is the store's fault: retried). */
function requireWhole(p: StagePayload, read: number, size: number): void {
  if (read !== size) throw new OukError('STORE_UNAVAILABLE', `read ${read} bytes of ${p.key}, the store says ${size}; will retry`, { retryable: true });
}

export async function checkKitInBucket(p: StagePayload, ctx: KitCheckContext, site: SiteTrust, size: number, opts: KitCheckOptions): Promise<CheckedKit> {
  return site.state.implicit ? checkWithKeys(p, ctx, site.state, size, opts) : checkWithRoot(p, ctx, site.state, size, opts);
}

async function checkWithKeys(p: StagePayload, ctx: KitCheckContext, trust: TrustState, size: number, opts: KitCheckOptions): Promise<CheckedKit> {
  const sigKey = `${p.key}.sig`;
  const sigText = await readSmallObject(ctx.store, p.bucket, sigKey, MAX_SIG_BYTES);
  if (!sigText) throw signatureMissing(p, `signature ${sigKey}`);
  const verifier = createBlobVerifier(parseSignature(sigText), trust.trustedKeys ?? []);
  const attestation = await readAttestationObject(p, ctx, opts);
  const peek = createManifestPeek();
  const progress = throttledProgress(ctx.progress);
  const body: Readable = await getStream(ctx.store, p.bucket, p.key);
  let read = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      verifier.update(b);
      read += b.length;
      if (!peek.done && !peek.write(b)) await peek.drained();
      progress.update({ unit: 'bytes', done: read, total: size });
    }
  } catch (e) {
    body.destroy();
    throw storeRead(p.key)(e);
  }
  peek.end();
  progress.flush();
  requireWhole(p, read, size);
  // Throws SIGNATURE_MISMATCH: nothing from the bundle is trusted before this line.
  const verified = verifier.finish();
  if (opts.policy) requireKitWithinPolicy(opts.policy, trust, [keyidOfKey(verified.key.key)], `the kit ${p.key}`);
  const raw = await peek.result;
  const manifest = parseManifest(raw);
  return {
    sha256: verified.sha256,
    size: verified.size,
    manifest,
    manifestSha256: createHash('sha256').update(raw).digest('hex'),
    trust,
    carried: [],
    signatures: { keyids: [], threshold: 1, rootVersion: trust.root.signed.version },
    key: { hint: verified.key.hint, path: verified.key.path },
    attestation: attestation ? verifyAttestation(attestation.env, { sha256: verified.sha256, trust, source: attestation.source }) : null,
  };
}

async function checkWithRoot(p: StagePayload, ctx: KitCheckContext, trust: TrustState, size: number, opts: KitCheckOptions): Promise<CheckedKit> {
  const read = async (suffix: string, max: number): Promise<{ raw: Buffer; source: string } | null> => {
    const key = `${p.key}${suffix}`;
    const raw = await readSmallObject(ctx.store, p.bucket, key, max);
    return raw ? { raw, source: key } : null;
  };
  const sig = await read('.sig', MAX_SIG_BYTES);
  const sigs = await read('.sigs.json', MAX_SIGS_BYTES);
  if (!sig && !sigs) throw signatureMissing(p, `signatures (${p.key}.sigs.json, or ${p.key}.sig)`);
  const sigstore = await read('.sigstore.json', MAX_SIGSTORE_BYTES);
  const attestation = await readAttestationObject(p, ctx, opts);
  const material: KitMaterial = {
    name: p.key,
    signature: sig ? { der: parseSignature(sig.raw), source: sig.source } : null,
    signatures: sigs ? { sigs: parseKitSignatures(sigs.raw, sigs.source), source: sigs.source } : null,
    sigstore: sigstore ? { bundle: parseSigstoreBundle(sigstore.raw), source: sigstore.source } : null,
    attestation,
  };
  const progress = throttledProgress(ctx.progress);
  let done = 0;
  const body = await getStream(ctx.store, p.bucket, p.key);
  const r = await verifyKitStream(body, material, {
    trust,
    now: ctx.now(),
    onChunk: (b) => {
      done += b.length;
      progress.update({ unit: 'bytes', done, total: size });
    },
    readError: storeRead(p.key),
    // unpack checks every member against the manifest; verify needs the manifest and the roots
    membersCheckedLater: true,
    ...(opts.policy ? { policy: opts.policy } : {}),
  }).catch((e: unknown) => {
    // A short read is the store's fault (retried), whatever the half-read kit looked like.
    requireWhole(p, done, size);
    throw e;
  });
  requireWhole(p, r.size, size);
  progress.flush();
  return {
    sha256: r.sha256,
    size: r.size,
    manifest: r.manifest,
    manifestSha256: r.manifestSha256,
    trust: r.trust,
    carried: r.carried,
    signatures: r.signatures,
    key: null,
    attestation: r.attestation,
  };
}
