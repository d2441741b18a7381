/**
 * Version ordering per OSV ecosystem. `compare(ecosystem, a, b)` orders two
 * versions; `parse(ecosystem, v)` says whether an installed version can be
 * checked at all. The ecosystem is taken as OSV publishes it ("Debian:12",
 * "Alpine:v3.18"): only its family (before the first ":") picks the ordering.
 * `SEMVER` is the pseudo-ecosystem of OSV `SEMVER` ranges.
 */
import { ecosystemFamily } from '../../bundle/package-name.ts';
import { apk } from './apk.ts';
import { crates } from './crates.ts';
import { dpkg } from './dpkg.ts';
import { go } from './go.ts';
import { maven } from './maven.ts';
import { npm } from './npm.ts';
import { nuget } from './nuget.ts';
import { packagist } from './packagist.ts';
import { pub } from './pub.ts';
import { pypi } from './pypi.ts';
import { rpm } from './rpm.ts';
import { rubygems } from './rubygems.ts';
import { semver, threePartSemver } from './semver.ts';
import type { VersionScheme } from './types.ts';

export { InvalidVersionError, type VersionScheme } from './types.ts';

/** Range type SEMVER, whatever the package's ecosystem. */
export const SEMVER = 'SEMVER';

const SCHEMES: Readonly<Record<string, VersionScheme>> = {
  [SEMVER]: semver,
  npm,
  PyPI: pypi,
  Maven: maven,
  Go: go,
  'crates.io': crates,
  RubyGems: rubygems,
  NuGet: nuget,
  Packagist: packagist,
  Debian: dpkg,
  Ubuntu: dpkg,
  Alpine: apk,
  Wolfi: apk,
  Chainguard: apk,
  AlmaLinux: rpm,
  'Rocky Linux': rpm,
  'Red Hat': rpm,
  openSUSE: rpm,
  SUSE: rpm,
  Mageia: rpm,
  openEuler: rpm,
  'Photon OS': rpm,
  Pub: pub,
  // SemVer ecosystems
  Hex: threePartSemver('Hex SemVer', { leadingZeros: false }),
  SwiftURL: threePartSemver('SwiftPM SemVer', { leadingZeros: true }),
  Bitnami: semver,
};

/** The ordering of an ecosystem, or null when it has none we know. */
export function schemeFor(ecosystem: string): VersionScheme | null {
  return SCHEMES[ecosystemFamily(ecosystem)] ?? null;
}

export function supportedEcosystems(): string[] {
  return Object.keys(SCHEMES).filter((k) => k !== SEMVER);
}

export type ParseResult = { ok: true; scheme: VersionScheme } | { ok: false; reason: string };

/** Whether `version` is a checkable version of `ecosystem`, and if not, why. */
export function parse(ecosystem: string, version: string): ParseResult {
  const scheme = schemeFor(ecosystem);
  if (!scheme) return { ok: false, reason: `no version ordering is known for ecosystem "${ecosystem}"` };
  const reason = scheme.invalidReason(version);
  return reason === null ? { ok: true, scheme } : { ok: false, reason: `${scheme.name}: ${reason}` };
}

/** -1, 0 or 1. Throws when the ecosystem is unknown or a version cannot be placed. */
export function compare(ecosystem: string, a: string, b: string): number {
  const scheme = schemeFor(ecosystem);
  if (!scheme) throw new Error(`no version ordering is known for ecosystem "${ecosystem}"`);
  return Math.sign(scheme.compare(a, b));
}

/**
 * The leading number of a version (after spaces, "v" or "="), without its
 * leading zeros; null when it has none, or may carry an epoch (`:` or `!`,
 * which some orderings put before it). A character loop: this runs for every
 * entry of an advisory's `versions` list.
 */
export function majorOf(v: string): string | null {
  if (v.includes(':') || v.includes('!')) return null;
  let i = 0;
  const n = v.length;
  while (i < n) {
    const c = v.charCodeAt(i);
    if (c === 32 || c === 9 || c === 118 || c === 86 || c === 61) i++; // ' ', tab, v, V, =
    else break;
  }
  while (i < n - 1 && v.charCodeAt(i) === 48 && isDigit(v.charCodeAt(i + 1))) i++; // leading zeros
  let j = i;
  while (j < n && isDigit(v.charCodeAt(j))) j++;
  return j > i ? v.slice(i, j) : null;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * False only when `a` and `b` cannot be equal in any ordering here: both
 * start with a number (after "v" or "="), carry no epoch, and the numbers
 * differ. Every scheme compares that leading number first, so a cheap test
 * spares a full parse of most entries of a long `versions` list.
 */
export function mayBeEqual(a: string, b: string): boolean {
  return mayHaveMajor(majorOf(a), b);
}

/** mayBeEqual(a, b) with `majorOf(a)` given: a caller comparing one version with many computes it once. */
export function mayHaveMajor(major: string | null, b: string): boolean {
  if (major === null) return true;
  const y = majorOf(b);
  return y === null || y === major;
}
