/**
 * Maven: a port of maven-artifact 3.9's ComparableVersion
 * (apache/maven, maven-artifact/src/main/java/org/apache/maven/artifact/
 * versioning/ComparableVersion.java at 1a3de98e, the 3.9 line: MNG-6964 and
 * MNG-7644 included), which is what Maven itself orders versions with and
 * what the OSV schema names for the Maven ecosystem.
 *
 * Parsing (lower-cased first) builds a tree of items:
 *
 * - "." ends an item in the current list; "-" ends it and opens a sub-list;
 *   an empty item ("1..2", "1-") is the number 0;
 * - a digit/letter transition also separates: number→letter opens a
 *   sub-list after the number; letter→digit closes the letters as a
 *   qualifier that is "followed by a digit" (so "a1", "b1", "m1" read as
 *   alpha, beta, milestone) and opens a sub-list for the number;
 * - MNG-7644: a qualifier reached through "." is treated as if reached
 *   through "-" (it opens a sub-list when the current list is not empty),
 *   so 1.0.0.RC1 < 1.0.0-RC2 and 2.0.X = 2-X;
 * - every list is then normalised from the end: trailing null items (0, "",
 *   an empty list) are removed, stepping over sub-lists, up to the first
 *   non-null number or qualifier.
 *
 * Items (Maven's IntItem, LongItem and BigIntegerItem are one number item
 * here: Maven picks the class by the digit count after stripping leading
 * zeros, so its cross-class answers equal a plain comparison of magnitudes):
 *
 * - number vs number by value; a number beats a qualifier and a list;
 * - qualifier order alpha < beta < milestone < rc = cr < snapshot
 *   < "" = ga = final = release < sp < any other (those alphabetically);
 *   a qualifier loses to a number and to a list;
 * - list vs list item by item, the shorter padded with "nothing"; a list
 *   loses to a number and beats a qualifier;
 * - against "nothing" (padding): a number is greater unless 0; a qualifier
 *   compares as against ""; a list compares its items in turn (MNG-6964).
 *
 * Maven treats only ASCII digits as digits here (its Character.isDigit
 * accepts other scripts' digits too, which never occur in real versions).
 */
import { memoize } from './memo.ts';
import { compareDigits, type VersionScheme } from './types.ts';

type Item = { kind: 'number'; digits: string } | { kind: 'qualifier'; value: string } | { kind: 'list'; items: Item[] };

const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const ALIASES: Record<string, string> = { ga: '', final: '', release: '', cr: 'rc' };
const SHORT: Record<string, string> = { a: 'alpha', b: 'beta', m: 'milestone' };
/** comparableQualifier("") */
const RELEASE_INDEX = String(QUALIFIERS.indexOf(''));

const isDigit = (c: string): boolean => c >= '0' && c <= '9';

function qualifier(raw: string, followedByDigit: boolean): Item {
  const v = followedByDigit && raw.length === 1 ? (SHORT[raw] ?? raw) : raw;
  return { kind: 'qualifier', value: ALIASES[v] ?? v };
}

function parseItem(digits: boolean, buf: string): Item {
  if (digits) return { kind: 'number', digits: buf.replace(/^0+/, '') || '0' };
  return qualifier(buf, false);
}

/** Maven's comparableQualifier: known qualifiers by rank, others after them, alphabetically. */
function comparable(q: string): string {
  const i = QUALIFIERS.indexOf(q);
  return i === -1 ? `${QUALIFIERS.length}-${q}` : String(i);
}

function isNull(item: Item): boolean {
  if (item.kind === 'number') return item.digits === '0';
  if (item.kind === 'qualifier') return comparable(item.value) === RELEASE_INDEX;
  return item.items.length === 0;
}

function normalize(list: Item[]): void {
  for (let i = list.length - 1; i >= 0; i--) {
    const last = list[i]!;
    if (isNull(last)) list.splice(i, 1);
    else if (last.kind !== 'list') break;
  }
}

/** ComparableVersion's parse of `version` (remembered: the items are only read, never changed). */
export const parseMaven = memoize(parseMavenOnce);

function parseMavenOnce(version: string): Item[] {
  const v = version.toLowerCase();
  const root: Item[] = [];
  let list = root;
  const stack: Item[][] = [root];
  const open = (): void => {
    const sub: Item[] = [];
    list.push({ kind: 'list', items: sub });
    list = sub;
    stack.push(sub);
  };
  let digits = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '.' || c === '-') {
      list.push(i === start ? { kind: 'number', digits: '0' } : parseItem(digits, v.slice(start, i)));
      start = i + 1;
      if (c === '-') open();
    } else if (isDigit(c)) {
      if (!digits && i > start) {
        // letters then a digit: 1.0.0.X1 < 1.0.0-X2, ".X" as "-X"
        if (list.length > 0) open();
        list.push(qualifier(v.slice(start, i), true));
        start = i;
        open();
      }
      digits = true;
    } else {
      if (digits && i > start) {
        list.push(parseItem(true, v.slice(start, i)));
        start = i;
        open();
      }
      digits = false;
    }
  }
  if (v.length > start) {
    if (!digits && list.length > 0) open();
    list.push(parseItem(digits, v.slice(start)));
  }
  while (stack.length > 0) normalize(stack.pop()!);
  return root;
}

/** `b` null is "nothing" (the padding of a shorter list). */
function compareItems(a: Item, b: Item | null): number {
  switch (a.kind) {
    case 'number':
      if (b === null) return a.digits === '0' ? 0 : 1;
      return b.kind === 'number' ? compareDigits(a.digits, b.digits) : 1;
    case 'qualifier': {
      if (b === null) return compareStrings(comparable(a.value), RELEASE_INDEX);
      if (b.kind !== 'qualifier') return -1;
      return compareStrings(comparable(a.value), comparable(b.value));
    }
    case 'list':
      if (b === null) {
        for (const item of a.items) {
          const r = compareItems(item, null);
          if (r !== 0) return r;
        }
        return 0;
      }
      if (b.kind === 'number') return -1;
      if (b.kind === 'qualifier') return 1;
      return compareLists(a.items, b.items);
  }
}

function compareLists(a: Item[], b: Item[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const l = a[i];
    const r = b[i];
    const d = l === undefined ? (r === undefined ? 0 : -compareItems(r, null)) : compareItems(l, r ?? null);
    if (d !== 0) return d;
  }
  return 0;
}

/** Java String.compareTo's sign (UTF-16 code units, as JS compares strings). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareMaven(a: string, b: string): number {
  return Math.sign(compareLists(parseMaven(a), parseMaven(b)));
}

export const maven: VersionScheme = {
  name: 'Maven',
  invalidReason(v) {
    const s = v.trim();
    if (s === '') return 'empty version';
    if (/^(latest|release)$/i.test(s)) return `"${s}" is a Maven meta-version, not a version`;
    if (!/^[0-9A-Za-z][0-9A-Za-z._+~-]*$/.test(s)) return 'not a Maven version (unresolved property or stray characters?)';
    return null;
  },
  compare: compareMaven,
};
