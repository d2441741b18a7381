/**
 * SemVer 2.0.0 precedence (semver.org §11), used for OSV `SEMVER` ranges and
 * for ecosystems whose versions are SemVer (crates.io, Hex, Pub, SwiftURL,
 * Bitnami; Go and npm build on it).
 *
 * Ordering is lenient the way OSV's reference scanner (osv-scalibr) is: an
 * optional leading "v", one to three numeric components (missing ones are 0),
 * numbers of any size, and whatever follows the numbers is the pre-release
 * (a leading "-" dropped) and build metadata (after "+", ignored). Validity is
 * stricter: see `semverInvalidReason`.
 */
import { memoize } from './memo.ts';
import { compareDigits, compareStrings, type VersionScheme } from './types.ts';

interface SemverLike {
  /** numeric components as digit strings */
  core: string[];
  /** pre-release identifiers ([] for a release) */
  pre: string[];
}

/** Splits leniently; never throws. `maxCore` numeric components, extra ones join the pre-release. */
export function parseSemverLike(input: string, maxCore = 3): SemverLike {
  let s = input.trim();
  if (s.startsWith('v')) s = s.slice(1);
  const m = /^(?:\d+\.?)*/.exec(s)!;
  const core = m[0].split('.').filter((c) => c !== '');
  let rest = s.slice(m[0].length);
  if (core.length > maxCore) {
    // "1.2.3.4" : the fourth number is not core; it ranks like a pre-release tail
    rest += core.slice(maxCore).map((c) => `.${c}`).join('');
    core.length = maxCore;
  }
  const plus = rest.indexOf('+');
  let pre = plus === -1 ? rest : rest.slice(0, plus);
  if (pre.startsWith('-')) pre = pre.slice(1);
  return { core, pre: pre === '' ? [] : pre.split('.') };
}

function compareCore(a: string[], b: string[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = compareDigits(a[i] ?? '0', b[i] ?? '0');
    if (d !== 0) return d;
  }
  return 0;
}

const NUMERIC = /^\d+$/;

/** §11.4: identifiers compared one by one; a release (no identifiers) ranks above any pre-release. */
export function comparePrerelease(a: readonly string[], b: readonly string[], foldCase = false): number {
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 0 : a.length === 0 ? 1 : -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = foldCase ? a[i]!.toLowerCase() : a[i]!;
    const y = foldCase ? b[i]!.toLowerCase() : b[i]!;
    const xn = NUMERIC.test(x);
    const yn = NUMERIC.test(y);
    let d: number;
    if (xn && yn) d = compareDigits(x, y);
    else if (xn) d = -1; // numeric identifiers rank below alphanumeric ones
    else if (yn) d = 1;
    else d = compareStrings(x, y);
    if (d !== 0) return d;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** parseSemverLike with three numbers, remembered: a scan compares the same versions many times. Callers never change the result. */
const parseThree = memoize((v: string): SemverLike => parseSemverLike(v, 3));

export function compareSemverLike(a: string, b: string, maxCore = 3, foldCase = false): number {
  const x = maxCore === 3 ? parseThree(a) : parseSemverLike(a, maxCore);
  const y = maxCore === 3 ? parseThree(b) : parseSemverLike(b, maxCore);
  return compareCore(x.core, y.core) || comparePrerelease(x.pre, y.pre, foldCase);
}

const IDENT = '[0-9A-Za-z-]+';
const STRICT = new RegExp(`^v?\\d+(?:\\.\\d+){0,2}(?:-${IDENT}(?:\\.${IDENT})*)?(?:\\+${IDENT}(?:\\.${IDENT})*)?$`);

/**
 * A version is checkable when it is SemVer-shaped: optional "v", one to three
 * numbers, optional pre-release and build. Ranges ("^1.2", "1.x"), tags
 * ("latest") and paths are not versions.
 */
export function semverInvalidReason(v: string): string | null {
  if (v.trim() === '') return 'empty version';
  return STRICT.test(v.trim()) ? null : 'not a SemVer version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])';
}

/**
 * SemVer ecosystems whose tools insist on all three numbers (Elixir's
 * Version.parse for Hex and SwiftPM's Version both refuse "1.0" and
 * "1.2.3.4"): the same ordering, a stricter idea of a version.
 */
export function threePartSemver(name: string, opts: { leadingZeros: boolean }): VersionScheme {
  const num = opts.leadingZeros ? '\\d+' : '(?:0|[1-9]\\d*)';
  const re = new RegExp(`^${num}\\.${num}\\.${num}(?:-${IDENT}(?:\\.${IDENT})*)?(?:\\+${IDENT}(?:\\.${IDENT})*)?$`);
  return {
    name,
    invalidReason: (v) => (v.trim() === '' ? 'empty version' : re.test(v.trim()) ? null : 'not a SemVer version with all three numbers (MAJOR.MINOR.PATCH[-PRE][+BUILD])'),
    compare: (a, b) => compareSemverLike(a, b),
  };
}

export const semver: VersionScheme = {
  name: 'SemVer',
  invalidReason: semverInvalidReason,
  compare: (a, b) => compareSemverLike(a, b),
};
