/** crates.io: Cargo versions are SemVer 2.0.0 (doc.rust-lang.org/cargo/reference/semver.html). */
import { compareSemverLike, semverInvalidReason } from './semver.ts';
import type { VersionScheme } from './types.ts';

export const crates: VersionScheme = {
  name: 'Cargo SemVer',
  invalidReason: semverInvalidReason,
  compare: (a, b) => compareSemverLike(a, b),
};
