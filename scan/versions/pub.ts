/**
 * Pub (Dart, Flutter): the ordering of pub_semver's Version.compareTo
 * (dart-lang/pub_semver lib/src/version.dart), which differs from SemVer 2.0
 * in one way: build metadata counts.
 *
 * - major, minor, patch as numbers;
 * - a version without a pre-release is above one with (1.0.0-rc < 1.0.0);
 * - pre-release identifiers, split at ".", one by one: numeric ones as
 *   numbers and below alphanumeric ones, those compared as strings; a missing
 *   identifier is below a present one;
 * - then build metadata: none is below some (1.0.0 < 1.0.0+build), and two
 *   builds compare like pre-releases (1.2.3+1 < 1.2.3+a).
 *
 * pub_semver reads an identifier of digits as a number, so "01" = "1".
 * Numbers of any size compare by value. A version is checkable when it is
 * MAJOR.MINOR.PATCH[-PRE][+BUILD] (pub refuses "1.0" and "1.2.3.4"); a
 * leading "v", which pub does not write, is accepted when comparing.
 */
import { compareDigits, compareStrings, InvalidVersionError, type VersionScheme } from './types.ts';

interface PubVersion {
  core: [string, string, string];
  pre: string[];
  build: string[];
}

const IDENT = '[0-9A-Za-z-]+';
const COMPLETE = new RegExp(`^(\\d+)\\.(\\d+)\\.(\\d+)(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+(${IDENT}(?:\\.${IDENT})*))?$`);
const NUMERIC = /^\d+$/;

function parsePub(input: string): PubVersion | null {
  const m = COMPLETE.exec(input.trim().replace(/^v/, ''));
  if (!m) return null;
  return { core: [m[1]!, m[2]!, m[3]!], pre: m[4] ? m[4].split('.') : [], build: m[5] ? m[5].split('.') : [] };
}

/** pub_semver's _compareLists. */
function compareParts(a: string[], b: string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xn = NUMERIC.test(x);
    const yn = NUMERIC.test(y);
    const d = xn && yn ? compareDigits(x, y) : xn ? -1 : yn ? 1 : compareStrings(x, y);
    if (d !== 0) return d;
  }
  return 0;
}

export function comparePub(a: string, b: string): number {
  const x = parsePub(a);
  const y = parsePub(b);
  if (!x || !y) throw new InvalidVersionError('Pub', x ? b : a, 'not MAJOR.MINOR.PATCH[-PRE][+BUILD]');
  for (let i = 0; i < 3; i++) {
    const d = compareDigits(x.core[i]!, y.core[i]!);
    if (d !== 0) return d;
  }
  if (x.pre.length === 0 || y.pre.length === 0) {
    if (x.pre.length !== y.pre.length) return x.pre.length === 0 ? 1 : -1;
  } else {
    const d = compareParts(x.pre, y.pre);
    if (d !== 0) return d;
  }
  if (x.build.length === 0 || y.build.length === 0) return x.build.length === y.build.length ? 0 : x.build.length === 0 ? -1 : 1;
  return compareParts(x.build, y.build);
}

export const pub: VersionScheme = {
  name: 'Pub',
  invalidReason(v) {
    if (v.trim() === '') return 'empty version';
    return COMPLETE.test(v.trim()) ? null : 'not a Pub version (MAJOR.MINOR.PATCH[-PRE][+BUILD])';
  },
  compare: comparePub,
};
