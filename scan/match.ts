/**
 * The DB side of a scan: one query per table for the whole SBOM, inside the
 * caller's snapshot. Every (ecosystem, package) pair goes in one array
 * parameter pair and is joined with `unnest`, so a 1,000-component SBOM is
 * one round trip on the (ecosystem, package) index; likewise (part, vendor,
 * product) for CPEs. Withdrawn advisories never come back.
 */
import type { PoolClient } from 'pg';
import { ident } from '../infra/db.ts';

export interface AffectedRow {
  advisory_id: string;
  ecosystem: string;
  package: string;
  ranges: string;
  versions: string;
  summary: string | null;
  severity: string | null;
  cvss_score: number | null;
  cvss_vector: string | null;
  aliases: string[] | null;
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
  summary: string | null;
  severity: string | null;
  cvss_score: number | null;
  cvss_vector: string | null;
  aliases: string[] | null;
}

const t = (schema: string, table: string) => `${ident(schema)}.${ident(table)}`;

function aliasesLateral(schema: string, alias: string): string {
  return `LEFT JOIN LATERAL (SELECT array_agg(al.alias ORDER BY al.alias) AS aliases FROM ${t(schema, 'aliases')} al WHERE al.advisory_id = ${alias}.advisory_id) aka ON true`;
}

/** Affected rows for every (ecosystem, package) pair, with their advisory's headline. */
export async function queryAffected(client: PoolClient, schema: string, pairs: { ecosystem: string; package: string }[]): Promise<AffectedRow[]> {
  if (pairs.length === 0) return [];
  const sql = `
    SELECT a.advisory_id, a.ecosystem, a.package, a.ranges, a.versions,
           adv.summary, adv.severity, adv.cvss_score, adv.cvss_vector, aka.aliases
      FROM unnest($1::text[], $2::text[]) AS q(ecosystem, package)
      JOIN ${t(schema, 'affected')} a ON a.ecosystem = q.ecosystem AND a.package = q.package
      JOIN ${t(schema, 'advisories')} adv ON adv.advisory_id = a.advisory_id
      ${aliasesLateral(schema, 'a')}
     WHERE adv.withdrawn IS NULL`;
  const r = await client.query<AffectedRow>(sql, [pairs.map((p) => p.ecosystem), pairs.map((p) => p.package)]);
  return r.rows;
}

/** Vulnerable `cpes` rows for every (part, vendor, product), with their advisory's headline. */
export async function queryCpes(client: PoolClient, schema: string, keys: { part: string; vendor: string; product: string }[]): Promise<CpeMatchRow[]> {
  if (keys.length === 0) return [];
  const sql = `
    SELECT c.advisory_id, c.part, c.vendor, c.product, c.criteria,
           c.version_start_including, c.version_start_excluding, c.version_end_including, c.version_end_excluding,
           adv.summary, adv.severity, adv.cvss_score, adv.cvss_vector, aka.aliases
      FROM unnest($1::text[], $2::text[], $3::text[]) AS q(part, vendor, product)
      JOIN ${t(schema, 'cpes')} c ON c.vendor = q.vendor AND c.product = q.product AND c.part = q.part
      JOIN ${t(schema, 'advisories')} adv ON adv.advisory_id = c.advisory_id
      ${aliasesLateral(schema, 'c')}
     WHERE c.vulnerable AND adv.withdrawn IS NULL`;
  const r = await client.query<CpeMatchRow>(sql, [keys.map((k) => k.part), keys.map((k) => k.vendor), keys.map((k) => k.product)]);
  return r.rows;
}
