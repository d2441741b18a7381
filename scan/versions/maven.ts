/**
 * Maven: the POM reference's "Version Order Specification"
 * (maven.apache.org/pom.html#version-order-specification), which is what
 * ComparableVersion implements:
 *
 * - split at "." and "-" and at every digit/non-digit transition (a
 *   transition counts as "-"); an empty token is "0"; case is ignored;
 * - "cr" = "rc"; "ga", "final" and "release" are the empty qualifier;
 *   "a", "b", "m" directly followed by a number are alpha, beta, milestone;
 * - trailing null tokens (0, "") are trimmed, and again before each
 *   remaining hyphen, from the end to the start;
 * - the shorter version is padded with nulls that take the other side's
 *   prefix (0 for ".", "" for "-");
 * - same prefix: numbers in natural order, numbers above qualifiers,
 *   qualifiers alpha < beta < milestone < rc < snapshot < "" < sp < others
 *   (others alphabetically); different prefixes:
 *   ".qualifier" < "-qualifier" < "-number" < ".number".
 */
import { compareDigits, compareStrings, type VersionScheme } from './types.ts';

interface Token {
  prefix: '' | '.' | '-';
  value: string;
  numeric: boolean;
}

const KEYWORDS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const SHORT: Record<string, string> = { a: 'alpha', b: 'beta', m: 'milestone' };

function token(prefix: Token['prefix'], raw: string, followedByNumber: boolean): Token {
  let value = raw === '' ? '0' : raw;
  if (/^\d+$/.test(value)) return { prefix, value: value.replace(/^0+(?=\d)/, ''), numeric: true };
  if (value === 'cr') value = 'rc';
  else if (value === 'ga' || value === 'final' || value === 'release') value = '';
  else if (followedByNumber && SHORT[value]) value = SHORT[value]!;
  return { prefix, value, numeric: false };
}

function isNull(t: Token): boolean {
  return t.value === '' || (t.numeric && t.value === '0');
}

export function mavenTokens(version: string): Token[] {
  const tokens: Token[] = [];
  const parts = version.trim().toLowerCase().split(/([.-])/);
  for (let i = 0; i < parts.length; i += 2) {
    const raw = parts[i]!;
    let prefix: Token['prefix'] = i === 0 ? '' : (parts[i - 1] as '.' | '-');
    const pieces = raw.match(/\d+|\D+/g) ?? [''];
    pieces.forEach((piece, j) => {
      tokens.push(token(prefix, piece, j < pieces.length - 1));
      prefix = '-';
    });
  }
  // trim trailing nulls, then again in front of each remaining hyphen, end to start
  let i = tokens.length - 1;
  while (i > 0) {
    if (isNull(tokens[i]!)) {
      tokens.splice(i, 1);
      i--;
      continue;
    }
    while (i >= 0 && tokens[i]!.prefix !== '-') i--;
    i--;
  }
  return tokens;
}

function keywordRank(q: string): number {
  const i = KEYWORDS.indexOf(q);
  return i === -1 ? KEYWORDS.length : i;
}

function compareQualifiers(a: string, b: string): number {
  const x = keywordRank(a);
  const y = keywordRank(b);
  if (x === KEYWORDS.length && y === KEYWORDS.length) return compareStrings(a, b);
  return x - y;
}

function prefixRank(t: Token): number {
  if (t.numeric) return t.prefix === '-' ? 2 : 3;
  return t.prefix === '-' ? 1 : 0;
}

/** `a` or `b` may be null: padding, which takes the other side's prefix. */
function compareTokens(a: Token | null, b: Token | null): number {
  if (a === null) return -compareTokens(b, null);
  if (b === null) {
    // padding: 0 against a number after ".", else the release qualifier ""
    if (a.numeric) return a.prefix === '-' ? 1 : compareDigits(a.value, '0');
    return compareQualifiers(a.value, '');
  }
  if (a.prefix !== b.prefix) return prefixRank(a) - prefixRank(b);
  if (a.numeric && b.numeric) return compareDigits(a.value, b.value);
  if (a.numeric !== b.numeric) return a.numeric ? 1 : -1;
  return compareQualifiers(a.value, b.value);
}

function compareMaven(a: string, b: string): number {
  const x = mavenTokens(a);
  const y = mavenTokens(b);
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = compareTokens(x[i] ?? null, y[i] ?? null);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export const maven: VersionScheme = {
  name: 'Maven',
  invalidReason(v) {
    const s = v.trim();
    if (s === '') return 'empty version';
    if (/^(latest|release)$/i.test(s)) return `"${s}" is a Maven meta-version, not a version`;
    if (!/^[0-9A-Za-z][0-9A-Za-z._+~-]*$/.test(s)) return 'not a Maven version (unresolved property or stray characters?)';
    return null;
  },
  compare: compareMaven,
};
