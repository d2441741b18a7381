/**
 * Bundle versions are date tags: `YYYY-MM-DD`, optionally `.N` for a second
 * build the same day (`2026-11-28.2`). They order by date, then N; a plain date
 * is N = 0. Versions only go forward on a host (see functions/verify.ts).
 */
import { OukError } from '../lib/errors.ts';

const VERSION_RE = /^(\d{4})-(\d{2})-(\d{2})(?:\.(\d{1,4}))?$/;

export interface BundleVersion {
  date: string;
  serial: number;
}

export function parseVersion(tag: string): BundleVersion {
  const m = VERSION_RE.exec(tag);
  if (!m) {
    throw new OukError('MANIFEST_INVALID', `bundle version "${tag}" is not a date tag (YYYY-MM-DD or YYYY-MM-DD.N)`);
  }
  const date = `${m[1]}-${m[2]}-${m[3]}`;
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== date) {
    throw new OukError('MANIFEST_INVALID', `bundle version "${tag}" is not a real calendar date`);
  }
  return { date, serial: m[4] ? Number(m[4]) : 0 };
}

export function isVersion(tag: string): boolean {
  try {
    parseVersion(tag);
    return true;
  } catch {
    return false;
  }
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a);
  const vb = parseVersion(b);
  if (va.date !== vb.date) return va.date < vb.date ? -1 : 1;
  return va.serial - vb.serial;
}

/** Midnight UTC of the version's date: the default `created` time, so builds are reproducible. */
export function versionEpoch(tag: string): Date {
  const v = parseVersion(tag);
  return new Date(Date.parse(`${v.date}T00:00:00Z`) + v.serial * 1000);
}

export function todayVersion(now: Date = new Date()): string {
  return now.toISOString().slice(0, 10);
}
