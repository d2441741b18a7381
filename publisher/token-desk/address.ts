/**
 * Sender addresses as the desk takes them: one plain mailbox on a sane public
 * domain, or nothing. The desk mails a token to this address, so anything an
 * MTA would treat specially is refused rather than interpreted:
 *
 * - ASCII only (the desk does not offer SMTPUTF8), at most 254 characters,
 *   a local part of at most 64;
 * - the local part a dot-atom of letters, digits and `. _ + - '` (no quoted
 *   strings, no `%`/`!` routing, no `"`, no leading, trailing or double dot);
 * - the domain: at least two labels of letters, digits and inner hyphens
 *   (1–63 each, 253 in all), a top-level label of letters (or an IDNA
 *   `xn--` label); no address literal (`[192.0.2.1]`), no trailing dot, and
 *   none of the names that never reach the public Internet (`localhost`,
 *   `.local`, `.localhost`, `.invalid`, `.internal`, `.onion`, `.arpa`).
 *
 * `key` is what the per-address limit counts: the address in lower case with
 * a `+tag` sub-address removed (alice+1@ and alice+2@ are one mailbox).
 */

export interface SenderAddress {
  /** as it will be written to: lower case */
  address: string;
  local: string;
  domain: string;
  /** lower case, `+tag` removed: the per-address limit's key */
  key: string;
}

export type AddressCheck = { ok: true; sender: SenderAddress } | { ok: false; why: string };

const LOCAL_ATOM = /^[a-z0-9_+'-]+$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const TOP_LABEL = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;
const PRIVATE_NAMES = new Set(['localhost', 'local', 'localdomain', 'invalid', 'internal', 'onion', 'arpa', 'lan', 'home']);

/** Whether `domain` (lower case) is a name a public mail exchanger can have. */
export function saneDomain(domain: string): string | null {
  if (domain.length === 0) return 'no domain';
  if (domain.length > 253) return 'the domain is longer than 253 characters';
  if (domain.startsWith('[')) return 'an address literal is not a domain';
  if (domain.endsWith('.')) return 'the domain ends with a dot';
  const labels = domain.split('.');
  if (labels.length < 2) return 'the domain has a single label';
  for (const l of labels) if (!LABEL.test(l)) return `"${l.slice(0, 70)}" is not a domain label`;
  const top = labels[labels.length - 1]!;
  if (!TOP_LABEL.test(top)) return `"${top}" is not a top-level domain`;
  if (PRIVATE_NAMES.has(top)) return `.${top} names never reach the public Internet`;
  return null;
}

/** The envelope sender (MAIL FROM) or another address, checked and normalised. */
export function parseSender(raw: string): AddressCheck {
  if (typeof raw !== 'string' || raw.length === 0) return { ok: false, why: 'no address' };
  if (raw.length > 254) return { ok: false, why: 'the address is longer than 254 characters' };
  // eslint-disable-next-line no-control-regex
  if (/[^\x21-\x7e]/.test(raw)) return { ok: false, why: 'the address holds a space, a control or a non-ASCII character' };
  const address = raw.toLowerCase();
  const at = address.lastIndexOf('@');
  if (at < 0) return { ok: false, why: 'the address has no @domain' };
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length === 0) return { ok: false, why: 'the address has no local part' };
  if (local.length > 64) return { ok: false, why: 'the local part is longer than 64 characters' };
  const atoms = local.split('.');
  if (atoms.some((a) => a.length === 0)) return { ok: false, why: 'the local part has an empty dot-separated part' };
  if (!atoms.every((a) => LOCAL_ATOM.test(a))) return { ok: false, why: "the local part holds characters other than letters, digits and . _ + - '" };
  const bad = saneDomain(domain);
  if (bad) return { ok: false, why: bad };
  const plus = local.indexOf('+');
  const base = plus > 0 ? local.slice(0, plus) : local;
  return { ok: true, sender: { address, local, domain, key: `${base}@${domain}` } };
}
