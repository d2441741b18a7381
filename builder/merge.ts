/**
 * Merges the records of one vulnerability (one component of the alias graph,
 * see merge-key.ts) into one advisory keyed by the component's primary id.
 *
 * Two rules decide what the advisory holds:
 *
 * - One copy per id. When the same id arrives more than once (a GHSA in ghsa/
 *   and in osv/npm/, a CVE twice in NVD pages), the copy with the newest
 *   `modified` wins as a whole and the others are dropped, never unioned (a
 *   stale `last_affected` must not outlive the newer `fixed`). Ties go to the
 *   feed ranked first (nvd, ghsa, osv), then to the bytewise-first canonical
 *   JSON. The winner's source names its feed and the copies it superseded.
 *   Copies are of one kind: NVD's record of a CVE (CPE configurations) and an
 *   OSV-schema record that carries the same CVE id (a distribution's packages,
 *   osv/Debian/CVE-….json) are two records, and both stay.
 * - Withdrawn records give ids, not data. While any record of the
 *   vulnerability still stands, a withdrawn one contributes its ids (aliases)
 *   but none of its packages, CPEs, severities or text; when every record is
 *   withdrawn the advisory keeps their data and is marked withdrawn.
 *
 * From the remaining records it keeps everything: every alias, CVSS vector,
 * CWE id, reference (deduped by URL), affected package (one entry per
 * ecosystem and normalised package name, with the union of the ranges and
 * explicit versions: a version is affected when any record says so) and NVD
 * CPE match.
 *
 * The result depends only on the set of records, never on the order they were
 * read in: records are first put in a fixed order (feed, id, newest first), and
 * every list in the result is deduped and sorted.
 */
import { canonicalJson } from '../bundle/manifest.ts';
import { packageKey } from '../bundle/package-name.ts';
import { maxTime, minTime } from './feeds/fields.ts';
import { linkedIds } from './merge-key.ts';
import type { Advisory, Affected, Cpe, DatabaseSeverity, FeedName, Reference, Severity, SourceRecord, SourceRef, SupersededCopy } from './model.ts';

/** Which feed speaks first where only one value can be kept (details: NVD's description first; a tie between copies of one id). */
const FEED_RANK: Record<FeedName, number> = { nvd: 0, ghsa: 1, osv: 2, csaf: 3 };

/**
 * Which copies are the same record: NVD's record of an id; an OSV-schema record
 * (ghsa/ or osv/) of an id; a CSAF document's record of a vulnerability, per
 * publisher and document (a newer revision replaces an older one).
 */
function copyKey(s: SourceRef): string {
  if (s.feed === 'csaf') return `csaf\t${s.publisher ?? ''}\t${s.document ?? ''}\t${s.id}`;
  return `${s.feed === 'nvd' ? 'nvd' : 'osv'}\t${s.id}`;
}

export function byteCompare(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Keyed {
  r: SourceRecord;
  readonly json: string;
}

function keyed(records: readonly SourceRecord[]): Keyed[] {
  // The canonical JSON is only a tie-break (two copies, same modified, same feed rank): made on demand.
  return records.map((r) => {
    let json: string | undefined;
    return {
      r,
      get json(): string {
        return (json ??= canonicalJson(r));
      },
    };
  });
}

/** Newest `modified` first (a copy without one is the oldest), then feed rank, then canonical JSON. */
function compareCopies(x: Keyed, y: Keyed): number {
  return (
    byteCompare(y.r.source.modified ?? '', x.r.source.modified ?? '') ||
    FEED_RANK[x.r.source.feed] - FEED_RANK[y.r.source.feed] ||
    byteCompare(x.json, y.json)
  );
}

/**
 * One record per id (per kind: NVD, or the OSV schema of ghsa/ and osv/): the
 * newest copy, whose source lists the copies it superseded; in a fixed order
 * (feed, id).
 */
export function newestCopies(records: readonly SourceRecord[]): SourceRecord[] {
  const byId = new Map<string, Keyed[]>();
  for (const k of keyed(records)) {
    const key = copyKey(k.r.source);
    const list = byId.get(key);
    if (list) list.push(k);
    else byId.set(key, [k]);
  }
  const out: SourceRecord[] = [];
  for (const copies of byId.values()) {
    copies.sort(compareCopies);
    const winner = copies[0]!.r;
    const superseded: SupersededCopy[] = copies
      .slice(1)
      .map((c) => ({ feed: c.r.source.feed, modified: c.r.source.modified }))
      .sort((a, b) => FEED_RANK[a.feed] - FEED_RANK[b.feed] || byteCompare(a.modified ?? '', b.modified ?? ''));
    out.push(superseded.length ? { ...winner, source: { ...winner.source, superseded } } : winner);
  }
  return out.sort((a, b) => FEED_RANK[a.source.feed] - FEED_RANK[b.source.feed] || byteCompare(a.source.id, b.source.id) || byteCompare(copyKey(a.source), copyKey(b.source)));
}

export function mergeRecords(id: string, input: readonly SourceRecord[]): Advisory {
  if (input.length === 0) throw new Error('mergeRecords: no records');
  // Every copy names ids (a copy that lost may still hold the alias that joined the records).
  const ids = new Set<string>();
  const upstream = new Set<string>();
  const related = new Set<string>();
  for (const r of input) {
    for (const a of linkedIds(r)) ids.add(a);
    if (r.upstream.length > 1) for (const u of r.upstream) upstream.add(u);
    for (const a of r.related) related.add(a);
  }
  const records = newestCopies(input);
  const standing = records.filter((r) => r.source.withdrawn === null);
  const content = standing.length > 0 ? standing : records;

  ids.delete(id);
  for (const a of [id, ...ids]) {
    upstream.delete(a);
    related.delete(a);
  }
  for (const u of upstream) related.delete(u);

  let published: string | null = null;
  let modified: string | null = null;
  let withdrawn: string | null = null;
  for (const r of records) {
    published = minTime(published, r.source.published);
    modified = maxTime(modified, r.source.modified);
    if (r.source.withdrawn !== null) withdrawn = maxTime(withdrawn, r.source.withdrawn);
  }

  const details = first(content.map((r) => r.details));
  const summary = first(content.map((r) => r.summary)) ?? summaryFromDetails(details);

  const vex = sortedUnique(content.flatMap((r) => r.vex ?? []), (v) => canonicalJson(v));
  return {
    id,
    aliases: [...ids].sort(byteCompare),
    upstream: [...upstream].sort(byteCompare),
    related: [...related].sort(byteCompare),
    sources: records.map((r) => r.source).sort((a, b) => byteCompare(a.feed, b.feed) || byteCompare(a.id, b.id) || byteCompare(copyKey(a), copyKey(b))),
    summary,
    details,
    published,
    modified,
    withdrawn: standing.length === 0 ? withdrawn : null,
    severity: mergeSeverity(content.flatMap((r) => r.severity)),
    databaseSeverity: dedupeBy(content.flatMap((r) => r.databaseSeverity), (d: DatabaseSeverity) => `${d.source}\t${d.id}`),
    cwes: [...new Set(content.flatMap((r) => r.cwes))].sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))),
    references: mergeReferences(content),
    affected: mergeAffected(content.flatMap((r) => r.affected)),
    cpes: sortedUnique(content.flatMap((r) => r.cpes), (c: Cpe) => `${c.criteria}\t${canonicalJson(c)}`),
    ...(vex.length ? { vex } : {}),
  };
}

