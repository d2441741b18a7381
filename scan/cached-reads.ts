/**
 * The scan's reads of the active DB through the process's cache of that DB
 * (active-db-cache.ts): what the cache holds is answered from it, the rest
 * read in one query inside the caller's snapshot (match.ts, enrichment.ts,
 * optional-tables.ts) and kept. Each answers exactly what its query alone
 * would: the cache holds those queries' answers per key, negative ones
 * included.
 */
import type { PoolClient } from 'pg';
import type { ActiveDbCache, Candidate, CveEntries } from './active-db-cache.ts';
import { cveIds, queryEnrichment, type Enrichment } from './enrichment.ts';
import { type Headline, queryAffected, queryHeadlines } from './match.ts';
import { optionalTablesWithRows, type OptionalTables } from './optional-tables.ts';

export const candidateKey = (ecosystem: string, pkg: string): string => `${ecosystem}\u0000${pkg}`;

/** Which optional tables the DB holds with rows (asked once a DB): an empty one is never read. */
export async function cachedTables(client: PoolClient, schema: string, cache: ActiveDbCache): Promise<OptionalTables> {
  return (cache.tables ??= await optionalTablesWithRows(client, schema));
}

/** The candidate rows of every (ecosystem, package), by candidateKey; a package without rows is absent. */
export async function cachedCandidates(client: PoolClient, schema: string, pairs: { ecosystem: string; package: string }[], cache: ActiveDbCache): Promise<Map<string, Candidate[]>> {
  const out = new Map<string, Candidate[]>();
  const missing: { ecosystem: string; package: string }[] = [];
  for (const p of pairs) {
    const k = candidateKey(p.ecosystem, p.package);
    const hit = cache.packages.get(k);
    if (hit === undefined) missing.push(p);
    else if (hit.length > 0) out.set(k, hit);
  }
  if (missing.length === 0) return out;
  const read = new Map<string, Candidate[]>();
  for (const r of await queryAffected(client, schema, missing)) {
    const k = candidateKey(r.ecosystem, r.package);
    const list = read.get(k);
    if (list) list.push(r);
    else read.set(k, [r]);
  }
  for (const p of missing) {
    const k = candidateKey(p.ecosystem, p.package);
    const rows = read.get(k) ?? [];
    cache.packages.set(k, rows);
    if (rows.length > 0) out.set(k, rows);
  }
  return out;
}

/** The headlines of `advisoryIds` (none for a withdrawn or absent advisory), by id. */
export async function cachedHeadlines(client: PoolClient, schema: string, advisoryIds: Iterable<string>, cache: ActiveDbCache): Promise<Map<string, Headline>> {
  const out = new Map<string, Headline>();
  const missing: string[] = [];
  for (const id of new Set(advisoryIds)) {
    const hit = cache.headlines.get(id);
    if (hit === undefined) missing.push(id);
    else if (hit !== null) out.set(id, hit);
  }
  if (missing.length === 0) return out;
  const read = await queryHeadlines(client, schema, missing);
  for (const id of missing) {
    const h = read.get(id) ?? null;
    cache.headlines.set(id, h);
    if (h) out.set(id, h);
  }
  return out;
}

/** The KEV, ENISA and EPSS entries of `ids`' CVEs. */
export async function cachedEnrichment(client: PoolClient, schema: string, ids: Iterable<string>, tables: OptionalTables, cache: ActiveDbCache): Promise<Enrichment> {
  const out: Enrichment = { kev: new Map(), enisa: new Map(), epss: new Map() };
  const put = (cve: string, e: CveEntries): void => {
    if (e.kev) out.kev.set(cve, e.kev);
    if (e.enisa) out.enisa.set(cve, e.enisa);
    if (e.epss) out.epss.set(cve, e.epss);
  };
  const missing: string[] = [];
  for (const cve of cveIds(ids)) {
    const hit = cache.cves.get(cve);
    if (hit === undefined) missing.push(cve);
    else put(cve, hit);
  }
  if (missing.length === 0) return out;
  const read = await queryEnrichment(client, schema, missing, tables);
  for (const cve of missing) {
    const e: CveEntries = { kev: read.kev.get(cve) ?? null, enisa: read.enisa.get(cve) ?? null, epss: read.epss.get(cve) ?? null };
    cache.cves.set(cve, e);
    put(cve, e);
  }
  return out;
}
