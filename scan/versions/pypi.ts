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

/**
 * PEP 440's sort key (packaging's `_cmpkey`), as @renovatebot/pep440's
 * `compare` computes it on every call (lib/operator.js calculateKey, not
 * exported): here computed once a version and remembered, since a scan
 * compares the same versions many times (each range's events, the installed
 * version against each). Null for a string PEP 440 rejects.
 */
type KeyPart = number | string | KeyPart[];

const pep440Key = memoize((v: string): KeyPart[] | null => {
  const p = pep440.parse(v) as {
    epoch: number;
    release: number[];
    pre: [string, number] | null;
    post: [string, number] | null;
    dev: [string, number] | null;
    local: (string | number)[] | null;
  } | null;
  if (!p) return null;
  const release = [...p.release];
  while (release.length && release[release.length - 1] === 0) release.pop(); // 1.0 == 1.0.0
  // 1.0.dev0 sorts before 1.0a0; no pre-release sorts after any; no post before any; no dev after any
  const pre: KeyPart = !p.pre && !p.post && p.dev ? -Infinity : (p.pre ?? Infinity);
  const post: KeyPart = p.post ?? -Infinity;
  const dev: KeyPart = p.dev ?? Infinity;
  // local segments: alphanumeric before numeric, numeric by value, shorter before longer
  const local: KeyPart = p.local ? p.local.map((i): KeyPart => (Number.isNaN(Number(i)) ? [-Infinity, String(i)] : [Number(i), ''])) : -Infinity;
  return [p.epoch, release, pre, post, dev, local];
});

/** Python's ordering of the key tuples (lists compare item by item, then by length; ±Infinity bound everything). */
function pyCompare(a: KeyPart, b: KeyPart): number {
  if (a === b) return 0;
  if (Array.isArray(a) !== Array.isArray(b)) {
    a = Array.isArray(a) ? a : [a];
    b = Array.isArray(b) ? b : [b];
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const d = pyCompare(a[i]!, b[i]!);
      if (d !== 0) return d;
    }
    return a.length - b.length;
  }
  if (a === -Infinity || b === Infinity) return -1;
  if (a === Infinity || b === -Infinity) return 1;
  return a < b ? -1 : 1;
}

export const pypi: VersionScheme = {
  name: 'PEP 440',
  invalidReason: (v) => (isPep440(v) ? null : 'not a PEP 440 version'),
  compare(a, b) {
    const x = isPep440(a) ? pep440Key(a) : null;
    const y = isPep440(b) ? pep440Key(b) : null;
    if (x && y) return Math.sign(pyCompare(x, y));
    if (Boolean(x) !== Boolean(y)) return x ? 1 : -1; // legacy versions sort before every PEP 440 version
    return compareLegacy(a, b);
  },
};
