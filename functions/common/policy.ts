/**
 * What a verified manifest must satisfy before it may become the active DB:
 * a kit is not from the future (its `created` no more than a small skew after
 * this site's clock, whatever --force says), versions only go forward (a
 * replayed old, validly signed kit is refused), an expired kit is refused, and
 * a delta applies only to the exact DB it was built against. verify checks it
 * first; activate checks it again under the state lock, since another import
 * may have been activated in between.
 */
import type { Manifest } from '../../bundle/manifest.ts';
import { compareVersions } from '../../bundle/version.ts';
import { OukError } from '../../lib/errors.ts';
import type { ActiveDbPointer } from '../../infra/active-db.ts';

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
    if (!pointer.activeVersion) {
      throw new OukError('DELTA_BASE_MISMATCH', `delta for ${base.version} cannot apply: no DB is active — import the full kit first`);
    }
    if (base.version !== pointer.activeVersion || base.dbDigest !== pointer.activeDigest) {
      const why = base.version === pointer.activeVersion ? ` (same version, different content: base digest ${base.dbDigest.slice(0, 12)}…, active ${String(pointer.activeDigest).slice(0, 12)}…)` : '';
      throw new OukError(
        'DELTA_BASE_MISMATCH',
        `delta for ${base.version} cannot apply to active ${pointer.activeVersion}${why}: import the full kit or the missing deltas`,
      );
    }
  }
}

function describeSpan(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 120) return `${min} min`;
  const h = Math.round(min / 60);
  return h < 48 ? `${h} h` : `${Math.round(h / 24)} days`;
}
