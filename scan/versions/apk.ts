/**
 * Alpine (and Wolfi, Chainguard): apk-tools' version ordering, as documented in
 * apk-package(5): number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}.
 *
 * Numbers compare as numbers, except that after the first component a
 * leading zero makes the comparison textual; then the letter (none < a-z),
 * then the suffixes (_alpha < _beta < _pre < _rc < none < _cvs < _svn < _git
 * < _hg < _p, each with its number), then the -r build number. A commit hash
 * is ignored. Anything left over that does not fit the grammar makes the
 * version invalid: it sorts below the same version without that tail, and two
 * invalid versions compare as strings (what osv-scalibr, OSV's reference,
 * does). Only versions that fit the grammar are checkable.
 */
import { compareDigits, compareStrings, type VersionScheme } from './types.ts';

const SUFFIX_WEIGHT: Record<string, number> = { alpha: 0, beta: 1, pre: 2, rc: 3, '': 4, cvs: 5, svn: 6, git: 7, hg: 8, p: 9 };
const NO_SUFFIX = { weight: 4, number: '0' };

interface ApkVersion {
  original: string;
  numbers: string[];
  letter: string;
  suffixes: { weight: number; number: string }[];
  build: string;
  /** what did not fit the grammar */
  remainder: string;
  invalid: boolean;
}

export function parseApk(original: string): ApkVersion {
  let s = original;
  const v: ApkVersion = { original, numbers: [], letter: '', suffixes: [], build: '0', remainder: '', invalid: false };
  const nums = /^(?:\d+\.?)*/.exec(s)![0];
  if (nums !== '') v.numbers = nums.split('.');
  s = s.slice(nums.length);
  if (/^[a-z]/.test(s)) {
    v.letter = s[0]!;
    s = s.slice(1);
  }
  for (;;) {
    const m = /^_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)/.exec(s);
    if (!m) break;
    v.suffixes.push({ weight: SUFFIX_WEIGHT[m[1]!]!, number: m[2] || '0' });
    s = s.slice(m[0].length);
  }
  const hash = /^~[0-9a-f]+/.exec(s);
  if (hash) s = s.slice(hash[0].length);
  if (s !== '') {
    const r = /^-r(\d*)/.exec(s);
    if (r) {
      v.build = r[1] || '0';
      s = s.slice(r[0].length);
    } else {
      v.invalid = true;
    }
  }
  v.remainder = s;
  return v;
}

function compareNumbers(a: string[], b: string[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? '0';
    const y = b[i] ?? '0';
    // after the first component, a leading zero means "compare as text" (1.02 < 1.1)
    const textual = i > 0 && i < a.length && i < b.length && (x.startsWith('0') || y.startsWith('0'));
    const d = textual ? compareStrings(x, y) : compareDigits(x || '0', y || '0');
    if (d !== 0) return d;
  }
  return 0;
}

export function compareApk(a: string, b: string): number {
  const x = parseApk(a);
  const y = parseApk(b);
  if (x.invalid && y.invalid) return compareStrings(a, b);
  let d = compareNumbers(x.numbers, y.numbers);
  if (d !== 0) return d;
  if (x.letter !== y.letter) return x.letter === '' ? -1 : y.letter === '' ? 1 : compareStrings(x.letter, y.letter);
  const n = Math.max(x.suffixes.length, y.suffixes.length);
  for (let i = 0; i < n; i++) {
    const s = x.suffixes[i] ?? NO_SUFFIX;
    const t = y.suffixes[i] ?? NO_SUFFIX;
    d = s.weight - t.weight || compareDigits(s.number, t.number);
    if (d !== 0) return Math.sign(d);
  }
  d = compareDigits(x.build, y.build);
  if (d !== 0) return d;
  if (x.remainder === '' && y.remainder !== '') return 1;
  if (x.remainder !== '' && y.remainder === '') return -1;
  return 0;
}

export const apk: VersionScheme = {
  name: 'apk',
  invalidReason(v) {
    const p = parseApk(v.trim());
    if (p.numbers.length === 0 || p.numbers.includes('')) return 'an apk version starts with dot-separated numbers';
    if (p.invalid || p.remainder !== '') return `"${p.remainder}" does not fit number{.number}{letter}{_suffix{number}}{~hash}{-r#}`;
    return null;
  },
  compare: compareApk,
};
