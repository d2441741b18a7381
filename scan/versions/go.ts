/**
 * Go module versions: SemVer with a "v" prefix (golang.org/ref/mod#versions).
 * OSV writes them without the "v"; SBOMs usually with it. Pseudo-versions
 * (v0.0.0-20191109021931-daa7c04131f5) are pre-releases and sort as such;
 * "+incompatible" is build metadata and ignored. "(devel)" and other
 * non-versions are not checkable.
 */
import { compareSemverLike, semverInvalidReason } from './semver.ts';
import type { VersionScheme } from './types.ts';

export const go: VersionScheme = {
  name: 'Go module SemVer',
  invalidReason: (v) => (semverInvalidReason(v) === null ? null : 'not a Go module version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])'),
  compare: (a, b) => compareSemverLike(a, b),
};
