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

const CVE = /^CVE-\d{4}-\d+$/;

async function hasTable(client: PoolClient, schema: string, table: string): Promise<boolean> {
  const r = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(schema)}.${ident(table)}`]);
  return Boolean(r.rows[0]?.t);
}

export interface Enrichment {
  kev: Map<string, KevInfo>;
  /** ENISA's exploited list (EUVD) */
  enisa: Map<string, KevInfo>;
  epss: Map<string, EpssInfo>;
}

/** KEV and EPSS rows of `ids` (CVE ids only are looked up). */
export async function queryEnrichment(client: PoolClient, schema: string, ids: Iterable<string>): Promise<Enrichment> {
  const cves = [...new Set([...ids].filter((i) => CVE.test(i)))];
  const out: Enrichment = { kev: new Map(), enisa: new Map(), epss: new Map() };
  if (cves.length === 0) return out;
  if (await hasTable(client, schema, 'kev')) {
    const r = await client.query<{ cve_id: string; date_added: string; due_date: string | null; known_ransomware: string | null; vulnerability_name: string | null; required_action: string | null }>(
      `SELECT cve_id, date_added, due_date, known_ransomware, vulnerability_name, required_action FROM ${ident(schema)}.kev WHERE cve_id = ANY($1::text[])`,
      [cves],
    );
    for (const k of r.rows) {
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
  }
  if (await hasTable(client, schema, 'euvd_kev')) {
    const r = await client.query<{ cve_id: string; euvd_id: string; exploited_since: string; vendor_project: string | null; product: string | null }>(
      `SELECT cve_id, euvd_id, exploited_since, vendor_project, product FROM ${ident(schema)}.euvd_kev WHERE cve_id = ANY($1::text[])`,
      [cves],
    );
    for (const k of r.rows) {
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
  }
  if (await hasTable(client, schema, 'epss')) {
    const r = await client.query<{ cve_id: string; score: number; percentile: number; score_date: string }>(
      `SELECT cve_id, score, percentile, score_date FROM ${ident(schema)}.epss WHERE cve_id = ANY($1::text[])`,
      [cves],
    );
    for (const e of r.rows) out.epss.set(e.cve_id, { cve: e.cve_id, score: e.score, percentile: e.percentile, date: e.score_date });
  }
  return out;
}

/** The finding with its `kev` and `epss` set (null when none of its CVE ids has one). */
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
