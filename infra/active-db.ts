/**
 * The active-DB pointer (ouk_meta.active_db, one row) as the pipeline sees it:
 * which import and schema readers use, its version and DB content digest, and
 * the previous import kept for rollback.
 */
import { undoSchemaFor } from '../lib/storage-names.ts';
import type { Queryable } from './db.ts';
import { lastActivationOf } from './activations.ts';


export interface ActiveDbPointer {
  activeImport: string | null;
  activeVersion: string | null;
  activeSchema: string | null;
  /** The manifest's `db.digest` of the active DB (what a delta's base names). */
  activeDigest: string | null;
  activatedAt: Date | null;
  previousImport: string | null;
}

/**
 * The schemas that must never be dropped or rewritten: the one the pointer
 * names (readers use it), the undo data of the active delta, and the previous
 * DB a rollback returns to.
 */
export async function liveSchemas(q: Queryable): Promise<Set<string>> {
  const pointer = await readActivePointer(q);
  const live = new Set<string>();
  if (pointer.activeSchema) live.add(pointer.activeSchema);
  if (pointer.activeImport) live.add(undoSchemaFor(pointer.activeImport));
  if (pointer.previousImport) {
    const prev = await lastActivationOf(q, pointer.previousImport);
    if (prev) live.add(prev.schema_name);
  }
  return live;
}

/** Reads the pointer row (ouk_meta.active_db); `forUpdate` locks it, which serialises activations and rollbacks. */
export async function readActivePointer(q: Queryable, forUpdate = false): Promise<ActiveDbPointer> {
  const r = await q.query<{
    active_import: string | null;
    active_version: string | null;
    active_schema: string | null;
    active_digest: string | null;
    activated_at: Date | null;
    previous_import: string | null;
  }>(`SELECT active_import, active_version, active_schema, active_digest, activated_at, previous_import FROM ouk_meta.active_db WHERE singleton${forUpdate ? ' FOR UPDATE' : ''}`);
  const row = r.rows[0];
  if (!row) throw new Error('ouk_meta.active_db has no row: run the migrations (infra/db.ts migrate)');
  return {
    activeImport: row.active_import,
    activeVersion: row.active_version,
    activeSchema: row.active_schema,
    activeDigest: row.active_digest,
    activatedAt: row.activated_at,
    previousImport: row.previous_import,
  };
}

/** Where the pointer moves: the DB readers use from now on, and the one a rollback returns to (null: none kept). */
export interface PointerTarget {
  importId: string;
  version: string;
  schema: string;
  digest: string | null;
  activatedAt: Date;
  previousImport: string | null;
}

/** Moves the pointer (inside the caller's transaction, after readActivePointer(q, true) locked it). */
export async function pointActiveDb(q: Queryable, to: PointerTarget): Promise<void> {
  await q.query(
    `UPDATE ouk_meta.active_db
        SET active_import = $1, active_version = $2, active_schema = $3, active_digest = $4, activated_at = $5, previous_import = $6
      WHERE singleton`,
    [to.importId, to.version, to.schema, to.digest, to.activatedAt, to.previousImport],
  );
}
