/**
 * A version ordering: how one ecosystem decides whether a version string is
 * one of its versions, and how two of them sort.
 *
 * `valid` is strict: it says whether an installed version can be checked at
 * all (a component whose version is not valid is reported NOT CHECKED, never
 * clean). `compare` is lenient: it orders any pair the ecosystem's own tools
 * would order (advisory data is not always tidy), and throws
 * InvalidVersionError only for strings it cannot place at all.
 */
export interface VersionScheme {
  /** Name used in messages, e.g. "PEP 440", "dpkg". */
  readonly name: string;
  /** null when `v` is a version of this scheme, else why not. */
  invalidReason(v: string): string | null;
  /** <0, 0 or >0 as `a` sorts before, equal to or after `b`. */
  compare(a: string, b: string): number;
}

export class InvalidVersionError extends Error {
  constructor(
    readonly scheme: string,
    readonly version: string,
    reason: string,
  ) {
    super(`"${version}" is not a ${scheme} version: ${reason}`);
    this.name = 'InvalidVersionError';
  }
}

/** -1, 0 or 1. */
export function sign(n: number | bigint): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Compares two strings of ASCII digits as numbers of any size (leading zeros ignored). */
export function compareDigits(a: string, b: string): number {
  // no copies: skip the leading zeros by index, then compare lengths, then digit by digit
  let i = 0;
  let j = 0;
  while (i < a.length && a.charCodeAt(i) === 48) i++;
  while (j < b.length && b.charCodeAt(j) === 48) j++;
  const n = a.length - i;
  if (n !== b.length - j) return n < b.length - j ? -1 : 1;
  for (let k = 0; k < n; k++) {
    const d = a.charCodeAt(i + k) - b.charCodeAt(j + k);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Plain code-unit (ASCII for ASCII input) string order, like C strcmp. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
