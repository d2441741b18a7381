/**
 * What a verified manifest must satisfy before it may become the active DB:
 * a kit is not from the future (its `created` no more than a small skew after
 * this site's clock, whatever --force says), versions only go forward (a
 * replayed old, validly signed kit is refused), an expired kit is refused, and
 * a delta applies only to the exact DB it was built against. verify checks it
 * first; activate checks it again under the state lock, since another import
 * may have been activated in between.
 *
 * A delta whose base is not active yet may only be early: `pendingBase` says
 * whether that base is on its way (being imported, or in the bucket beside the
 * delta), in which case verify waits for it instead of refusing the delta.
 */
import path from 'node:path';
import type { Manifest } from '../../bundle/manifest.ts';
import { compareVersions } from '../../bundle/version.ts';
import { OukError } from '../../lib/errors.ts';
import type { ActiveDbPointer } from '../../infra/active-db.ts';
import type { Pool } from '../../infra/db.ts';
import { baseCandidatesUnderWay, importExistsFor } from '../../infra/import-records/index.ts';
import { normaliseEtag, statOrNull, type ObjectStore } from '../../infra/store.ts';

export interface PolicyFlags {
  /** stella ouk import --allow-downgrade */
  allowDowngrade: boolean;
  /** stella ouk import --force: accept an expired kit (never one from the future) */
  force: boolean;
}

/** How far a kit's `created` may be ahead of this site's clock (OUK_MAX_CLOCK_SKEW_SECONDS): clocks drift a little. */
export const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 600;

export function checkPolicy(manifest: Manifest, pointer: ActiveDbPointer, flags: PolicyFlags, now: Date, maxSkewSeconds = DEFAULT_MAX_CLOCK_SKEW_SECONDS): void {
  const v = manifest.bundleVersion;
  // First, and not lifted by --force: an accepted kit from the future would refuse every real kit after it as a downgrade.
  const created = Date.parse(manifest.created);
  if (created - now.getTime() > maxSkewSeconds * 1000) {
    throw new OukError(
      'BUNDLE_FROM_FUTURE',
      `bundle ${v} was created at ${new Date(created).toISOString()}, ${describeSpan(created - now.getTime())} after this site's clock (${now.toISOString()}; ${maxSkewSeconds} s of skew allowed, OUK_MAX_CLOCK_SKEW_SECONDS): it was not imported, and --force does not change that — check this host's clock (NTP), or get the kit from the publisher again`,
    );
  }
  const expires = Date.parse(manifest.expires);
  if (expires <= now.getTime() && !flags.force) {
    throw new OukError(
      'BUNDLE_EXPIRED',
      `bundle ${v} expired at ${new Date(expires).toISOString()}: its advisories are out of date — import a newer kit, or pass --force to import it anyway`,
    );
  }
  // Versions first: a replayed old delta is a downgrade, whatever its base.
  if (pointer.activeVersion && compareVersions(v, pointer.activeVersion) <= 0 && !flags.allowDowngrade) {
    const same = compareVersions(v, pointer.activeVersion) === 0;
    throw new OukError(
      'DOWNGRADE_REFUSED',
      `bundle ${v} is ${same ? 'the same version as' : 'older than'} the active ${pointer.activeVersion}: versions only go forward (a replayed old kit is refused) — import a newer kit, or pass --allow-downgrade if you mean it`,
    );
  }
  if (manifest.kind === 'delta') {
    const base = manifest.base!;
    const resumes = `(this delta then resumes by itself once ${base.version} is active)`;
    if (!pointer.activeVersion) {
      throw new OukError('DELTA_BASE_MISMATCH', `delta ${v} (built on ${base.version}) cannot apply: no DB is active — import the full kit ${base.version} first ${resumes}`);
    }
    if (base.version !== pointer.activeVersion || base.dbDigest !== pointer.activeDigest) {
      const why = base.version === pointer.activeVersion ? ` (same version, different content: base digest ${base.dbDigest.slice(0, 12)}…, active ${String(pointer.activeDigest).slice(0, 12)}…)` : '';
      const fix = baseIsAhead(base.version, pointer) ? `import the full kit ${base.version} or the missing deltas ${resumes}` : 'import the full kit or the missing deltas';
      throw new OukError('DELTA_BASE_MISMATCH', `delta ${v} (built on ${base.version}) cannot apply to active ${pointer.activeVersion}${why}: ${fix}`);
    }
  }
}

/** Whether a delta's base may still become the active DB going forward: newer than the active one, or nothing active. */
export function baseIsAhead(baseVersion: string, pointer: Pick<ActiveDbPointer, 'activeVersion'>): boolean {
  return !pointer.activeVersion || compareVersions(baseVersion, pointer.activeVersion) > 0;
}

function describeSpan(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 120) return `${min} min`;
  const h = Math.round(min / 60);
  return h < 48 ? `${h} h` : `${Math.round(h / 24)} days`;
}

/** The file name a kit of `version` goes by (`stella-ouk-2026-12-11.tar.gz`). */
export function kitFileName(version: string): string {
  return `stella-ouk-${version}.tar.gz`;
}

/**
 * Whether the base of a delta that cannot apply yet is on its way, and how:
 * an import in flight of that version (and DB digest, once verified), an
 * import in flight of the base's file beside the delta not verified yet, or
 * that file in the bucket with no import started. Null: the base is nowhere
 * (or its import failed) — the delta is refused.
 */
export async function pendingBase(
  deps: { pool: Pool; store: ObjectStore },
  delta: { importId: string; bucket: string; key: string },
  base: { version: string; dbDigest: string },
): Promise<string | null> {
  const dir = path.posix.dirname(delta.key);
  const besideKey = `${dir === '.' ? '' : `${dir}/`}${kitFileName(base.version)}`;
  const underWay = await baseCandidatesUnderWay(deps.pool, { bucket: delta.bucket, excludeId: delta.importId, version: base.version, objectKey: besideKey });
  for (const row of underWay) {
    if (row.version === base.version && (row.dbDigest === null || row.dbDigest === base.dbDigest)) return `import ${row.id} of ${row.objectKey} is ${row.state}`;
    if (row.version === null) return `${row.objectKey} is being imported (import ${row.id}, ${row.state})`;
  }
  const stat = await statOrNull(deps.store, delta.bucket, besideKey);
  if (!stat) return null;
  const known = await importExistsFor(deps.pool, delta.bucket, besideKey, normaliseEtag(stat.etag));
  return known ? null : `${besideKey} is in the bucket, its import not started yet`;
}
