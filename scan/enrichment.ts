/**
 * KEV and EPSS on findings: the active DB's `kev` (CISA), `euvd_kev` (ENISA's
 * exploited list) and `epss` tables (bundle/extra-tables.ts), keyed by CVE,
 * looked up for every CVE id a finding has (its advisory id and aliases), in
 * the scan's snapshot. A DB loaded from a kit without them (or before they
 * existed) has no such rows, and findings carry null.
 *
 * A vulnerability with several CVE ids (one advisory merging them) takes the
 * KEV entry added first — CISA's when CISA lists it, else ENISA's, its
 * `catalog` saying which, `catalogs` naming every catalog that lists it —
 * and the highest EPSS score.
 */
import type { PoolClient } from 'pg';
import { ident } from '../infra/db.ts';
import type { EpssInfo, Finding, KevInfo } from './findings.ts';
import { optionalTables, type OptionalTables } from './optional-tables.ts';

const CVE = /^CVE-\d{4}-\d+$/;

export interface Enrichment {
  kev: Map<string, KevInfo>;
  /** ENISA's exploited list (EUVD) */
  enisa: Map<string, KevInfo>;
  epss: Map<string, EpssInfo>;
}

/** The CVE ids among `ids`, once each: what KEV and EPSS are keyed by. */
export function cveIds(ids: Iterable<string>): string[] {
  return [...new Set([...ids].filter((i) => CVE.test(i)))];
}

/** KEV and EPSS rows of `ids` (CVE ids only are looked up). */
type KevRow = { cve_id: string; date_added: string; due_date: string | null; known_ransomware: string | null; vulnerability_name: string | null; required_action: string | null };
type EnisaRow = { cve_id: string; euvd_id: string; exploited_since: string; vendor_project: string | null; product: string | null };
type EpssRow = { cve_id: string; score: number; percentile: number; score_date: string };

/**
 * The KEV, ENISA and EPSS entries of `ids`' CVEs: one round trip for the
 * three (each table's rows as a JSON array), reading only the tables the
 * schema holds (`tables`, else asked here).
 */
export async function queryEnrichment(client: PoolClient, schema: string, ids: Iterable<string>, tables?: OptionalTables): Promise<Enrichment> {
  const cves = cveIds(ids);
  const out: Enrichment = { kev: new Map(), enisa: new Map(), epss: new Map() };
  if (cves.length === 0) return out;
  const has = tables ?? (await optionalTables(client, schema));
  const part = (table: string, columns: string): string =>
    `(SELECT json_agg(x) FROM (SELECT ${columns} FROM ${ident(schema)}.${ident(table)} WHERE cve_id = ANY($1::text[])) x)`;
  const kev = has.kev ? part('kev', 'cve_id, date_added, due_date, known_ransomware, vulnerability_name, required_action') : 'NULL::json';
  const enisa = has.euvd_kev ? part('euvd_kev', 'cve_id, euvd_id, exploited_since, vendor_project, product') : 'NULL::json';
  const epss = has.epss ? part('epss', 'cve_id, score, percentile, score_date') : 'NULL::json';
  if (!has.kev && !has.euvd_kev && !has.epss) return out;
  const r = await client.query<{ kev: KevRow[] | null; enisa: EnisaRow[] | null; epss: EpssRow[] | null }>(`SELECT ${kev} AS kev, ${enisa} AS enisa, ${epss} AS epss`, [cves]);
  const row = r.rows[0]!;
  for (const k of row.kev ?? []) {
    out.kev.set(k.cve_id, {
      cve: k.cve_id,
      catalog: 'cisa',
      catalogs: ['cisa'],
      dateAdded: k.date_added,
      dueDate: k.due_date,
      knownRansomwareCampaignUse: k.known_ransomware,
      vulnerabilityName: k.vulnerability_name,
      requiredAction: k.required_action,
    });
  }
  for (const k of row.enisa ?? []) {
    out.enisa.set(k.cve_id, {
      cve: k.cve_id,
      catalog: 'enisa',
      catalogs: ['enisa'],
      euvdId: k.euvd_id,
      dateAdded: k.exploited_since,
      dueDate: null,
      knownRansomwareCampaignUse: null,
      vulnerabilityName: [k.vendor_project, k.product].filter(Boolean).join(' ') || null,
      requiredAction: null,
    });
  }
  for (const e of row.epss ?? []) out.epss.set(e.cve_id, { cve: e.cve_id, score: e.score, percentile: e.percentile, date: e.score_date });
  return out;
}

export function enrich(f: Finding, e: Enrichment): Finding {
  let cisa: KevInfo | null = null;
  let enisa: KevInfo | null = null;
  let epss: EpssInfo | null = null;
  for (const id of [f.advisoryId, ...f.aliases]) {
    const k = e.kev.get(id);
    if (k && (!cisa || k.dateAdded < cisa.dateAdded)) cisa = k;
    const n = e.enisa?.get(id);
    if (n && (!enisa || n.dateAdded < enisa.dateAdded)) enisa = n;
    const s = e.epss.get(id);
    if (s && (!epss || s.score > epss.score)) epss = s;
  }
  const catalogs: KevInfo['catalogs'] = [...(cisa ? ['cisa' as const] : []), ...(enisa ? ['enisa' as const] : [])];
  const kev = cisa ?? enisa;
  return { ...f, kev: kev ? { ...kev, catalogs } : null, epss };
}
