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
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Plain code-unit (ASCII for ASCII input) string order, like C strcmp. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
