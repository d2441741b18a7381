/**
 * A reference matcher for the scan tests, written from the OSV schema alone
 * and sharing none of the builder but its withdrawal wording (below): it reads the raw OSV records of a feeds
 * directory (ghsa/ and osv/), and answers, for a component, which
 * vulnerabilities affect it.
 *
 * - a vulnerability is a connected component of ids joined by `aliases`
 *   (either side naming the other), found here by a breadth-first walk;
 * - of several copies of one id, the one with the newest `modified` is the
 *   record; every copy names ids;
 * - withdrawn records name ids but affect nothing: those with a `withdrawn`
 *   time, and those withdrawn in words only (GitHub's "Duplicate Advisory: …"
 *   and "Withdrawn: …" titles, "## Withdrawn" details, "This advisory has
 *   been withdrawn because it is a duplicate of …", a rejected CVE's text).
 *   Which words say withdrawn is a policy, not matching: it is the builder's
 *   one rule (builder/feeds/withdrawn-in-words.ts), taken here so the two
 *   cannot drift, and checked on its own against every record of the feeds
 *   by test/withdrawn-in-words.test.ts;
 * - a record affects a component when one of its `affected` entries names
 *   the component's ecosystem and package and the version is in its ranges or
 *   versions (scan/ranges.ts evaluate, the OSV evaluation rules; the version
 *   orderings are the ones under test elsewhere).
 *
 * It reads ../shared/feeds itself, so a fault in the builder's merge, the DB
 * rows or the scan's lookups shows up as a difference.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withdrawalWording } from '../../builder/feeds/withdrawn-in-words.ts';
import { packageKey } from '../../bundle/package-name.ts';
import { identifyPurl, lookupKeys } from '../../scan/identify.ts';
import { evaluate, type OsvRange } from '../../scan/ranges.ts';
import { parse } from '../../scan/versions/index.ts';

export interface RawAffected {
  package?: { ecosystem?: string; name?: string };
  ranges?: OsvRange[];
  versions?: string[];
}

export interface RawRecord {
  id: string;
  modified?: string;
  withdrawn?: string;
  summary?: string;
  details?: string;
  aliases?: string[];
  upstream?: string[];
  affected?: RawAffected[];
}

function jsonFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(dir, f));
}

export class OsvReference {
  /** id -> the vulnerability it belongs to (a canonical name: its ids sorted, joined by " ") */
  readonly vulnerabilityOf = new Map<string, string>();
  /** "ecosystem\0package" -> the standing records with an affected entry for it */
  private readonly byPackage = new Map<string, { record: RawRecord; entry: RawAffected }[]>();

  constructor(feedsDir: string) {
    const copies = new Map<string, RawRecord[]>();
    for (const feed of ['ghsa', 'osv']) {
      for (const file of jsonFiles(path.join(feedsDir, feed))) {
        const r = JSON.parse(fs.readFileSync(file, 'utf8')) as RawRecord;
        const list = copies.get(r.id);
        if (list) list.push(r);
        else copies.set(r.id, [r]);
      }
    }
    // the alias graph, both directions
    const edges = new Map<string, Set<string>>();
    const link = (a: string, b: string): void => {
      if (!edges.has(a)) edges.set(a, new Set());
      if (!edges.has(b)) edges.set(b, new Set());
      edges.get(a)!.add(b);
      edges.get(b)!.add(a);
    };
    for (const list of copies.values()) {
      for (const r of list) {
        link(r.id, r.id);
        for (const a of r.aliases ?? []) link(r.id, a);
        if (r.upstream?.length === 1) link(r.id, r.upstream[0]!);
      }
    }
    for (const start of edges.keys()) {
      if (this.vulnerabilityOf.has(start)) continue;
      const seen = new Set([start]);
      const queue = [start];
      while (queue.length > 0) {
        for (const n of edges.get(queue.shift()!) ?? []) {
          if (seen.has(n)) continue;
          seen.add(n);
          queue.push(n);
        }
      }
      const name = [...seen].sort().join(' ');
      for (const id of seen) this.vulnerabilityOf.set(id, name);
    }
    for (const list of copies.values()) {
      const newest = [...list].sort((a, b) => Date.parse(b.modified ?? '0') - Date.parse(a.modified ?? '0'))[0]!;
      if (newest.withdrawn || withdrawalWording(newest.summary, newest.details)) continue;
      for (const entry of newest.affected ?? []) {
        const eco = entry.package?.ecosystem;
        const name = entry.package?.name;
        if (!eco || !name) continue;
        const k = `${eco}\u0000${packageKey(eco, name)}`;
        const l = this.byPackage.get(k);
        if (l) l.push({ record: newest, entry });
        else this.byPackage.set(k, [{ record: newest, entry }]);
      }
    }
  }

  /** The vulnerabilities affecting the component of this purl (null when it cannot be checked). */
  affecting(purl: string, fallbackVersion: string | null): Set<string> | null {
    const id = identifyPurl(purl, fallbackVersion);
    if (!id.ok || !parse(id.ecosystem, id.version).ok) return null;
    const out = new Set<string>();
    for (const key of lookupKeys(id)) {
      for (const { record, entry } of this.byPackage.get(`${key.ecosystem}\u0000${key.package}`) ?? []) {
        const v = evaluate(entry.package!.ecosystem!, id.version, entry.ranges ?? [], entry.versions ?? []);
        if (v.status === 'affected') out.add(this.vulnerabilityOf.get(record.id)!);
      }
    }
    return out;
  }
}

/**
 * Whether one raw record's affected entries take in the component of this
 * purl, its withdrawal aside (null when the component cannot be checked): the
 * same evaluation as OsvReference.affecting, for one record.
 */
export function recordAffects(record: RawRecord, purl: string, fallbackVersion: string | null): boolean | null {
  const id = identifyPurl(purl, fallbackVersion);
  if (!id.ok || !parse(id.ecosystem, id.version).ok) return null;
  const keys = new Set(lookupKeys(id).map((k) => `${k.ecosystem}\u0000${k.package}`));
  for (const entry of record.affected ?? []) {
    const eco = entry.package?.ecosystem;
    const name = entry.package?.name;
    if (!eco || !name || !keys.has(`${eco}\u0000${packageKey(eco, name)}`)) continue;
    if (evaluate(eco, id.version, entry.ranges ?? [], entry.versions ?? []).status === 'affected') return true;
  }
  return false;
}
