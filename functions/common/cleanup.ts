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
import { parseSchemaName, SCHEMA_NAME_PATTERN } from '../../lib/storage-names.ts';
import { connect, type Pool } from '../../infra/db.ts';
import { liveSchemas } from '../../infra/active-db.ts';
import { dropSchema } from '../../infra/db-schema.ts';
import { isFinished, isReplaced, statesOf } from '../../infra/import-records/index.ts';

export interface CleanupResult {
  dropped: string[];
  /** Schemas kept because a reader held them (lock timeout). */
  busy: string[];
}

export async function cleanupOldDbs(pool: Pool, logger: Logger, lockTimeoutMs = 2000): Promise<CleanupResult> {
  const keep = await liveSchemas(pool);
  const r = await pool.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname ~ $1', [SCHEMA_NAME_PATTERN]);
  const rows = r.rows.map((row) => ({ nspname: row.nspname, ...parseSchemaName(row.nspname)! }));
  const states = await statesOf(pool, rows.map((row) => row.importId));
  const names = rows
    .filter((row) => {
      if (keep.has(row.nspname)) return false;
      const state = states.get(row.importId);
      return (
        state === undefined ||
        (row.kind === 'db' && isReplaced(state)) ||
        (row.kind === 'delta' && isFinished(state)) ||
        (row.kind === 'undo' && isReplaced(state))
      );
    })
    .map((row) => row.nspname);
  return dropSchemasQuietly(pool, names, logger, lockTimeoutMs);
}

/**
 * Drops each schema (never a live one: infra/db-schema.ts dropSchema) with a
 * short lock_timeout, so a schema a long-running reader still holds is left
 * for the next pass instead of waiting on it.
 */
export async function dropSchemasQuietly(pool: Pool, names: string[], logger: Logger, lockTimeoutMs = 2000): Promise<CleanupResult> {
  const out: CleanupResult = { dropped: [], busy: [] };
  for (const name of names) {
    const client = await connect(pool);
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = '${Math.max(1, Math.floor(lockTimeoutMs))}ms'`);
      await dropSchema(client, name);
      await client.query('COMMIT');
      out.dropped.push(name);
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((e as { code?: string }).code === '55P03') {
        out.busy.push(name);
        logger.info({ schema: name }, 'old DB still in use by a reader; will drop it at the next pass');
      } else {
        logger.warn({ err: e, schema: name }, 'could not drop an old DB schema');
      }
    } finally {
      client.release();
    }
  }
  if (out.dropped.length) logger.info({ dropped: out.dropped }, 'dropped old DB schemas');
  return out;
}
