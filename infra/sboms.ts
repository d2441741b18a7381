/**
 * Stored SBOMs in PostgreSQL (infra/sql/004_sboms.sql): the documents, their
 * findings per activation, and the newest diff per SBOM. Plain SQL, no policy:
 * functions/sboms/rescan.ts decides what to write, the CLI and the API read here.
 *
 * An activation is a row of ouk_meta.activations (an import activated, a delta
 * applied, a rollback): its `seq` is what a result was computed against.
 */
import type { Queryable } from './db.ts';
import { ident } from './db.ts';


export interface StoredSbomRow {
  name: string;
  format: string;
  specVersion: string;
  docBytes: number;
  components: number;
  packageKeys: string[];
  addedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface SbomCounts {
  findings: number;
  bySeverity: Record<string, number>;
  kev: number;
}

export interface SbomResultRow<F = unknown> {
  sbom: string;
  activationSeq: number;
  dbVersion: string;
  findings: F[];
  counts: SbomCounts;
  scanned: boolean;
  seconds: number | null;
  computedAt: Date;
}

export interface SbomDiffRow<F = unknown, C = unknown> {
  sbom: string;
  fromSeq: number | null;
  fromVersion: string | null;
  toSeq: number;
  toVersion: string;
  added: F[];
  removed: F[];
  changed: C[];
  computedAt: Date;
}

interface SbomDbRow {
  name: string;
  format: string;
  spec_version: string;
  doc_bytes: number;
  components: number;
  package_keys: string[];
  added_by: string | null;
  created_at: Date;
  updated_at: Date;
}

function sbomFromRow(r: SbomDbRow): StoredSbomRow {
  return {
    name: r.name,
    format: r.format,
    specVersion: r.spec_version,
    docBytes: r.doc_bytes,
    components: r.components,
    packageKeys: r.package_keys,
    addedBy: r.added_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const SBOM_COLUMNS = 'name, format, spec_version, doc_bytes, components, package_keys, added_by, created_at, updated_at';

export async function insertSbom(
  q: Queryable,
  s: { name: string; format: string; specVersion: string; document: unknown; docBytes: number; components: number; packageKeys: string[]; addedBy: string | null; now: Date },
  replace: boolean,
): Promise<'inserted' | 'replaced' | 'exists'> {
  const values = [s.name, s.format, s.specVersion, JSON.stringify(s.document), s.docBytes, s.components, s.packageKeys, s.addedBy, s.now];
  if (!replace) {
    const r = await q.query(
      `INSERT INTO ouk_meta.sboms (name, format, spec_version, document, doc_bytes, components, package_keys, added_by, created_at, updated_at)
       VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $9) ON CONFLICT (name) DO NOTHING`,
      values,
    );
    return r.rowCount === 1 ? 'inserted' : 'exists';
  }
  const r = await q.query<{ inserted: boolean }>(
    `INSERT INTO ouk_meta.sboms (name, format, spec_version, document, doc_bytes, components, package_keys, added_by, created_at, updated_at)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $9)
     ON CONFLICT (name) DO UPDATE SET format = EXCLUDED.format, spec_version = EXCLUDED.spec_version, document = EXCLUDED.document,
       doc_bytes = EXCLUDED.doc_bytes, components = EXCLUDED.components, package_keys = EXCLUDED.package_keys,
       added_by = EXCLUDED.added_by, updated_at = EXCLUDED.updated_at
     RETURNING (xmax = 0) AS inserted`,
    values,
  );
  if (r.rows[0]?.inserted) return 'inserted';
  // A new document: findings of the old one say nothing about it.
  await q.query('DELETE FROM ouk_meta.sbom_results WHERE sbom = $1', [s.name]);
  await q.query('DELETE FROM ouk_meta.sbom_diffs WHERE sbom = $1', [s.name]);
  return 'replaced';
}

export async function getSbom(q: Queryable, name: string, forUpdate = false): Promise<StoredSbomRow | null> {
  const r = await q.query<SbomDbRow>(`SELECT ${SBOM_COLUMNS} FROM ouk_meta.sboms WHERE name = $1${forUpdate ? ' FOR UPDATE' : ''}`, [name]);
  return r.rows[0] ? sbomFromRow(r.rows[0]) : null;
}

export async function getSbomDocument(q: Queryable, name: string): Promise<unknown> {
  const r = await q.query<{ document: unknown }>('SELECT document FROM ouk_meta.sboms WHERE name = $1', [name]);
  return r.rows[0]?.document;
}

export async function deleteSbom(q: Queryable, name: string): Promise<boolean> {
  const r = await q.query('DELETE FROM ouk_meta.sboms WHERE name = $1', [name]);
  return r.rowCount === 1;
}

/** The stored SBOMs without a result for activation `seq`, by name. */
export async function sbomsWithoutResult(q: Queryable, seq: number): Promise<string[]> {
  const r = await q.query<{ name: string }>(
    'SELECT s.name FROM ouk_meta.sboms s WHERE NOT EXISTS (SELECT 1 FROM ouk_meta.sbom_results r WHERE r.sbom = s.name AND r.activation_seq = $1) ORDER BY s.name',
    [seq],
  );
  return r.rows.map((x) => x.name);
}

interface ResultDbRow {
  sbom: string;
  activation_seq: string;
  db_version: string;
  findings: unknown[];
  counts: SbomCounts;
  scanned: boolean;
  seconds: number | null;
  computed_at: Date;
}

function resultFromRow<F>(r: ResultDbRow): SbomResultRow<F> {
  return {
    sbom: r.sbom,
    activationSeq: Number(r.activation_seq),
    dbVersion: r.db_version,
    findings: r.findings as F[],
    counts: r.counts,
    scanned: r.scanned,
    seconds: r.seconds,
    computedAt: r.computed_at,
  };
}

/** The result of `name` for activation `seq`, or (with `before`) its newest result before it. */
export async function resultFor<F>(q: Queryable, name: string, seq: number, before = false): Promise<SbomResultRow<F> | null> {
  const r = await q.query<ResultDbRow>(
    before
      ? 'SELECT * FROM ouk_meta.sbom_results WHERE sbom = $1 AND activation_seq < $2 ORDER BY activation_seq DESC LIMIT 1'
      : 'SELECT * FROM ouk_meta.sbom_results WHERE sbom = $1 AND activation_seq = $2',
    [name, seq],
  );
  return r.rows[0] ? resultFromRow<F>(r.rows[0]) : null;
}

/** The activation of the newest result of `name` before `seq` (what resultFor(…, true) would read), without reading its findings. */
export async function resultSeqBefore(q: Queryable, name: string, seq: number): Promise<number | null> {
  const r = await q.query<{ seq: string }>('SELECT activation_seq AS seq FROM ouk_meta.sbom_results WHERE sbom = $1 AND activation_seq < $2 ORDER BY activation_seq DESC LIMIT 1', [name, seq]);
  return r.rows[0] ? Number(r.rows[0].seq) : null;
}

export async function latestResult<F>(q: Queryable, name: string): Promise<SbomResultRow<F> | null> {
  const r = await q.query<ResultDbRow>('SELECT * FROM ouk_meta.sbom_results WHERE sbom = $1 ORDER BY activation_seq DESC LIMIT 1', [name]);
  return r.rows[0] ? resultFromRow<F>(r.rows[0]) : null;
}

export async function insertResult<F>(q: Queryable, r: SbomResultRow<F>): Promise<boolean> {
  const ins = await q.query(
    `INSERT INTO ouk_meta.sbom_results (sbom, activation_seq, db_version, findings, counts, scanned, seconds, computed_at)
     VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8) ON CONFLICT (sbom, activation_seq) DO NOTHING`,
    [r.sbom, r.activationSeq, r.dbVersion, JSON.stringify(r.findings), JSON.stringify(r.counts), r.scanned, r.seconds, r.computedAt],
  );
  if (ins.rowCount !== 1) return false;
  // The newest two are what a diff and `stella sbom diff` need.
  await q.query(
    `DELETE FROM ouk_meta.sbom_results WHERE sbom = $1 AND activation_seq < (
       SELECT min(activation_seq) FROM (SELECT activation_seq FROM ouk_meta.sbom_results WHERE sbom = $1 ORDER BY activation_seq DESC LIMIT 2) newest)`,
    [r.sbom],
  );
  return true;
}

/** Stores `d` as the SBOM's newest diff, unless a newer one is already there. */
export async function upsertDiff<F, C>(q: Queryable, d: SbomDiffRow<F, C>): Promise<void> {
  await q.query(
    `INSERT INTO ouk_meta.sbom_diffs (sbom, from_seq, from_version, to_seq, to_version, added, removed, changed, computed_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9)
     ON CONFLICT (sbom) DO UPDATE SET from_seq = EXCLUDED.from_seq, from_version = EXCLUDED.from_version, to_seq = EXCLUDED.to_seq,
       to_version = EXCLUDED.to_version, added = EXCLUDED.added, removed = EXCLUDED.removed, changed = EXCLUDED.changed, computed_at = EXCLUDED.computed_at
     WHERE ouk_meta.sbom_diffs.to_seq < EXCLUDED.to_seq`,
    [d.sbom, d.fromSeq, d.fromVersion, d.toSeq, d.toVersion, JSON.stringify(d.added), JSON.stringify(d.removed), JSON.stringify(d.changed), d.computedAt],
  );
}

export async function getDiff<F, C>(q: Queryable, name: string): Promise<SbomDiffRow<F, C> | null> {
  const r = await q.query<{
    sbom: string;
    from_seq: string | null;
    from_version: string | null;
    to_seq: string;
    to_version: string;
    added: F[];
    removed: F[];
    changed: C[];
    computed_at: Date;
  }>('SELECT * FROM ouk_meta.sbom_diffs WHERE sbom = $1', [name]);
  const d = r.rows[0];
  if (!d) return null;
  return {
    sbom: d.sbom,
    fromSeq: d.from_seq === null ? null : Number(d.from_seq),
    fromVersion: d.from_version,
    toSeq: Number(d.to_seq),
    toVersion: d.to_version,
    added: d.added,
    removed: d.removed,
    changed: d.changed,
    computedAt: d.computed_at,
  };
}

export interface SbomOverview extends StoredSbomRow {
  latest: { activationSeq: number; dbVersion: string; counts: SbomCounts; scanned: boolean; computedAt: Date } | null;
  diff: {
    fromVersion: string | null;
    toVersion: string;
    toSeq: number;
    added: number;
    removed: number;
    changed: number;
    /** the most severe new findings (at most 5), in the result's order */
    newest: Array<{ advisoryId: string; severity: string; package: string; installedVersion: string }>;
    computedAt: Date;
  } | null;
}

/** Every stored SBOM with its newest result's counts and its newest diff's sizes (one query). */
export async function sbomOverview(q: Queryable): Promise<SbomOverview[]> {
  const r = await q.query<
    SbomDbRow & {
      r_seq: string | null;
      r_version: string | null;
      r_counts: SbomCounts | null;
      r_scanned: boolean | null;
      r_at: Date | null;
      d_from: string | null;
      d_to: string | null;
      d_to_seq: string | null;
      d_added: number | null;
      d_removed: number | null;
      d_changed: number | null;
      d_newest: Array<{ advisoryId: string; severity: string; package: string; installedVersion: string }> | null;
      d_at: Date | null;
    }
  >(
    `SELECT s.name, s.format, s.spec_version, s.doc_bytes, s.components, '{}'::text[] AS package_keys, s.added_by, s.created_at, s.updated_at,
            r.activation_seq AS r_seq, r.db_version AS r_version, r.counts AS r_counts, r.scanned AS r_scanned, r.computed_at AS r_at,
            d.from_version AS d_from, d.to_version AS d_to, d.to_seq AS d_to_seq, jsonb_array_length(d.added) AS d_added,
            jsonb_array_length(d.removed) AS d_removed, jsonb_array_length(d.changed) AS d_changed, d.computed_at AS d_at,
            (SELECT jsonb_agg(e) FROM (SELECT jsonb_build_object('advisoryId', x ->> 'advisoryId', 'severity', x ->> 'severity', 'package', x ->> 'package',
                                                                 'installedVersion', x ->> 'installedVersion') AS e
                                         FROM jsonb_array_elements(d.added) WITH ORDINALITY AS a(x, i) ORDER BY i LIMIT 5) n) AS d_newest
       FROM ouk_meta.sboms s
       LEFT JOIN LATERAL (SELECT * FROM ouk_meta.sbom_results x WHERE x.sbom = s.name ORDER BY x.activation_seq DESC LIMIT 1) r ON true
       LEFT JOIN ouk_meta.sbom_diffs d ON d.sbom = s.name
      ORDER BY s.name`,
  );
  return r.rows.map((x) => ({
    ...sbomFromRow(x),
    latest:
      x.r_seq === null
        ? null
        : { activationSeq: Number(x.r_seq), dbVersion: x.r_version ?? '', counts: x.r_counts ?? { findings: 0, bySeverity: {}, kev: 0 }, scanned: x.r_scanned ?? true, computedAt: x.r_at ?? new Date(0) },
    diff:
      x.d_to === null
        ? null
        : {
            fromVersion: x.d_from,
            toVersion: x.d_to,
            toSeq: Number(x.d_to_seq),
            added: x.d_added ?? 0,
            removed: x.d_removed ?? 0,
            changed: x.d_changed ?? 0,
            newest: x.d_newest ?? [],
            computedAt: x.d_at ?? new Date(0),
          },
  }));
}

/**
 * The lookup keys (see ouk_meta.sboms.package_keys) a delta's activation or
 * its rollback may have changed findings for: the packages and CPE products
 * of every advisory it touched (rows before and after), and of every advisory
 * whose KEV, EPSS or VEX rows it touched. Null when the undo data is gone (the
 * caller then re-scans everything).
 */
export async function touchedKeys(q: Queryable, undoSchema: string, activeSchema: string): Promise<string[] | null> {
  const exists = async (schema: string, table: string): Promise<boolean> =>
    (await q.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(schema)}.${ident(table)}`])).rows[0]?.t != null;
  if (!(await exists(undoSchema, 'touched'))) return null;
  const u = (t: string): string => `${ident(undoSchema)}.${ident(t)}`;
  const a = (t: string): string => `${ident(activeSchema)}.${ident(t)}`;
  // advisories whose rows changed, and those whose KEV / EPSS / VEX rows changed
  const advisories = [`SELECT advisory_id FROM ${u('touched')}`];
  for (const extra of ['kev', 'epss']) {
    if (await exists(undoSchema, `touched_${extra}`)) {
      advisories.push(`SELECT advisory_id FROM ${a('aliases')} WHERE alias IN (SELECT cve_id FROM ${u(`touched_${extra}`)})`);
      advisories.push(`SELECT advisory_id FROM ${a('advisories')} WHERE advisory_id IN (SELECT cve_id FROM ${u(`touched_${extra}`)})`);
    }
  }
  if (await exists(undoSchema, 'touched_vex')) advisories.push(`SELECT advisory_id FROM ${u('touched_vex')}`);
  const sql = `
    WITH adv AS (${advisories.join(' UNION ')})
    SELECT package AS k FROM ${a('affected')} WHERE advisory_id IN (SELECT advisory_id FROM adv)
    UNION SELECT package FROM ${u('affected')}
    UNION SELECT 'cpe:' || lower(vendor) || ':' || lower(product) FROM ${a('cpes')} WHERE advisory_id IN (SELECT advisory_id FROM adv)
    UNION SELECT 'cpe:' || lower(vendor) || ':' || lower(product) FROM ${u('cpes')}`;
  return (await q.query<{ k: string }>(sql)).rows.map((r) => r.k);
}

/** Of the stored SBOMs `names`, those with a lookup key in `keys`, each with those keys. */
export async function sbomsTouching(q: Queryable, names: string[], keys: string[]): Promise<Map<string, string[]>> {
  if (names.length === 0 || keys.length === 0) return new Map();
  const r = await q.query<{ name: string; keys: string[] }>(
    `SELECT name, ARRAY(SELECT unnest(package_keys) INTERSECT SELECT unnest($2::text[])) AS keys
       FROM ouk_meta.sboms WHERE name = ANY($1::text[]) AND package_keys && $2::text[]`,
    [names, keys],
  );
  return new Map(r.rows.map((x) => [x.name, x.keys]));
}
