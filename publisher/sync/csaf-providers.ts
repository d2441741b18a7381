/**
 * The CSAF provider list (CSAF_PROVIDERS=path) and what a provider publishes
 * (OASIS CSAF 2.0 section 7), read as pure functions over text the caller
 * fetched:
 *
 *   - the list: one provider a line, `[NAME] URL-or-DOMAIN`; `#` starts a
 *     comment. A domain means `https://DOMAIN/.well-known/csaf/provider-metadata.json`
 *     (Requirement 9); NAME (default: the host) names `csaf/<NAME>/`.
 *   - provider-metadata.json: what the sync uses of it is checked (its
 *     distributions, its public OpenPGP keys with their fingerprints).
 *   - changes.csv (Requirement 13: `"path","time"`, newest first), index.txt
 *     (Requirement 12), ROLIE feeds (Requirement 15: `feed.entry[]` with
 *     `link[]` by `rel`, `updated`).
 *
 * Real providers have real defects (../shared/upstream/csaf/NOTES.md); those
 * whose intent is clear are tolerated and counted into `Defects`, which the
 * report lists: unquoted or unsorted changes.csv rows, times without a zone
 * (read as UTC), `ref` where `rel` belongs, a directory URL without its
 * trailing slash.
 */
import { isObject, type JsonObject } from '../../builder/feeds/fields.ts';
import { OukError } from '../../lib/errors.ts';
import { safeSegment } from './files.ts';
import { timeKey } from './times.ts';

export interface ProviderEntry {
  /** csaf/<name>/ */
  name: string;
  /** The provider-metadata.json URL. */
  url: string;
  /** The line it came from (1-based), for messages. */
  line: number;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$/i;
export const MAX_PROVIDERS = 500;

/** The provider list's text → its providers; a malformed line is CSAF_PROVIDERS_INVALID naming it. */
export function parseProviderList(text: string, file: string): ProviderEntry[] {
  const out: ProviderEntry[] = [];
  const bad = (line: number, why: string): OukError =>
    new OukError('CSAF_PROVIDERS_INVALID', `${file} line ${line}: ${why} — give one provider a line: [NAME] https://…/provider-metadata.json, or [NAME] a domain (its /.well-known/csaf/provider-metadata.json is used)`);
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) throw bad(i + 1, `${parts.length} fields`);
    const target = parts.at(-1)!;
    let url: URL;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
      try {
        url = new URL(target);
      } catch {
        throw bad(i + 1, `${JSON.stringify(target.slice(0, 100))} is not a URL`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad(i + 1, `${url.protocol} is not http(s)`);
      if (url.username || url.password || url.hash) throw bad(i + 1, 'a URL with credentials or a fragment');
    } else if (DOMAIN.test(target)) {
      url = new URL(`https://${target.replace(/\.$/, '')}/.well-known/csaf/provider-metadata.json`);
    } else {
      throw bad(i + 1, `${JSON.stringify(target.slice(0, 100))} is neither a URL nor a domain`);
    }
    const name = parts.length === 2 ? parts[0]! : url.hostname;
    if (!NAME.test(name) || !safeSegment(name)) throw bad(i + 1, `${JSON.stringify(name.slice(0, 100))} is not a provider name (letters, digits, . _ -)`);
    const dup = out.find((p) => p.name.toLowerCase() === name.toLowerCase());
    if (dup) throw bad(i + 1, `the name ${name} is taken by line ${dup.line}: give each provider its own NAME`);
    out.push({ name, url: url.toString(), line: i + 1 });
  });
  if (out.length > MAX_PROVIDERS) throw new OukError('CSAF_PROVIDERS_INVALID', `${file} lists ${out.length} providers, more than the ${MAX_PROVIDERS} a sync takes: split the list`);
  return out;
}

