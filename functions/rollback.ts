/**
 * `stella ouk rollback`: re-activate the previous DB, atomically, in one
 * transaction under the same state lock activations take.
 *
 *  - after a full import: the state points back at the previous import's schema
 *    (kept by cleanup for exactly this);
 *  - after a delta: the rows it replaced come back from `ouk_undo_<id>` and the
 *    rows it added go, in the active schema, table by table for the advisories
 *    it touched there — time proportional to the delta.
 *
 * The rolled-back import is marked 'rolled-back'; there is one level of
 * rollback (afterwards no previous DB is kept).
 */
import { TABLES } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { connect, type Pool, type PoolClient } from '../infra/db.ts';
import { cleanupOldDbs } from './common/cleanup.ts';
import { touchedTableName, undoSchemaFor } from './context.ts';
import { qualified, schemaExists, tableExists } from '../infra/db-schema.ts';
import { requireImport, rollBack } from '../infra/import-records/index.ts';
import { pointActiveDb, readActivePointer } from '../infra/active-db.ts';
import { rollbackExtras } from './common/extras.ts';
import { lastActivationOf, recordActivation } from '../infra/activations.ts';

export interface RollbackResult {
  from: { importId: string; version: string | null };
  to: { importId: string; version: string; schema: string };
}

/** `now`: the time recorded as the re-activation (the caller's clock, not PostgreSQL's). */
export async function rollback(pool: Pool, logger: Logger, now: Date = new Date()): Promise<RollbackResult> {
  const client: PoolClient = await connect(pool);
  let result: RollbackResult;
  try {
    await client.query('BEGIN');
    const pointer = await readActivePointer(client, true);
    if (!pointer.activeImport) throw new OukError('NOTHING_ACTIVE', 'no DB is active, so there is nothing to roll back');
    if (!pointer.previousImport) {
      throw new OukError('NO_PREVIOUS_DB', `no previous DB is kept to roll back to (active: ${pointer.activeVersion}); import the kit you want instead`);
    }
    const current = await requireImport(client, pointer.activeImport, true);
    const prev = await lastActivationOf(client, pointer.previousImport);
    if (!prev) throw new OukError('NO_PREVIOUS_DB', `the previous import ${pointer.previousImport} has no activation record; nothing to roll back to`);

    // A delta, or a full kit applied as its difference (functions/common/onto-load.ts): both changed the active schema in place.
    const inPlace = current.kind === 'delta' || typeof (current.stages.activate?.result as { appliedOnto?: unknown } | undefined)?.appliedOnto === 'string';
    if (inPlace) {
      const undo = undoSchemaFor(current.id);
      if (!(await schemaExists(client, undo))) throw new OukError('NO_PREVIOUS_DB', `the undo data of ${current.kind} ${current.version} (${undo}) is gone; import the full kit you want instead`);
      const active = pointer.activeSchema!;
      for (const t of TABLES) {
        const target = qualified(active, t.name);
        // The advisories the delta touched in this table (format 3), or in every table.
        const touched = qualified(undo, (await tableExists(client, undo, touchedTableName(t.name))) ? touchedTableName(t.name) : 'touched');
        await client.query(`DELETE FROM ${target} x USING ${touched} d WHERE x.advisory_id = d.advisory_id`);
        await client.query(`INSERT INTO ${target} SELECT * FROM ${qualified(undo, t.name)} ORDER BY advisory_id`);
      }
      await rollbackExtras(client, active, undo);
    } else if (!(await schemaExists(client, prev.schema_name))) {
      throw new OukError('NO_PREVIOUS_DB', `the previous DB ${prev.version} (${prev.schema_name}) was already cleaned up; import the kit you want instead`);
    }

    // one level of rollback: afterwards no previous DB is kept
    await pointActiveDb(client, { importId: pointer.previousImport, version: prev.version, schema: prev.schema_name, digest: prev.db_digest, activatedAt: now, previousImport: null });
    await recordActivation(client, { action: 'rollback', importId: pointer.previousImport, version: prev.version, kind: prev.kind, schema: prev.schema_name, digest: prev.db_digest, counts: prev.counts, feeds: prev.feeds, at: now });
    await rollBack(client, current.id, pointer.previousImport);
    await client.query('COMMIT');
    result = {
      from: { importId: current.id, version: current.version },
      to: { importId: pointer.previousImport, version: prev.version, schema: prev.schema_name },
    };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
  logger.info({ from: result.from, to: result.to }, 'rolled back to the previous DB');
  await cleanupOldDbs(pool, logger).catch((err: unknown) => logger.warn({ err }, 'cleanup after rollback failed; will retry later'));
  return result;
}
