/**
 * Whether a full kit may be loaded as its difference onto the active DB
 * (functions/common/onto-load.ts) instead of whole: only when they share the
 * publisher's lineage and nothing is in doubt.
 *
 *   - a DB is active, and the import that made it is on record with its
 *     signed manifest;
 *   - the same generator (stella-ouk version) built both: rows derived from
 *     the same advisory document may differ between versions, so equal
 *     `content_hash`es would not mean equal rows (the builder refuses a
 *     `--base` of another generator for the same reason);
 *   - the same format version;
 *   - the active schema has every table of bundle/tables.ts with exactly the
 *     kit's columns (an older site DB without `content_hash` is loaded
 *     whole), and each extra table it has, the kit's columns.
 *
 * Anything else, or any error while asking: the whole load (the reason is
 * returned, and recorded).
 */
import type { Manifest } from '../../bundle/manifest.ts';
import { EXTRA_TABLES } from '../../bundle/extra-tables.ts';
import { TABLES } from '../../bundle/tables.ts';
import type { Queryable } from '../../infra/db.ts';
import { readActivePointer } from '../../infra/active-db.ts';
import { getImport } from '../../infra/import-records/index.ts';

/** The active DB a full kit is loaded onto. */
export interface OntoBase {
  importId: string;
  version: string;
  schema: string;
}

export type LineageDecision = { onto: OntoBase } | { whole: string };

/** Decides how a full kit with `manifest` loads on the site's current active DB. */
export async function lineageDecision(q: Queryable, manifest: Pick<Manifest, 'kind' | 'generator' | 'formatVersion'>): Promise<LineageDecision> {
  if (manifest.kind !== 'full') return { whole: 'not a full kit' };
  const pointer = await readActivePointer(q);
  if (!pointer.activeImport || !pointer.activeSchema || !pointer.activeVersion) return { whole: 'no DB is active' };
  const rec = await getImport(q, pointer.activeImport);
  if (!rec?.manifest) return { whole: `the active DB's import ${pointer.activeImport} has no signed manifest on record` };
  if (rec.manifest.generator !== manifest.generator) return { whole: `the active DB was built by ${rec.manifest.generator}, this kit by ${manifest.generator}` };
  if (rec.manifest.formatVersion !== manifest.formatVersion) return { whole: `the active DB is of format ${rec.manifest.formatVersion}, this kit of format ${manifest.formatVersion}` };
  const cols = await q.query<{ table_name: string; columns: string[] }>(
    `SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) AS columns
       FROM information_schema.columns WHERE table_schema = $1 GROUP BY table_name`,
    [pointer.activeSchema],
  );
  const have = new Map(cols.rows.map((r) => [r.table_name, r.columns.join(',')]));
  for (const t of TABLES) {
    const got = have.get(t.name);
    if (got !== t.columns.map((c) => c.name).join(',')) return { whole: got === undefined ? `the active DB has no table ${t.name}` : `the active DB's ${t.name} has other columns than this kit's (an older DB without content digests?)` };
  }
  for (const t of EXTRA_TABLES) {
    const got = have.get(t.name);
    if (got !== undefined && got !== t.columns.map((c) => c.name).join(',')) return { whole: `the active DB's ${t.name} has other columns than this kit's` };
  }
  return { onto: { importId: pointer.activeImport, version: pointer.activeVersion, schema: pointer.activeSchema } };
}