/** Tolerated defects of one provider, counted by kind. */
export class Defects {
  readonly counts = new Map<string, number>();
  add(kind: string, n = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }
  lines(): string[] {
    return [...this.counts].map(([k, n]) => (n > 1 ? `${k} (${n} times)` : k));
  }
}

export interface OpenPgpKeyRef {
  url: string;
  /** Upper-case hex, no spaces; null when the metadata gives none. */
  fingerprint: string | null;
}

export interface RolieFeedRef {
  url: string;
  tlp: string | null;
}

export interface ProviderMetadata {
  canonicalUrl: string;
  publisher: string;
  role: string;
  /** Directory distributions' URLs, each ending in `/`. */
  directories: string[];
  rolieFeeds: RolieFeedRef[];
  keys: OpenPgpKeyRef[];
}

const ROLES = new Set(['csaf_publisher', 'csaf_provider', 'csaf_trusted_provider']);

function httpUrl(v: unknown, base: string): string | null {
  if (typeof v !== 'string' || v.length > 2000) return null;
  try {
    const u = new URL(v.trim(), base);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.toString() : null;
  } catch {
    return null;
  }
}

/**
 * provider-metadata.json → what the sync uses of it, or why it cannot be used.
 * `at` is the URL it was fetched from (relative URLs resolve against it).
 */
export function readProviderMetadata(doc: unknown, at: string, defects: Defects): ProviderMetadata | string {
  if (!isObject(doc)) return 'not a JSON object';
  if (doc.metadata_version !== '2.0') return `metadata_version is ${JSON.stringify(doc.metadata_version ?? null)}, not "2.0"`;
  const canonicalUrl = httpUrl(doc.canonical_url, at);
  if (!canonicalUrl) return 'canonical_url is not an http(s) URL';
  if (typeof doc.role !== 'string' || !ROLES.has(doc.role)) return `role ${JSON.stringify(doc.role ?? null)} is not a CSAF role`;
  const publisher = isObject(doc.publisher) && typeof doc.publisher.name === 'string' ? doc.publisher.name.slice(0, 200) : null;
  if (!publisher) return 'publisher.name is missing';
  const directories: string[] = [];
  const rolieFeeds: RolieFeedRef[] = [];
  const dists = doc.distributions;
  if (dists !== undefined && !Array.isArray(dists)) return 'distributions is not an array';
  for (const d of (dists ?? []) as unknown[]) {
    if (!isObject(d)) return 'a distribution is not an object';
    if (d.directory_url !== undefined) {
      let u = httpUrl(d.directory_url, at);
      if (!u) return `directory_url ${JSON.stringify(String(d.directory_url).slice(0, 100))} is not an http(s) URL`;
      if (!u.endsWith('/')) {
        defects.add('directory_url without its trailing slash (one added)');
        u += '/';
      }
      directories.push(u);
    }
    if (d.rolie !== undefined) {
      if (!isObject(d.rolie) || !Array.isArray(d.rolie.feeds)) return 'rolie.feeds is not an array';
      for (const f of d.rolie.feeds) {
        const u = isObject(f) ? httpUrl(f.url, at) : null;
        if (!u) return 'a ROLIE feed has no http(s) url';
        rolieFeeds.push({ url: u, tlp: isObject(f) && typeof f.tlp_label === 'string' ? f.tlp_label.toUpperCase() : null });
      }
    }
  }
  if (directories.length === 0 && rolieFeeds.length === 0) {
    // gocsaf's downloader does the same: the metadata's own folder as the directory distribution
    defects.add('no distributions: the folder of provider-metadata.json read as its directory distribution');
    directories.push(new URL('./', at).toString());
  }
  const keys: OpenPgpKeyRef[] = [];
  const pk = doc.public_openpgp_keys;
  if (pk !== undefined && !Array.isArray(pk)) return 'public_openpgp_keys is not an array';
  for (const k of (pk ?? []) as unknown[]) {
    const u = isObject(k) ? httpUrl(k.url, at) : null;
    if (!u) return 'a public_openpgp_keys entry has no http(s) url';
    const fp = (k as JsonObject).fingerprint;
    const fingerprint = typeof fp === 'string' ? fp.replace(/\s+/g, '').toUpperCase() : null;
    if (fingerprint !== null && !/^[0-9A-F]{40,}$/.test(fingerprint)) return `fingerprint ${JSON.stringify(String(fp).slice(0, 80))} is not hex`;
    keys.push({ url: u, fingerprint });
  }
  return { canonicalUrl, publisher, role: doc.role, directories, rolieFeeds, keys };
}

