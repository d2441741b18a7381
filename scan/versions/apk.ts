/**
 * Alpine (and Wolfi, Chainguard): a port of apk-tools' version comparison
 * (alpinelinux/apk-tools src/version.c, apk_version_compare and
 * apk_version_validate, the tokeniser of apk-tools 2.12 / 3.x). A version is
 *
 *   digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}
 *
 * read as a sequence of tokens: the initial number, further ".numbers", one
 * lower-case letter, "_suffix" words (alpha, beta, pre, rc, cvs, svn, git,
 * hg, p) each with an optional number, a "~" commit hash (hex) and the "-r"
 * revision. Two versions are walked token by token while both have a token of
 * the same kind:
 *
 * - numbers compare as numbers, except a ".number" where either side starts
 *   with "0": then as strings (1.02 < 1.1, Gentoo's rule);
 * - letters by character, suffixes by their rank (alpha < beta < pre < rc
 *   < cvs < svn < git < hg < p), suffix numbers and revisions as numbers;
 *   commit hashes as strings.
 *
 * When the kinds differ (or one side ends), the version that goes on is
 * greater, unless what follows is a pre-release suffix (_alpha, _beta, _pre,
 * _rc): 1.6 < 1.6.0 (a trailing ".0" is not nothing), 1.6.0-r1 > 1.6-r1,
 * 1.2_rc1 < 1.2 < 1.2_p1 < 1.2a. Kinds rank initial digit < digit < letter
 * < suffix < suffix number < hash < revision < end < invalid, and the version
 * whose next token ranks higher is the lesser. A tail that breaks the grammar
 * is an "invalid" token: such a version sorts below the same version without
 * it, and is not checkable.
 */
import { compareDigits, type VersionScheme } from './types.ts';

/** Token kinds, in apk-tools' order (the order matters: see compareApk). */
const Token = { InitialDigit: 0, Digit: 1, Letter: 2, Suffix: 3, SuffixNo: 4, CommitHash: 5, RevisionNo: 6, End: 7, Invalid: 8 } as const;
type Token = (typeof Token)[keyof typeof Token];

/** Suffix ranks; NONE (5) is the pivot: below it pre-releases, above it post-releases. */
const SUFFIXES: Readonly<Record<string, number>> = { alpha: 1, beta: 2, pre: 3, rc: 4, cvs: 6, svn: 7, git: 8, hg: 9, p: 10 };
const SUFFIX_NONE = 5;

interface TokenState {
  token: Token;
  /** the token's text: digits, the letter, the suffix word, the hash */
  value: string;
  suffix: number;
}

class Reader {
  pos = 0;
  constructor(readonly s: string) {}
  get rest(): number {
    return this.s.length - this.pos;
  }
  span(re: RegExp): string {
    const start = this.pos;
    while (this.pos < this.s.length && re.test(this.s[this.pos]!)) this.pos++;
    return this.s.slice(start, this.pos);
  }
}

const DIGIT = /[0-9]/;
const SUFFIX_CHAR = /[a-z]/;
const HEX = /[0-9a-fA-F]/;

function parseDigits(t: TokenState, r: Reader): void {
  t.value = r.span(DIGIT);
  if (t.value === '') t.token = Token.Invalid;
}

function first(r: Reader): TokenState {
  const t: TokenState = { token: Token.InitialDigit, value: '', suffix: 0 };
  parseDigits(t, r);
  return t;
}

function next(t: TokenState, r: Reader): void {
  if (r.rest === 0) {
    t.token = Token.End;
    return;
  }
  const c = r.s[r.pos]!;
  if (c >= 'a' && c <= 'z') {
    if (t.token > Token.Digit) return invalid(t);
    t.value = c;
    t.token = Token.Letter;
    r.pos++;
  } else if (c === '.' || (c >= '0' && c <= '9')) {
    if (c === '.') {
      if (t.token > Token.Digit) return invalid(t);
      r.pos++;
    }
    if (t.token === Token.InitialDigit || t.token === Token.Digit) t.token = Token.Digit;
    else if (t.token === Token.Suffix) t.token = Token.SuffixNo;
    else return invalid(t);
    parseDigits(t, r);
  } else if (c === '_') {
    if (t.token > Token.SuffixNo) return invalid(t);
    r.pos++;
    t.value = r.span(SUFFIX_CHAR);
    t.suffix = SUFFIXES[t.value] ?? 0;
    if (t.suffix === 0) return invalid(t);
    t.token = Token.Suffix;
  } else if (c === '~') {
    if (t.token >= Token.CommitHash) return invalid(t);
    r.pos++;
    t.value = r.span(HEX);
    if (t.value === '') return invalid(t);
    t.token = Token.CommitHash;
  } else if (c === '-') {
    if (t.token >= Token.RevisionNo || !r.s.startsWith('-r', r.pos)) return invalid(t);
    r.pos += 2;
    t.token = Token.RevisionNo;
    parseDigits(t, r);
  } else {
    invalid(t);
  }
}

function invalid(t: TokenState): void {
  t.token = Token.Invalid;
}

/** apk_blob_sort: bytewise over the common length, then the shorter first. */
function blobSort(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a.charCodeAt(i) - b.charCodeAt(i);
  return a.length - b.length;
}

function tokenCompare(a: TokenState, b: TokenState): number {
  switch (a.token) {
    case Token.Digit:
      if (a.value.startsWith('0') || b.value.startsWith('0')) return Math.sign(blobSort(a.value, b.value));
      return compareDigits(a.value, b.value);
    case Token.InitialDigit:
    case Token.SuffixNo:
    case Token.RevisionNo:
      return compareDigits(a.value, b.value);
    case Token.Letter:
      return Math.sign(a.value.charCodeAt(0) - b.value.charCodeAt(0));
    case Token.Suffix:
      return Math.sign(a.suffix - b.suffix);
    default:
      return Math.sign(blobSort(a.value, b.value));
  }
}

export function compareApk(x: string, y: string): number {
  const ra = new Reader(x);
  const rb = new Reader(y);
  const a = first(ra);
  const b = first(rb);
  while (a.token === b.token && a.token < Token.End) {
    const d = tokenCompare(a, b);
    if (d !== 0) return d;
    next(a, ra);
    next(b, rb);
  }
  if (a.token === b.token) return 0;
  if (a.token === Token.Suffix && a.suffix < SUFFIX_NONE) return -1;
  if (b.token === Token.Suffix && b.suffix < SUFFIX_NONE) return 1;
  return a.token > b.token ? -1 : 1;
}

/** apk_version_validate: null when `v` reads to its end, else the part that does not fit. */
export function apkInvalidTail(v: string): string | null {
  const r = new Reader(v);
  const t = first(r);
  let at = 0;
  while (t.token < Token.End) {
    at = r.pos;
    next(t, r);
  }
  return t.token === Token.End ? null : v.slice(at);
}

export const apk: VersionScheme = {
  name: 'apk',
  invalidReason(v) {
    const s = v.trim();
    if (s === '') return 'empty version';
    if (!/^[0-9]/.test(s)) return 'an apk version starts with a number';
    const tail = apkInvalidTail(s);
    return tail === null ? null : `"${tail}" does not fit number{.number}{letter}{_suffix{number}}{~hash}{-r#}`;
  },
  compare: compareApk,
};