function first(xs: (string | null)[]): string | null {
  for (const x of xs) if (x) return x;
  return null;
}

const SUMMARY_MAX = 200;

/** NVD gives no title: the first line of the description stands in, cut at 200 characters. */
export function summaryFromDetails(details: string | null): string | null {
  if (!details) return null;
  const line = details.split('\n', 1)[0]!.trim();
  if (line.length <= SUMMARY_MAX) return line;
  const cut = line.slice(0, SUMMARY_MAX - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > SUMMARY_MAX / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

function mergeSeverity(all: Severity[]): Severity[] {
  return sortedUnique(all, (s) => `${s.source}\t${s.type}\t${s.vector}\t${s.assigner ?? ''}\t${s.primary ? 1 : 0}`);
}

/** One reference per URL; the OSV/GHSA type wins over the one mapped from NVD's tags. */
function mergeReferences(records: SourceRecord[]): Reference[] {
  const byUrl = new Map<string, Reference>();
  const order = [...records].sort((a, b) => Number(a.source.feed === 'nvd') - Number(b.source.feed === 'nvd'));
  for (const r of order) for (const ref of r.references) if (!byUrl.has(ref.url)) byUrl.set(ref.url, { type: ref.type, url: ref.url });
  return [...byUrl.values()].sort((a, b) => byteCompare(a.url, b.url) || byteCompare(a.type, b.type));
}

/** One entry per (ecosystem, package key): the union of ranges (deduped) and versions, in first-seen order. */
function mergeAffected(all: Affected[]): Affected[] {
  const groups = new Map<string, { key: string; entry: Affected; ranges: Set<string>; versions: Set<string> }>();
  for (const a of all) {
    const pkg = packageKey(a.ecosystem, a.name);
    const k = `${a.ecosystem}\t${pkg}`;
    let g = groups.get(k);
    if (!g) {
      g = { key: k, entry: { ecosystem: a.ecosystem, name: a.name, ranges: [], versions: [] }, ranges: new Set(), versions: new Set() };
      groups.set(k, g);
    }
    const e = g.entry;
    if (!e.purl && a.purl) e.purl = a.purl;
    if (e.ecosystem_specific === undefined && a.ecosystem_specific !== undefined) e.ecosystem_specific = a.ecosystem_specific;
    for (const r of a.ranges) {
      const rk = canonicalJson(r);
      if (g.ranges.has(rk)) continue;
      g.ranges.add(rk);
      e.ranges.push(r);
    }
    for (const v of a.versions) {
      if (g.versions.has(v)) continue;
      g.versions.add(v);
      e.versions.push(v);
    }
  }
  return [...groups.values()].sort((x, y) => byteCompare(x.key, y.key)).map((g) => g.entry);
}

function dedupeBy<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    const k = key(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function sortedUnique<T>(xs: T[], key: (x: T) => string): T[] {
  const m = new Map<string, T>();
  for (const x of xs) if (!m.has(key(x))) m.set(key(x), x);
  return [...m.entries()].sort((a, b) => byteCompare(a[0], b[0])).map(([, x]) => x);
}
