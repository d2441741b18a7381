/**
 * Merges every record that shares a merge key (see merge-key.ts) into one
 * advisory that keeps all of them: every source, all aliases, every CVSS vector,
 * CWE id, reference (deduped by URL), affected package (one entry per ecosystem
 * and normalised package name, with the union of the ranges and explicit
 * versions) and NVD CPE match.
 *
 * The result depends only on the set of records, never on the order they were
 * read in: records are first put in a fixed order (feed, id, newest first), and
 * every list in the result is deduped and sorted.
 */
import { canonicalJson } from '../bundle/manifest.ts';
import { packageKey } from '../bundle/package-name.ts';
import { maxTime, minTime } from './feeds/fields.ts';
import type { Advisory, Affected, Cpe, DatabaseSeverity, FeedName, Reference, Severity, SourceRecord } from './model.ts';

/** Which feed speaks first where only one value can be kept (details: NVD's description first). */
const FEED_RANK: Record<FeedName, number> = { nvd: 0, ghsa: 1, osv: 2 };

export function byteCompare(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function orderRecords(records: readonly SourceRecord[]): SourceRecord[] {
  // The canonical JSON is only a tie-break (the same record twice in one feed, same modified): made on demand.
  const keyed = records.map((r) => {
    let json: string | undefined;
    return {
      r,
      get json(): string {
        return (json ??= canonicalJson(r));
      },
    };
  });
  keyed.sort(
    (x, y) =>
      FEED_RANK[x.r.source.feed] - FEED_RANK[y.r.source.feed] ||
      byteCompare(x.r.source.id, y.r.source.id) ||
      // newest first: the one kept when a feed holds the same record twice
      byteCompare(y.r.source.modified ?? '', x.r.source.modified ?? '') ||
      byteCompare(x.json, y.json),
  );
  const seen = new Set<string>();
  const out: SourceRecord[] = [];
  for (const { r } of keyed) {
    const k = `${r.source.feed}\t${r.source.id}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(r);
  }
  return out;
}

export function mergeRecords(input: readonly SourceRecord[]): Advisory {
  if (input.length === 0) throw new Error('mergeRecords: no records');
  const records = orderRecords(input);
  const id = records[0]!.key;
  for (const r of records) if (r.key !== id) throw new Error(`mergeRecords: ${r.source.id} has key ${r.key}, not ${id}`);

  const aliases = new Set<string>();
  const related = new Set<string>();
  for (const r of records) {
    aliases.add(r.source.id);
    for (const a of r.aliases) aliases.add(a);
    for (const a of r.upstream) aliases.add(a);
    for (const a of r.related) related.add(a);
  }
  aliases.delete(id);
  for (const a of aliases) related.delete(a);
  related.delete(id);

  let published: string | null = null;
  let modified: string | null = null;
  let withdrawn: string | null = null;
  let allWithdrawn = true;
  for (const r of records) {
    published = minTime(published, r.source.published);
    modified = maxTime(modified, r.source.modified);
    if (r.source.withdrawn === null) allWithdrawn = false;
    else withdrawn = maxTime(withdrawn, r.source.withdrawn);
  }

  const details = first(records.map((r) => r.details));
  const summary = first(records.map((r) => r.summary)) ?? summaryFromDetails(details);

  return {
    id,
    aliases: [...aliases].sort(byteCompare),
    related: [...related].sort(byteCompare),
    sources: records.map((r) => r.source).sort((a, b) => byteCompare(a.feed, b.feed) || byteCompare(a.id, b.id)),
    summary,
    details,
    published,
    modified,
    withdrawn: allWithdrawn ? withdrawn : null,
    severity: mergeSeverity(records.flatMap((r) => r.severity)),
    databaseSeverity: dedupeBy(records.flatMap((r) => r.databaseSeverity), (d: DatabaseSeverity) => `${d.source}\t${d.id}`),
    cwes: [...new Set(records.flatMap((r) => r.cwes))].sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))),
    references: mergeReferences(records),
    affected: mergeAffected(records.flatMap((r) => r.affected)),
    cpes: sortedUnique(records.flatMap((r) => r.cpes), (c: Cpe) => `${c.criteria}\t${canonicalJson(c)}`),
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
