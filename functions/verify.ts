/**
 * Stage 1, verify: is this tarball what the publisher signed, and may it be
 * imported here?
 *
 *  1. The site's trust (common/site-trust.ts): the pinned root
 *     (OUK_TRUST_ROOT) moved forward through the roots PostgreSQL holds, else
 *     the bare keys of OUK_TRUSTED_KEYS — never a key from the bundle.
 *  2. The signature material must be in the bucket beside the tarball
 *     (`<key>.sig`; against a root `<key>.sigs.json` and/or `<key>.sig`, with
 *     `.sigstore.json` and `.intoto.json` when present). Missing, it is
 *     SIGNATURE_MISSING at once (the tarball is complete, so waiting would
 *     only hide the fault); the import resumes by itself once it arrives (the
 *     webhook's event, or the reconciler's next pass).
 *  3. One GET of the tarball decides (common/kit-check.ts): against bare keys
 *     the `.sig` and a peek at manifest.json, as always; against a root the
 *     same check as `stella ouk verify --root` — carried chain (ROOT_INVALID),
 *     expiry (ROOT_EXPIRED), the kit role's threshold (SIGNATURE_THRESHOLD,
 *     KEY_REVOKED), the Sigstore bundle; then the release attestation when
 *     present or required (ATTESTATION_MISMATCH). The bundle reader stops
 *     once it has the manifest and the carried roots (unpack checks every
 *     member), so a root costs what bare keys cost.
 *  4. Only once the signature holds is the manifest parsed, and what it says
 *     (version, kind, base, digest) goes on the import record — so a refused
 *     kit is named by its version too — then checked against the host's
 *     policy (functions/common/policy.ts). A delta whose base is not active
 *     yet but on its way (being imported, or in the bucket beside it) waits
 *     for it (OukWait: the queue runs verify again a few seconds later,
 *     counting no attempt); one whose base is nowhere is DELTA_BASE_MISMATCH,
 *     and the reconciler resumes it if its base becomes active later.
 *  5. The kit's signed `created` becomes a time this site has seen
 *     (infra/signed-time.ts, never going back): ages are counted from it when
 *     the host clock is behind (lib/freshness.ts). Recorded only once the
 *     policy passed — a kit from the future (BUNDLE_FROM_FUTURE) cannot push it
 *     ahead — and before verify is done, so a crash between the two records
 *     it again on the retry. So do the roots the kit moved the site to
 *     (infra/trust-roots.ts, never going back).
 *  6. Verify is recorded done with the tarball's sha256, the manifest and its
 *     sha256 (unpack checks that it reads the very same bytes), the trust it
 *     was verified against and the attested feed snapshots.
 *
 * Idempotent: a verify already recorded done returns its recorded result.
 */
import type { Manifest } from '../bundle/manifest.ts';
import { isOukError, OukError, OukWait } from '../lib/errors.ts';
import type { AttestedFeed } from '../signing/attestation/index.ts';
import type { StageContext, StagePayload } from './context.ts';
import { normaliseEtag, statOrNull } from '../infra/store.ts';
import { checkPolicy, pendingBase } from './common/policy.ts';
import { recordVerifiedFacts, requireImport, stageDone, stageIsDone } from '../infra/import-records/index.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { advanceSignedTime } from '../infra/signed-time.ts';
import { checkKitInBucket } from './common/kit-check.ts';
import { loadSiteTrust, recordReachedRoots } from './common/site-trust.ts';

export interface VerifyResult {
  digest: string;
  size: number;
  version: string;
  kind: Manifest['kind'];
  manifestSha256: string;
  /** Sigstore hint of the trusted key that verified the signature (bare keys; empty against a root). */
  keyHint: string;
  keyPath: string;
  /** The trust the kit was verified against (absent on records older than roots). */
  trust?: VerifiedTrust;
  /** The release attestation's statement, when the kit had one. */
  attestation?: VerifiedAttestation | null;
}

export interface VerifiedTrust {
  /** `OUK_TRUST_ROOT=…` or `OUK_TRUSTED_KEYS`. */
  source: string;
  implicit: boolean;
  rootVersion: number;
  /** Root versions walked, oldest first. */
  chain: number[];
  /** The root's expiry (null: bare keys never expire). */
  expires: string | null;
  /** Kit key ids whose signatures met the threshold (empty with bare keys). */
  keyids: string[];
  threshold: number;
  /** Root versions stored by this verify (the site's root moved forward). */
  stored: number[];
}

export interface VerifiedAttestation {
  source: string;
  subject: string;
  builder: string;
  keyids: string[];
  feeds: AttestedFeed[];
}

