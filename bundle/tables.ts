/**
 * The vulnerability-DB tables a bundle carries, one TSV member each, in
 * PostgreSQL's COPY text format (tab-separated, `\N` for NULL, backslash escapes;
 * see tsv.ts). This list is the single definition the builder writes and the
 * pipeline's load stage creates and COPYs: change it only with FORMAT_VERSION.
 *
 * Every table's rows are sorted by `advisory_id` (then the remaining columns), so
 * the same feeds give the same bytes and two DBs can be diffed by a streaming
 * merge-join.
 */

export interface Column {
  name: string;
  /** PostgreSQL type used in the staging/active tables. */
  type: 'text' | 'real' | 'timestamptz' | 'boolean';
  nullable: boolean;
}

export interface TableDef {
  name: TableName;
  /** Path of the member inside the tarball. */
  member: string;
  columns: Column[];
  /** Index definitions built after the COPY: column lists. */
  indexes: string[][];
  /** Columns that form the primary key, if any. */
  primaryKey?: string[];
}

export type TableName = 'advisories' | 'aliases' | 'affected' | 'cpes';

const c = (name: string, type: Column['type'] = 'text', nullable = true): Column => ({ name, type, nullable });

export const TABLES: readonly TableDef[] = [
  {
    name: 'advisories',
    member: 'db/advisories.tsv',
    columns: [
      c('advisory_id', 'text', false),
      c('summary'),
      c('severity'), // CRITICAL | HIGH | MEDIUM | LOW | NONE | null
      c('cvss_score', 'real'),
      c('cvss_vector'),
      c('published', 'timestamptz'),
      c('modified', 'timestamptz'),
      c('withdrawn', 'timestamptz'),
      c('sources', 'text', false), // comma-separated feed names, sorted: "ghsa,nvd,osv"
      c('content_hash', 'text', false), // sha256 hex of the whole merged advisory (canonical JSON): what a delta compares
      c('doc', 'text', false), // what no other column or table carries, as canonical JSON (builder/rows.ts advisoryDetail)
    ],
    primaryKey: ['advisory_id'],
    indexes: [],
  },
  {
    name: 'aliases',
    member: 'db/aliases.tsv',
    columns: [c('advisory_id', 'text', false), c('alias', 'text', false)],
    indexes: [['alias'], ['advisory_id']],
  },
  {
    name: 'affected',
    member: 'db/affected.tsv',
    columns: [
      c('advisory_id', 'text', false),
      c('ecosystem', 'text', false), // OSV ecosystem as published, e.g. "npm", "Debian:12", "Alpine:v3.18"
      c('package', 'text', false), // normalised name (packageKey), the lookup key
      c('purl'), // package URL without version, when the source gave or implies one
      c('ranges', 'text', false), // JSON array of OSV ranges [{type, repo?, events:[...]}]
      c('versions', 'text', false), // JSON array of explicitly affected versions
      c('ecosystem_specific'), // JSON or null
    ],
    indexes: [['ecosystem', 'package'], ['advisory_id']], // scans look up (ecosystem, package); deltas and re-scans advisory_id
  },
  {
    name: 'cpes',
    member: 'db/cpes.tsv',
    columns: [
      c('advisory_id', 'text', false),
      c('part', 'text', false), // a | o | h
      c('vendor', 'text', false),
      c('product', 'text', false),
      c('criteria', 'text', false), // the full cpe:2.3 string from NVD
      c('vulnerable', 'boolean', false),
      c('version_start_including'),
      c('version_start_excluding'),
      c('version_end_including'),
      c('version_end_excluding'),
    ],
    indexes: [['vendor', 'product'], ['advisory_id']],
  },
];

export function tableByMember(member: string): TableDef | undefined {
  return TABLES.find((t) => t.member === member);
}

/** Member listing advisory ids a delta removes (one id a line, sorted). Delta bundles only. */
export const REMOVED_MEMBER = 'db/removed.tsv';
/**
 * Member listing, per table, the advisories a delta keeps whose rows in that
 * table all go: `<table><TAB><advisory_id>` lines, in TABLES order, then by
 * advisory_id. Delta bundles of format 3 and later only (docs/bundle-format.md).
 */
export const CLEARED_MEMBER = 'db/cleared.tsv';
export const MANIFEST_MEMBER = 'manifest.json';
export const SBOM_MEMBER = 'sbom.spdx.json';
export const IMAGES_DIR = 'images/';
