/**
 * npm versions: parsed and ordered by `semver` (npm's own parser, loose mode so
 * "v1.2.3" and "=1.2.3" read as npm reads them). A version is checkable only
 * when npm's parser accepts it: all three numbers (npm has no "1.3"), each
 * within 2^53, optional pre-release and build metadata (ignored in ordering).
 * Ranges ("^1.2"), tags ("latest"), paths and URLs are not versions.
 *
 * Comparing stays lenient for advisory data npm would refuse: such a pair is
 * ordered by the BigInt SemVer ordering (semver.ts), which agrees with npm
 * wherever npm answers.
 */
import semverPkg from 'semver';
import { memoize } from './memo.ts';
import { compareSemverLike } from './semver.ts';
import type { VersionScheme } from './types.ts';

const LOOSE = { loose: true } as const;

/** npm's parse, remembered per string (a scan compares the same versions many times); the SemVer objects are only compared, never changed. */
const npmParse = memoize((v: string): semverPkg.SemVer | null => {
  try {
    return semverPkg.parse(v, LOOSE);
  } catch {
    return null;
  }
});

export const npm: VersionScheme = {
  name: 'npm SemVer',
  invalidReason(v) {
    if (npmParse(v)) return null;
    if (/^\s*[v=]*\s*\d+(\.\d+)?\s*$/.test(v)) return 'not a version npm accepts: npm versions have all three numbers (MAJOR.MINOR.PATCH)';
    if (/^\s*[v=]*\s*\d+\.\d+\.\d+/.test(v) && /\d{16,}/.test(v)) return 'not a version npm accepts: a number above 2^53';
    return 'not a version npm accepts (a range, tag, path or URL?)';
  },
  compare(a, b) {
    const x = npmParse(a);
    const y = npmParse(b);
    if (x && y) return x.compare(y);
    return compareSemverLike(a, b);
  },
};
