/**
 * npm versions: parsed and ordered by `semver` (npm's own parser, loose mode so
 * "v1.2.3" and "=1.2.3" read as npm reads them). Versions it refuses only for
 * size (numbers above 2^53) fall back to the BigInt SemVer ordering, which
 * agrees with it everywhere else.
 */
import semverPkg from 'semver';
import { compareSemverLike, semverInvalidReason } from './semver.ts';
import type { VersionScheme } from './types.ts';

const LOOSE = { loose: true } as const;

function npmParse(v: string): semverPkg.SemVer | null {
  try {
    return semverPkg.parse(v, LOOSE);
  } catch {
    return null;
  }
}

export const npm: VersionScheme = {
  name: 'npm SemVer',
  invalidReason(v) {
    if (npmParse(v)) return null;
    return semverInvalidReason(v) === null ? null : 'not a version npm accepts (a range, tag, path or URL?)';
  },
  compare(a, b) {
    const x = npmParse(a);
    const y = npmParse(b);
    if (x && y) return x.compare(y);
    return compareSemverLike(a, b);
  },
};
