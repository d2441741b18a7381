/**
 * The DB side of a scan: one query per table for the whole SBOM, inside the
 * caller's snapshot. Every (ecosystem, package) pair goes in one array
 * parameter pair and is joined with `unnest`, so a 1,000-component SBOM is
 * one round trip on the (ecosystem, package) index; likewise (part, vendor,
 * product) for CPEs. The candidate rows carry only what the version check
 * needs; the matches' headlines (summary, severity, aliases) are a query
 * of their own (queryHeadlines), which the scan sends once the versions are
 * checked, for what matched only, and withdrawn advisories have none, so
 * their matches never come back.
 */
import type { PoolClient } from 'pg';
import { ident } from '../infra/db.ts';

export interface AffectedRow {
  advisory_id: string;
  ecosystem: string;
  package: string;
  ranges: string;
  versions: string;
}

export interface CpeMatchRow {
  advisory_id: string;
  part: string;
  vendor: string;
  product: string;
  criteria: string;
  version_start_including: string | null;
  version_start_excluding: string | null;
  version_end_including: string | null;
  version_end_excluding: string | null;
}

/** What a finding shows of its advisory: the headline and every other id. */
export interface Headline {
  summary: string | null;
  severity: string | null;
  cvss_score: number | null;
  cvss_vector: string | null;
  aliases: string[];
}

const t = (schema: string, table: string) => `${ident(schema)}.${ident(table)}`;

/** Affected rows for every (ecosystem, package) pair: what the version check reads, nothing more. */
export async function queryAffected(client: PoolClient, schema: string, pairs: { ecosystem: string; package: string }[]): Promise<AffectedRow[]> {
  if (pairs.length === 0) return [];
  const sql = `
    SELECT a.advisory_id, a.ecosystem, a.package, a.ranges, a.versions
      FROM unnest($1::text[], $2::text[]) AS q(ecosystem, package)
      JOIN ${t(schema, 'affected')} a ON a.ecosystem = q.ecosystem AND a.package = q.package`;
  const r = await client.query<AffectedRow>(sql, [pairs.map((p) => p.ecosystem), pairs.map((p) => p.package)]);
  return r.rows;
}

/** Vulnerable `cpes` rows for every (part, vendor, product). */
export async function queryCpes(client: PoolClient, schema: string, keys: { part: string; vendor: string; product: string }[]): Promise<CpeMatchRow[]> {
  if (keys.length === 0) return [];
  const sql = `
    SELECT c.advisory_id, c.part, c.vendor, c.product, c.criteria,
           c.version_start_including, c.version_start_excluding, c.version_end_including, c.version_end_excluding
      FROM unnest($1::text[], $2::text[], $3::text[]) AS q(part, vendor, product)
      JOIN ${t(schema, 'cpes')} c ON c.vendor = q.vendor AND c.product = q.product AND c.part = q.part
     WHERE c.vulnerable`;
  const r = await client.query<CpeMatchRow>(sql, [keys.map((k) => k.part), keys.map((k) => k.vendor), keys.map((k) => k.product)]);
  return r.rows;
}

/**
 * The headlines of the advisories `advisoryIds` (what a scan matched), by id.
 * A withdrawn advisory has none: its matches are dropped. A query apart from
 * the candidate rows, so it reads only the advisories that matched (about a
 * third of the candidates), each advisory's headline and aliases once, not
 * once a row.
 */
export async function queryHeadlines(client: PoolClient, schema: string, advisoryIds: Iterable<string>): Promise<Map<string, Headline>> {
  const ids = [...new Set(advisoryIds)];
  const out = new Map<string, Headline>();
  if (ids.length === 0) return out;
  const sql = `
    SELECT adv.advisory_id, adv.summary, adv.severity, adv.cvss_score, adv.cvss_vector,
           ARRAY(SELECT al.alias FROM ${t(schema, 'aliases')} al WHERE al.advisory_id = adv.advisory_id ORDER BY al.alias) AS aliases
      FROM ${t(schema, 'advisories')} adv
     WHERE adv.advisory_id = ANY($1::text[]) AND adv.withdrawn IS NULL`;
  const r = await client.query<Headline & { advisory_id: string }>(sql, [ids]);
  for (const { advisory_id, ...h } of r.rows) out.set(advisory_id, h);
  return out;
}
