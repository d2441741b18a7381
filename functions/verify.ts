/**
 * Stage 1, verify: is this tarball what the publisher signed, and may it be
 * imported here?
 *
 *  1. `<key>.sig` must be in the bucket. Missing, it is SIGNATURE_MISSING at
 *     once (the tarball is complete, so waiting would only hide the fault);
 *     the import resumes by itself once the `.sig` arrives (the webhook's
 *     `.sig` event, or the reconciler's next pass).
 *  2. One GET of the tarball feeds the signature check (every trusted key from
 *     OUK_TRUSTED_KEYS, never a key from the bundle) and, on the side, gunzips
 *     just enough to take manifest.json, the first member.
 *  3. Only once the signature holds is the manifest parsed, and what it says
 *     (version, kind, base, digest) goes on the import record — so a refused
 *     kit is named by its version too — then checked against the host's
 *     policy (functions/common/policy.ts). A delta whose base is not active
 *     yet but on its way (being imported, or in the bucket beside it) waits
 *     for it (OukWait: the queue runs verify again a few seconds later,
 *     counting no attempt); one whose base is nowhere is DELTA_BASE_MISMATCH,
 *     and the reconciler resumes it if its base becomes active later.
 *  4. The kit's signed `created` becomes a time this site has seen
 *     (infra/signed-time.ts, never going back): ages are counted from it when
 *     the host clock is behind (lib/freshness.ts). Recorded only once the
 *     policy passed — a kit from the future (BUNDLE_FROM_FUTURE) cannot push it
 *     ahead — and before verify is done, so a crash between the two records
 *     it again on the retry.
 *  5. Verify is recorded done with the tarball's sha256, the manifest and its
 *     sha256: unpack checks that it reads the very same bytes.
 *
 * Idempotent: a verify already recorded done returns its recorded result.
 */
import { createHash } from 'node:crypto';
import { parseManifest, type Manifest } from '../bundle/manifest.ts';
import { isOukError, OukError, OukWait } from '../lib/errors.ts';
import { createBlobVerifier, parseSignature } from '../signing/index.ts';
import { throttledProgress, type StageContext, type StagePayload } from './context.ts';
import { createManifestPeek } from '../bundle/manifest-peek.ts';
import { getStream, normaliseEtag, readSmallObject, statOrNull } from '../infra/store.ts';
import { checkPolicy, pendingBase } from './common/policy.ts';
import { requireImport, stageDone, stageIsDone } from '../infra/import-records.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { advanceSignedTime } from '../infra/signed-time.ts';

export interface VerifyResult {
  digest: string;
  size: number;
  version: string;
  kind: Manifest['kind'];
  manifestSha256: string;
  /** Sigstore hint of the trusted key that verified the signature. */
  keyHint: string;
  keyPath: string;
}

/** The most of a `.sig` the stage reads (the dry run reads as much). */
export const MAX_SIG_BYTES = 8 * 1024;
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

  const sigKey = `${p.key}.sig`;
  const sigText = await readSmallObject(ctx.store, p.bucket, sigKey, MAX_SIG_BYTES);
  if (!sigText) {
    throw new OukError(
      'SIGNATURE_MISSING',
      `no signature ${sigKey} beside the tarball in bucket ${p.bucket}: upload it there — the import resumes by itself once it arrives (or run \`stella ouk retry ${p.importId}\`)`,
    );
  }
  const sigDer = parseSignature(sigText);
  const keys = await ctx.trustedKeys();
  const verifier = createBlobVerifier(sigDer, keys);
  const peek = createManifestPeek();
  const progress = throttledProgress(ctx.progress);

  const body = await getStream(ctx.store, p.bucket, p.key);
  let read = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      verifier.update(b);
      read += b.length;
      if (!peek.done && !peek.write(b)) await peek.drained();
      progress.update({ unit: 'bytes', done: read, total: stat.size });
    }
  } catch (e) {
    body.destroy();
    throw new OukError('STORE_UNAVAILABLE', `reading ${p.key} from the store failed (${(e as Error).message}); will retry`, { cause: e, retryable: true });
  }
  peek.end();
  progress.flush();
  if (read !== stat.size) {
    throw new OukError('STORE_UNAVAILABLE', `read ${read} bytes of ${p.key}, the store says ${stat.size}; will retry`, { retryable: true });
  }

  // Throws SIGNATURE_MISMATCH: nothing from the bundle is trusted before this line.
  const verified = verifier.finish();
  const raw = await peek.result;
  const manifest = parseManifest(raw);
  const manifestSha256 = createHash('sha256').update(raw).digest('hex');
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
  await ctx.pool.query(
    `UPDATE ouk_meta.imports SET digest = $2, size = $3, version = $4, kind = $5, base_version = $6, manifest = $7, manifest_sha256 = $8, updated_at = now() WHERE id = $1`,
    [p.importId, facts.digest, facts.size, facts.version, facts.kind, facts.base_version, facts.manifest, facts.manifest_sha256],
  );
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

  const result: VerifyResult = {
    digest: verified.sha256,
    size: verified.size,
    version: manifest.bundleVersion,
    kind: manifest.kind,
    manifestSha256,
    keyHint: verified.key.hint,
    keyPath: verified.key.path,
  };
  await stageDone(ctx.pool, p.importId, 'verify', result, facts);
  ctx.logger.info({ version: manifest.bundleVersion, kind: manifest.kind, digest: result.digest, key: verified.key.path }, 'bundle signature verified');
  return result;
}
