/**
 * NuGet: NuGet.Versioning's NuGetVersion (learn.microsoft.com/nuget/concepts/package-versioning):
 * SemVer 2.0.0 with up to four numeric parts (Major.Minor.Patch.Revision,
 * missing ones 0, leading zeros allowed), pre-release labels compared
 * case-insensitively (numeric labels as numbers), build metadata ignored.
 */
import { compareSemverLike } from './semver.ts';
import type { VersionScheme } from './types.ts';

const IDENT = '[0-9A-Za-z-]+';
const VALID = new RegExp(`^\\d+(?:\\.\\d+){0,3}(?:-${IDENT}(?:\\.${IDENT})*)?(?:\\+${IDENT}(?:\\.${IDENT})*)?$`);

export const nuget: VersionScheme = {
  name: 'NuGet',
  invalidReason: (v) => (VALID.test(v.trim()) ? null : 'not a NuGet version (1 to 4 numbers, optional -prerelease and +metadata)'),
  compare: (a, b) => compareSemverLike(a, b, 4, true),
};
