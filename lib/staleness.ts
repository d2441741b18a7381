/**
 * How old the active vulnerability DB is, and whether that deserves a warning,
 * the way Trivy and Grype warn about an out-of-date DB. The threshold is
 * OUK_WARN_AGE_HOURS (config.warnAgeHours, default 48). `stella ouk status` and
 * `/readyz` both use this, so they always agree.
 */

export interface Staleness {
  /** No active DB at all. */
  missing: boolean;
  activatedAt: string | null;
  ageSeconds: number | null;
  warnAgeHours: number;
  stale: boolean;
  /** A one-line operator message when stale or missing, else null. */
  warning: string | null;
}

/** `3d 4h`, `5h 12m`, `42m`, `12s`. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

export function staleness(activatedAt: Date | string | null | undefined, warnAgeHours: number, now: Date = new Date()): Staleness {
  if (activatedAt === null || activatedAt === undefined) {
    return {
      missing: true,
      activatedAt: null,
      ageSeconds: null,
      warnAgeHours,
      stale: false,
      warning: 'no vulnerability DB is active: import an OUK bundle (stella ouk import FILE) before scanning',
    };
  }
  const at = activatedAt instanceof Date ? activatedAt : new Date(activatedAt);
  const ageSeconds = Math.max(0, (now.getTime() - at.getTime()) / 1000);
  const stale = ageSeconds > warnAgeHours * 3600;
  return {
    missing: false,
    activatedAt: at.toISOString(),
    ageSeconds: Math.round(ageSeconds),
    warnAgeHours,
    stale,
    warning: stale
      ? `the active vulnerability DB is ${formatAge(ageSeconds)} old (activated ${at.toISOString()}), older than OUK_WARN_AGE_HOURS=${warnAgeHours}h: findings may miss recent advisories; import a newer OUK bundle`
      : null,
  };
}
