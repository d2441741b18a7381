/**
 * The active-DB pointer (ouk_meta.state, one row) as the pipeline sees it:
 * which import and schema readers use, its version and DB content digest, and
 * the previous import kept for rollback.
 */
import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface ActiveDbPointer {
  activeImport: string | null;
  activeVersion: string | null;
  activeSchema: string | null;
  /** The manifest's `db.digest` of the active DB (what a delta's base names). */
  activeDigest: string | null;
  activatedAt: Date | null;
  previousImport: string | null;
}

/** Reads the pointer row (ouk_meta.state); `forUpdate` locks it, which serialises activations and rollbacks. */
export async function readActivePointer(q: Queryable, forUpdate = false): Promise<ActiveDbPointer> {
  const r = await q.query<{
    active_import: string | null;
    active_version: string | null;
    active_schema: string | null;
    active_digest: string | null;
    activated_at: Date | null;
    previous_import: string | null;
  }>(`SELECT active_import, active_version, active_schema, active_digest, activated_at, previous_import FROM ouk_meta.state WHERE singleton${forUpdate ? ' FOR UPDATE' : ''}`);
  const row = r.rows[0];
  if (!row) throw new Error('ouk_meta.state has no row: run the migrations (infra/db.ts migrate)');
  return {
    activeImport: row.active_import,
    activeVersion: row.active_version,
    activeSchema: row.active_schema,
    activeDigest: row.active_digest,
    activatedAt: row.activated_at,
    previousImport: row.previous_import,
  };
}
