/**
 * RubyGems: Gem::Version (rubygems lib/rubygems/version.rb).
 *
 * A version is valid when it matches Gem::Version::ANCHORED_VERSION_PATTERN.
 * "-" reads as ".pre."; the segments are the runs of digits (numbers) and of
 * letters (strings); trailing zero numbers are dropped from the numeric part
 * and from the part after the first string ("canonical segments"); then
 * segment by segment, missing = 0, a string sorts before a number, numbers as
 * numbers and strings as strings.
 *
 * Implemented here rather than with @renovatebot/ruby-semver, whose JS numbers
 * lose precision above 2^53 (the conformance vectors check that).
 */
import { compareDigits, compareStrings, type VersionScheme } from './types.ts';

const ANCHORED = /^\s*[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\s*$/;

type Segment = string; // digits = number, else word

const isNum = (s: Segment): boolean => /^\d/.test(s);

function dropTrailingZeros(segs: Segment[]): Segment[] {
  let end = segs.length;
  while (end > 0 && isNum(segs[end - 1]!) && /^0+$/.test(segs[end - 1]!)) end--;
  return segs.slice(0, end);
}

export function canonicalSegments(version: string): Segment[] {
  const segs = version.trim().replace(/-/g, '.pre.').match(/[0-9]+|[a-z]+/gi) ?? [];
  const firstString = segs.findIndex((s) => !isNum(s));
  const numeric = firstString === -1 ? segs : segs.slice(0, firstString);
  const rest = firstString === -1 ? [] : segs.slice(firstString);
  return [...dropTrailingZeros(numeric), ...dropTrailingZeros(rest)];
}

function compareGem(a: string, b: string): number {
  const x = canonicalSegments(a);
  const y = canonicalSegments(b);
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const l = x[i] ?? '0';
    const r = y[i] ?? '0';
    const ln = isNum(l);
    const rn = isNum(r);
    if (ln && rn) {
      const d = compareDigits(l, r);
      if (d !== 0) return d;
    } else if (ln !== rn) {
      return ln ? 1 : -1;
    } else if (l !== r) {
      return compareStrings(l, r);
    }
  }
  return 0;
}

export const rubygems: VersionScheme = {
  name: 'Gem::Version',
  invalidReason: (v) => (v.trim() !== '' && ANCHORED.test(v) ? null : 'not a Gem::Version (digits, dot-separated segments, optional -prerelease)'),
  compare: compareGem,
};
