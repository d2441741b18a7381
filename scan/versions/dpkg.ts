/**
 * Debian and Ubuntu: dpkg's ordering (deb-version(7), dpkg's verrevcmp).
 *
 * [epoch:]upstream[-revision]. Epochs compare as numbers; upstream and
 * revision by alternating runs: a non-digit run compared character by
 * character where "~" sorts before everything (even the end), the end before
 * anything else, letters before non-letters; then a digit run compared as a
 * number (empty = 0). A missing revision equals "0".
 */
import { compareDigits, InvalidVersionError, type VersionScheme } from './types.ts';

interface DebVersion {
  epoch: string;
  upstream: string;
  revision: string;
}

function parseDeb(input: string): DebVersion {
  const v = input.trim();
  let epoch = '0';
  let rest = v;
  const colon = v.indexOf(':');
  if (colon !== -1) {
    epoch = v.slice(0, colon);
    rest = v.slice(colon + 1);
    if (!/^\d+$/.test(epoch)) throw new InvalidVersionError('dpkg', input, 'the epoch (before ":") is not a number');
  }
  const dash = rest.lastIndexOf('-');
  return dash === -1 ? { epoch, upstream: rest, revision: '' } : { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
}

/** dpkg's order(): "~" < end < letters < everything else. */
function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

export function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const x = isDigit(a[i]) ? 0 : order(a[i]);
      const y = isDigit(b[j]) ? 0 : order(b[j]);
      if (x !== y) return x < y ? -1 : 1;
      i++;
      j++;
    }
    const si = i;
    const sj = j;
    while (isDigit(a[i])) i++;
    while (isDigit(b[j])) j++;
    const d = compareDigits(a.slice(si, i) || '0', b.slice(sj, j) || '0');
    if (d !== 0) return d;
  }
  return 0;
}

export function compareDeb(a: string, b: string): number {
  const x = parseDeb(a);
  const y = parseDeb(b);
  return compareDigits(x.epoch, y.epoch) || verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision);
}

export const dpkg: VersionScheme = {
  name: 'dpkg',
  invalidReason(v) {
    let p: DebVersion;
    try {
      p = parseDeb(v);
    } catch (e) {
      return (e as Error).message;
    }
    if (p.upstream === '') return 'empty upstream version';
    if (!/^\d/.test(p.upstream)) return 'the upstream version does not start with a digit';
    if (!/^[A-Za-z0-9.+~:-]+$/.test(p.upstream)) return 'invalid character in the upstream version';
    if (p.revision !== '' && !/^[A-Za-z0-9.+~]+$/.test(p.revision)) return 'invalid character in the Debian revision';
    return null;
  },
  compare: compareDeb,
};
