/**
 * Packagist (Composer): PHP's version_compare() (php.net/version_compare), which
 * Composer's Comparator uses, after dropping a leading "v"/"V":
 *
 * - "-", "_" and "+" become "."; a "." is inserted at every change between a
 *   digit and a non-digit; the string is split at ".";
 * - two numbers compare as numbers; otherwise "special forms" by rank:
 *   any other string < dev < alpha = a < beta = b < RC = rc < "#" (a number)
 *   < pl = p;
 * - when one side runs out, a remaining number makes its side greater,
 *   a remaining word is compared against "#".
 *
 * Branch versions ("dev-main") order (below every release) but are not
 * checkable installed versions.
 */
import { compareDigits, type VersionScheme } from './types.ts';

function canonical(v: string): string[] {
  return v
    .trim()
    .replace(/^[vV]/, '')
    .replace(/[-_+]/g, '.')
    .replace(/([^\d.])(\d)/g, '$1.$2')
    .replace(/(\d)([^\d.])/g, '$1.$2')
    .split('.');
}

/** PHP's special forms, matched by prefix in this order. */
const SPECIAL: readonly [string, number][] = [
  ['dev', 0],
  ['alpha', 1],
  ['a', 1],
  ['beta', 2],
  ['b', 2],
  ['RC', 3],
  ['rc', 3],
  ['#', 4],
  ['pl', 5],
  ['p', 5],
];

function specialRank(s: string): number {
  for (const [form, rank] of SPECIAL) if (s.startsWith(form)) return rank;
  return -6;
}

const NUMBER = /^\d+$/;

function compareParts(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const xn = NUMBER.test(x);
    const yn = NUMBER.test(y);
    let d: number;
    if (xn && yn) d = compareDigits(x, y);
    else d = Math.sign(specialRank(xn ? '#' : x) - specialRank(yn ? '#' : y));
    if (d !== 0) return d;
  }
  if (a.length > b.length) return NUMBER.test(a[n]!) ? 1 : compareParts(a.slice(n), ['#']);
  if (a.length < b.length) return NUMBER.test(b[n]!) ? -1 : compareParts(['#'], b.slice(n));
  return 0;
}

export const packagist: VersionScheme = {
  name: 'Composer',
  invalidReason(v) {
    const s = v.trim();
    if (/^dev-|\.x-dev$/i.test(s)) return 'a branch (dev-) version, not a release';
    return /^[vV]?\d[0-9A-Za-z.+_-]*$/.test(s) ? null : 'not a Composer version';
  },
  compare: (a, b) => compareParts(canonical(a), canonical(b)),
};
