/**
 * PyPI: PEP 440 (packaging.python.org/en/latest/specifications/version-specifiers),
 * parsed and ordered by @renovatebot/pep440. Strings PEP 440 rejects are
 * "legacy" versions: they still sort, as `packaging` < 22 sorted them (all of
 * them before every PEP 440 version, then by its legacy key), but an installed
 * legacy version is not checkable.
 */
import * as pep440 from '@renovatebot/pep440';
import { memoize } from './memo.ts';
import { compareStrings, type VersionScheme } from './types.ts';

const isPep440 = memoize((v: string): boolean => {
  try {
    return pep440.valid(v) !== null;
  } catch {
    return false;
  }
});

const LEGACY_REPLACE: Record<string, string> = { pre: 'c', preview: 'c', '-': 'final-', rc: 'c', dev: '@' };

/** packaging's _legacy_cmpkey parts: numbers zero-padded to 8, words prefixed "*", closing "*final". */
function legacyKey(version: string): string[] {
  const parts: string[] = [];
  const raw = version.toLowerCase().split(/(\d+|[a-z]+|\.|-)/);
  const pieces: string[] = [];
  for (let p of raw) {
    p = LEGACY_REPLACE[p] ?? p;
    if (p === '' || p === '.') continue;
    pieces.push(/^\d/.test(p) ? p.padStart(8, '0') : `*${p}`);
  }
  pieces.push('*final');
  for (const part of pieces) {
    if (part.startsWith('*')) {
      if (part < '*final') while (parts.length && parts[parts.length - 1] === '*final-') parts.pop();
      while (parts.length && parts[parts.length - 1] === '00000000') parts.pop();
    }
    parts.push(part);
  }
  return parts;
}

function compareLegacy(a: string, b: string): number {
  const x = legacyKey(a);
  const y = legacyKey(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = compareStrings(x[i]!, y[i]!);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

export const pypi: VersionScheme = {
  name: 'PEP 440',
  invalidReason: (v) => (isPep440(v) ? null : 'not a PEP 440 version'),
  compare(a, b) {
    const x = isPep440(a);
    const y = isPep440(b);
    if (x && y) return pep440.compare(a, b);
    if (x !== y) return x ? 1 : -1; // legacy versions sort before every PEP 440 version
    return compareLegacy(a, b);
  },
};
