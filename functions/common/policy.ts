/**
 * What a verified manifest must satisfy before it may become the active DB:
 * versions only go forward (a replayed old, validly signed kit is refused), an
 * expired kit is refused, and a delta applies only to the exact DB it was built
 * against. verify checks it first; activate checks it again under the state
 * lock, since another import may have been activated in between.
 */
import type { Manifest } from '../../bundle/manifest.ts';
import { compareVersions } from '../../bundle/version.ts';
import { OukError } from '../../lib/errors.ts';
import type { ActiveDbPointer } from '../../infra/active-db.ts';

export interface PolicyFlags {
  /** stella ouk import --allow-downgrade */
  allowDowngrade: boolean;
  /** stella ouk import --force: accept an expired kit */
  force: boolean;
}

export function checkPolicy(manifest: Manifest, pointer: ActiveDbPointer, flags: PolicyFlags, now: Date): void {
  const v = manifest.bundleVersion;
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
