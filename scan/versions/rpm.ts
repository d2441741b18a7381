/**
 * RPM distributions (AlmaLinux, Rocky Linux, Red Hat, openSUSE, SUSE, Mageia,
 * openEuler, Photon OS): rpm's rpmvercmp (rpm.org, lib/rpmvercmp.c) applied
 * to epoch, version and release of [epoch:]version[-release].
 *
 * rpmvercmp walks both strings: characters other than ASCII letters, digits,
 * "~" and "^" separate segments; "~" sorts before anything (even the end);
 * "^" sorts after the end but before anything else; a digit run beats a
 * letter run; digit runs compare as numbers, letter runs as strcmp; whichever
 * string has segments left wins. A missing epoch is 0. A version with a
 * release sorts after the same version without one (OSV's convention, as
 * osv-scalibr does), which rpm's own range matching would call equal.
 */
import { compareDigits, compareStrings, type VersionScheme } from './types.ts';

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string | undefined): boolean => c !== undefined && /[A-Za-z]/.test(c);
const isSep = (c: string | undefined): boolean => c !== undefined && !isDigit(c) && !isAlpha(c) && c !== '~' && c !== '^';

export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (isSep(a[i])) i++;
    while (isSep(b[j])) j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]);
    const run = numeric ? isDigit : isAlpha;
    const si = i;
    const sj = j;
    while (run(a[i])) i++;
    while (run(b[j])) j++;
    if (sj === j) return numeric ? 1 : -1; // segments of different kinds: numbers are newer
    const x = a.slice(si, i);
    const y = b.slice(sj, j);
    const d = numeric ? compareDigits(x, y) : compareStrings(x, y);
    if (d !== 0) return d;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

interface Evr {
  epoch: string;
  version: string;
  release: string | null;
}

export function parseEvr(input: string): Evr {
  const s = input.trim();
  let epoch = '0';
  let vr = s;
  const colon = s.indexOf(':');
  if (colon !== -1 && /^\d+$/.test(s.slice(0, colon))) {
    epoch = s.slice(0, colon);
    vr = s.slice(colon + 1);
  }
  const dash = vr.lastIndexOf('-');
  return dash === -1 ? { epoch, version: vr, release: null } : { epoch, version: vr.slice(0, dash), release: vr.slice(dash + 1) };
}

export function compareRpm(a: string, b: string): number {
  const x = parseEvr(a);
  const y = parseEvr(b);
  const d = rpmvercmp(x.epoch, y.epoch) || rpmvercmp(x.version, y.version);
  if (d !== 0) return d;
  if (x.release === null || y.release === null) return x.release === y.release ? 0 : x.release === null ? -1 : 1;
  return rpmvercmp(x.release, y.release);
}

export const rpm: VersionScheme = {
  name: 'rpm',
  invalidReason(v) {
    const s = v.trim();
    if (s === '') return 'empty version';
    if (!/^(\d+:)?[A-Za-z0-9._+~^]+(-[A-Za-z0-9._+~^]+)?$/.test(s)) return 'not an rpm [epoch:]version[-release]';
    return null;
  },
  compare: compareRpm,
};