/** How often a delta waiting for its base looks again. */
export const BASE_WAIT_MS = 5000;

export async function verify(p: StagePayload, ctx: StageContext): Promise<VerifyResult> {
  const rec = await requireImport(ctx.pool, p.importId);
  if (stageIsDone(rec, 'verify') && rec.stages.verify?.result) return rec.stages.verify.result as VerifyResult;

  const stat = await statOrNull(ctx.store, p.bucket, p.key);
  if (!stat) {
    throw new OukError('INPUT_NOT_FOUND', `${p.bucket}/${p.key} is no longer in the bucket: upload it again (a new upload starts a new import)`);
  }
  if (normaliseEtag(stat.etag) !== normaliseEtag(p.etag)) {
    throw new OukError(
      'DIGEST_CHANGED',
      `${p.key} was replaced in the bucket since this import started (ETag ${p.etag} → ${stat.etag}): the new upload is imported on its own; this one stops`,
    );
  }

  const site = await loadSiteTrust({ trustRoot: ctx.config.trustRoot, trustedKeys: ctx.config.trustedKeys }, { pool: ctx.pool, trustedKeys: () => ctx.trustedKeys() });
  if (site.warning) ctx.logger.warn(site.warning);
  const checked = await checkKitInBucket(p, ctx, site, stat.size, { requireAttestation: ctx.config.requireAttestation ?? false, ...(ctx.config.cryptoPolicy ? { policy: ctx.config.cryptoPolicy } : {}) });
  const manifest = checked.manifest;
  const manifestSha256 = checked.manifestSha256;
  const verified = { sha256: checked.sha256, size: checked.size };
  // What the signed manifest says, on the record before the policy: a refused kit is named by its version too.
  const facts = {
    digest: verified.sha256,
    size: verified.size,
    version: manifest.bundleVersion,
    kind: manifest.kind,
    base_version: manifest.base?.version ?? null,
    manifest: JSON.stringify(manifest),
    manifest_sha256: manifestSha256,
  };
  await recordVerifiedFacts(ctx.pool, p.importId, facts);
  try {
    checkPolicy(manifest, await readActivePointer(ctx.pool), { allowDowngrade: rec.allowDowngrade, force: rec.force }, ctx.now(), ctx.config.maxClockSkewSeconds);
  } catch (e) {
    if (isOukError(e) && e.code === 'DELTA_BASE_MISMATCH' && manifest.base) {
      const pending = await pendingBase(ctx, p, manifest.base);
      if (pending) {
        throw new OukWait(
          'DELTA_BASE_MISMATCH',
          `delta ${manifest.bundleVersion} (built on ${manifest.base.version}) waits for its base: ${pending} — it continues by itself once ${manifest.base.version} is active`,
          BASE_WAIT_MS,
        );
      }
    }
    throw e;
  }

  await advanceSignedTime(ctx.pool, new Date(manifest.created), { importId: p.importId, version: manifest.bundleVersion }, ctx.now());

  const stored = await recordReachedRoots(ctx.pool, site, checked.trust, checked.carried, { importId: p.importId, kitVersion: manifest.bundleVersion, actor: `system (${rec.startedBy ?? 'pipeline'} import)` }, ctx.now());
  if (stored.length) ctx.logger.info({ versions: stored, source: site.state.source }, `the site's root of trust moved to v${checked.trust.root.signed.version}`);

  const t = checked.trust;
  const a = checked.attestation;
  const result: VerifyResult = {
    digest: verified.sha256,
    size: verified.size,
    version: manifest.bundleVersion,
    kind: manifest.kind,
    manifestSha256,
    keyHint: checked.key?.hint ?? '',
    keyPath: checked.key?.path ?? '',
    trust: {
      source: t.source,
      implicit: t.implicit,
      rootVersion: t.root.signed.version,
      chain: t.chain,
      expires: t.implicit ? null : t.root.signed.expires,
      keyids: checked.signatures.keyids,
      threshold: checked.signatures.threshold,
      stored,
    },
    attestation: a ? { source: a.source, subject: a.subjectName, builder: a.builder.id, keyids: a.signatures.keyids, feeds: a.feeds } : null,
  };
  await stageDone(ctx.pool, p.importId, 'verify', result, facts);
  ctx.logger.info({ version: manifest.bundleVersion, kind: manifest.kind, digest: result.digest, key: result.keyPath || undefined, root: t.implicit ? undefined : t.root.signed.version }, 'bundle signature verified');
  return result;
}
