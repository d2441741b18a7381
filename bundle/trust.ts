/**
 * The roots of trust a kit may carry: `trust/root.<N>.json`, the TUF root
 * metadata of version N exactly as its signers wrote it (signing/root/). A
 * site that trusts root N-1 moves to root N only when N is signed by a
 * threshold of N-1's root keys and of its own: the bundle merely carries the
 * files; nothing in them is trusted because the kit carries it.
 */

export const TRUST_DIR = 'trust/';

/** A root document is a few kilobytes; anything this large is not one. */
export const MAX_ROOT_BYTES = 1024 * 1024;
/**
 * What one kit may carry: roots are read into memory before the signature is
 * decided, so a hostile manifest may not list gigabytes of them. 64 versions
 * are years of rotations; 4 MiB is hundreds of roots' worth.
 */
export const MAX_CARRIED_ROOTS = 64;
export const MAX_CARRIED_ROOT_BYTES = 4 * 1024 * 1024;

/** Versions up to 999,999,999: far beyond any rotation schedule, and a safe integer. */
const ROOT_MEMBER = /^trust\/root\.([1-9][0-9]{0,8})\.json$/;

/** `trust/root.<N>.json` */
export function rootMemberPath(version: number): string {
  if (!Number.isSafeInteger(version) || version < 1 || version > 999_999_999) throw new RangeError(`root version ${version} is not a whole number from 1 to 999999999`);
  return `${TRUST_DIR}root.${version}.json`;
}

/** N for `trust/root.<N>.json`, or null for any other path. */
export function rootVersionOfMember(path: string): number | null {
  const m = ROOT_MEMBER.exec(path);
  return m ? Number(m[1]) : null;
}
