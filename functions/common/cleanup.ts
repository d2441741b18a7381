/**
 * After an activation (and periodically, from the reconciler): drop the DB
 * schemas nobody needs any more.
 *
 *  - `ouk_db_<id>`    a loaded full DB: kept while it is the active DB or the
 *                     previous one (rollback), or while its import is still in
 *                     progress or failed (a retry needs it);
 *  - `ouk_delta_<id>` a delta's staged rows: dropped once the delta is applied;
 *  - `ouk_undo_<id>`  rows a delta replaced: kept while that delta is active.
 *
 * A schema a long-running reader still uses is not cut from under it: DROP runs
 * with a short lock_timeout, and a schema it could not drop is left for the next
 * cleanup.
 */
import type { Logger } from '../../lib/logger.ts';
import { connect, ident, type Pool } from '../../infra/db.ts';
import { readActivePointer } from '../../infra/active-db.ts';

export interface CleanupResult {
  dropped: string[];
  /** Schemas kept because a reader held them (lock timeout). */
  busy: string[];
}

const FINISHED = ['active', 'superseded', 'rolled-back'];

export async function cleanupOldDbs(pool: Pool, logger: Logger, lockTimeoutMs = 2000): Promise<CleanupResult> {
  const pointer = await readActivePointer(pool);
  const keep = new Set<string>();
  if (pointer.activeSchema) keep.add(pointer.activeSchema);
  if (pointer.activeImport) keep.add(`ouk_undo_${pointer.activeImport}`);
  if (pointer.previousImport) {
    const prev = await pool.query<{ schema_name: string }>(
      'SELECT schema_name FROM ouk_meta.activations WHERE import_id = $1 ORDER BY seq DESC LIMIT 1',
      [pointer.previousImport],
    );
    if (prev.rows[0]) keep.add(prev.rows[0].schema_name);
  }
  const r = await pool.query<{ nspname: string; kind: string; state: string | null }>(
    `SELECT n.nspname, substring(n.nspname from '^ouk_([a-z]+)_') AS kind, i.state
       FROM pg_namespace n
       LEFT JOIN ouk_meta.imports i ON i.id = substring(n.nspname from '^ouk_[a-z]+_([0-9a-f]{24})$')
      WHERE n.nspname ~ '^ouk_(db|delta|undo)_[0-9a-f]{24}$'`,
  );
  const out: CleanupResult = { dropped: [], busy: [] };
  for (const row of r.rows) {
    if (keep.has(row.nspname)) continue;
    const orphan = row.state === null;
    const droppable =
      orphan ||
      (row.kind === 'db' && (row.state === 'superseded' || row.state === 'rolled-back')) ||
      (row.kind === 'delta' && FINISHED.includes(row.state!)) ||
      (row.kind === 'undo' && (row.state === 'superseded' || row.state === 'rolled-back'));
    if (!droppable) continue;
    const client = await connect(pool);
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = '${Math.max(1, Math.floor(lockTimeoutMs))}ms'`);
      await client.query(`DROP SCHEMA IF EXISTS ${ident(row.nspname)} CASCADE`);
      await client.query('COMMIT');
      out.dropped.push(row.nspname);
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((e as { code?: string }).code === '55P03') {
        out.busy.push(row.nspname);
        logger.info({ schema: row.nspname }, 'old DB still in use by a reader; will drop it at the next cleanup');
      } else {
        logger.warn({ err: e, schema: row.nspname }, 'could not drop an old DB schema');
      }
    } finally {
      client.release();
    }
  }
  if (out.dropped.length) logger.info({ dropped: out.dropped }, 'dropped old DB schemas');
  return out;
}