/** One document a listing names. */
export interface Listed {
  /** The document's URL. */
  url: string;
  /** Its path under csaf/<provider>/. */
  rel: string;
  /** Its time key (times.ts), or null when the listing gives none (index.txt). */
  time: string | null;
  /** ROLIE: the hash and signature links the entry gives. */
  hashUrls?: string[];
  signatureUrl?: string;
}

/** A path of `/`-separated safe segments ending in `.json`, or null. */
export function safeRel(p: string): string | null {
  const segs = p.split('/').filter((s) => s !== '');
  if (segs.length === 0 || segs.length > 8 || !segs.every(safeSegment) || !segs.at(-1)!.endsWith('.json')) return null;
  return segs.join('/');
}

/** A document URL under `base` → its relative path (`2024/x.json`); elsewhere → its file name. */
function relOf(url: string, base: string): string | null {
  const u = new URL(url);
  const b = new URL(base);
  const dir = b.pathname.replace(/[^/]*$/, '');
  const p = u.origin === b.origin && u.pathname.startsWith(dir) ? u.pathname.slice(dir.length) : u.pathname.split('/').at(-1)!;
  try {
    return safeRel(decodeURIComponent(p));
  } catch {
    return null;
  }
}

/** Splits one CSV line (quoted fields with `""` escapes, or bare); null when a quote is unbalanced. */
function csvFields(line: string): { fields: string[]; quoted: boolean } | null {
  const fields: string[] = [];
  let quoted = false;
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      quoted = true;
      let v = '';
      i++;
      for (;;) {
        if (i >= line.length) return null;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += line[i++];
      }
      fields.push(v);
      if (i < line.length && line[i] !== ',') return null;
      i++;
    } else {
      const end = line.indexOf(',', i);
      fields.push((end < 0 ? line.slice(i) : line.slice(i, end)).trim());
      i = end < 0 ? line.length + 1 : end + 1;
    }
  }
  return { fields, quoted };
}

const ZONED = /(Z|[+-]\d{2}:?\d{2})$/i;

/** A CSAF time (RFC 3339) → its time key; a time without a zone is read as UTC and counted as a defect. */
export function csafTime(v: string, defects: Defects, where: string): string | null {
  const t = v.trim();
  const key = timeKey(t);
  if (key && !ZONED.test(t)) defects.add(`${where}: times without a zone (read as UTC)`);
  return key;
}

/**
 * changes.csv → its rows (documents resolved against the directory URL),
 * newest first. Unquoted rows, rows out of order and zone-less times are
 * tolerated (and counted); a row that cannot be read is listed in `bad`.
 */
