/**
 * The DB's extra tables: data a kit carries beside the advisories, each keyed
 * by its own column rather than by advisory (bundle/tables.ts), so that it can
 * change without touching an advisory and a delta carries only what changed:
 *
 *   kev   CISA's Known Exploited Vulnerabilities catalog, one row per CVE
 *   euvd_kev  ENISA's exploited list (EUVD), beside CISA's: one row per CVE an
 *         exploited EUVD id names
 *   epss  FIRST's EPSS scores, one row per CVE (the newest score date)
 *   vex   VEX statements carried in the kit (CSAF VEX documents), every row of
 *         one advisory (keyed by advisory_id, rows derived from its document)
 *
 * Each is one optional TSV member (COPY text, sorted bytewise by the whole
 * line, so by key first): a full bundle carries a member when its source feed
 * was present at build time; a kit without it loads the table empty. A delta
 * carries, per key, every row of each key added or changed, and the removed
 * keys in `<table>.removed.tsv` (one key a line), exactly as db/removed.tsv
 * does for advisories. Applying it: delete the rows of every key in (the
 * member's keys ∪ the removed keys), insert the member's rows.
 */
import type { Column } from './tables.ts';

export type ExtraTableName = 'kev' | 'epss' | 'vex' | 'euvd_kev';

export interface ExtraTableDef {
  name: ExtraTableName;
  /** The table member. */
  member: string;
  /** Delta only: the keys the delta removes. */
  removedMember: string;
  /** The key column (the first column). */
  key: string;
  columns: Column[];
  /** Index definitions built after the COPY. */
  indexes: string[][];
}

const c = (name: string, type: Column['type'] = 'text', nullable = true): Column => ({ name, type, nullable });

export const EXTRA_TABLES: readonly ExtraTableDef[] = [
  {
    name: 'kev',
    member: 'db/kev.tsv',
    removedMember: 'db/kev.removed.tsv',
    key: 'cve_id',
    columns: [
      c('cve_id', 'text', false),
      c('vendor_project'),
      c('product'),
      c('vulnerability_name'),
      c('date_added', 'text', false), // YYYY-MM-DD
      c('due_date'), // YYYY-MM-DD
      c('known_ransomware'), // "Known" | "Unknown", as CISA writes it
      c('required_action'),
      c('catalog_version'),
    ],
    indexes: [['cve_id']],
  },
  {
    name: 'epss',
    member: 'db/epss.tsv',
    removedMember: 'db/epss.removed.tsv',
    key: 'cve_id',
    columns: [
      c('cve_id', 'text', false),
      c('score', 'real', false), // probability of exploitation in the next 30 days, 0..1
      c('percentile', 'real', false), // 0..1
      c('score_date', 'text', false), // YYYY-MM-DD of the scores
      c('model_version'),
    ],
    indexes: [['cve_id']],
  },
  {
    name: 'vex',
    member: 'db/vex.tsv',
    removedMember: 'db/vex.removed.tsv',
    key: 'advisory_id',
    columns: [
      c('advisory_id', 'text', false),
      c('vulnerability_id', 'text', false), // the id the statement names (a CVE)
      c('product_purl'), // the product's purl (with or without version)
      c('product_cpe'),
      c('status', 'text', false), // not_affected | fixed
      c('justification'), // CSAF flag label / VEX justification
      c('impact_statement'),
      c('publisher', 'text', false),
      c('document', 'text', false), // the CSAF document's tracking id
      c('released'), // the document's current_release_date
    ],
    indexes: [['advisory_id'], ['vulnerability_id']],
  },
  {
    name: 'euvd_kev',
    member: 'db/euvd_kev.tsv',
    removedMember: 'db/euvd_kev.removed.tsv',
    key: 'cve_id',
    columns: [
      c('cve_id', 'text', false),
      c('euvd_id', 'text', false), // EUVD-YYYY-N
      c('exploited_since', 'text', false), // YYYY-MM-DD
      c('vendor_project'), // ENISA's vendor names, ", "-joined
      c('product'), // ENISA's product names, ", "-joined
      c('date_updated'), // the EUVD record's last update, ISO 8601
    ],
    indexes: [['cve_id']],
  },
];

export function extraTableByMember(member: string): ExtraTableDef | undefined {
  return EXTRA_TABLES.find((t) => t.member === member);
}

/** The table a delta's removed keys of `t` are staged in. */
export function removedTableName(t: ExtraTableDef): string {
  return `${t.name}_removed`;
}