export function readChangesCsv(text: string, dirUrl: string, defects: Defects, bad: (what: string, why: string) => void): Listed[] {
  const rows: Listed[] = [];
  let unquoted = 0;
  let unsorted = false;
  let lineNo = 0;
  for (const raw of text.split(/\r?\n/)) {
    lineNo++;
    const line = raw.trim();
    if (!line) continue;
    const f = csvFields(line);
    if (!f || f.fields.length !== 2) {
      bad(`changes.csv line ${lineNo}`, 'not two comma-separated fields ("path","time")');
      continue;
    }
    if (!f.quoted) unquoted++;
    const [p, time] = f.fields as [string, string];
    const key = csafTime(time, defects, 'changes.csv');
    if (!key) {
      bad(`changes.csv line ${lineNo}`, `${JSON.stringify(time.slice(0, 60))} is not an RFC 3339 time`);
      continue;
    }
    const rel = safeRel(p);
    if (!rel || p.startsWith('/') || /^[a-z]+:/i.test(p)) {
      bad(`changes.csv line ${lineNo}`, `${JSON.stringify(p.slice(0, 100))} is not a relative path to a .json document`);
      continue;
    }
    const prev = rows.at(-1);
    if (prev && prev.time! < key) unsorted = true;
    rows.push({ url: new URL(rel, dirUrl).toString(), rel, time: key });
  }
  if (unquoted) defects.add('changes.csv: unquoted rows', unquoted);
  if (unsorted) defects.add('changes.csv: not sorted newest first (read whole)');
  return rows.sort((a, b) => (a.time! < b.time! ? 1 : a.time! > b.time! ? -1 : 0));
}

/** index.txt → the documents it lists (time unknown). */
export function readIndexTxt(text: string, dirUrl: string, bad: (what: string, why: string) => void): Listed[] {
  const out: Listed[] = [];
  let lineNo = 0;
  for (const raw of text.split(/\r?\n/)) {
    lineNo++;
    const p = raw.trim();
    if (!p) continue;
    const rel = safeRel(p);
    if (!rel || p.startsWith('/') || /^[a-z]+:/i.test(p)) {
      bad(`index.txt line ${lineNo}`, `${JSON.stringify(p.slice(0, 100))} is not a relative path to a .json document`);
      continue;
    }
    out.push({ url: new URL(rel, dirUrl).toString(), rel, time: null });
  }
  return out;
}

/**
 * A ROLIE feed document → its entries: the document from the `self` link (or
 * `content.src`), `hash` and `signature` links (`ref` read where `rel`
 * belongs, counted), the time from `updated`.
 */
export function readRolieFeed(doc: unknown, feedUrl: string, defects: Defects, bad: (what: string, why: string) => void): Listed[] | string {
  if (!isObject(doc) || !isObject(doc.feed)) return 'not a ROLIE feed ({"feed": {…}})';
  const entries = doc.feed.entry ?? [];
  if (!Array.isArray(entries)) return 'feed.entry is not an array';
  const out: Listed[] = [];
  let refs = 0;
  entries.forEach((e, i) => {
    const where = isObject(e) && typeof e.id === 'string' ? e.id.slice(0, 100) : `entry[${i}]`;
    if (!isObject(e)) return bad(where, 'not an object');
    const links = Array.isArray(e.link) ? e.link.filter(isObject) : [];
    const byRel = (rel: string): string[] =>
      links
        .filter((l) => {
          if (l.rel === rel) return true;
          if (l.rel === undefined && l.ref === rel) {
            refs++;
            return true;
          }
          return false;
        })
        .map((l) => httpUrl(l.href, feedUrl))
        .filter((u): u is string => u !== null);
    const self = byRel('self')[0] ?? (isObject(e.content) ? httpUrl(e.content.src, feedUrl) : null);
    if (!self) return bad(where, 'no `self` link (nor content.src) to the document');
    const updated = typeof e.updated === 'string' ? csafTime(e.updated, defects, 'ROLIE feed') : null;
    if (!updated) return bad(where, `updated ${JSON.stringify(e.updated ?? null)} is not an RFC 3339 time`);
    const rel = relOf(self, feedUrl);
    if (!rel) return bad(where, `${self.slice(0, 120)} does not name a .json document`);
    const sig = byRel('signature')[0];
    out.push({ url: self, rel, time: updated, hashUrls: byRel('hash'), ...(sig ? { signatureUrl: sig } : {}) });
  });
  if (refs) defects.add('ROLIE feed: `ref` where `rel` belongs in entry links', refs);
  return out.sort((a, b) => (a.time! < b.time! ? 1 : a.time! > b.time! ? -1 : 0));
}
