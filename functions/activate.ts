/**
 * Stage 4, activate: make the loaded DB the one readers use, in ONE transaction.
 *
 * The state row is locked FOR UPDATE (one activation or rollback at a time, on
 * any number of workers), the policy is checked again against what is active
 * now, then:
 *
 *  - full bundle: ouk_meta.state points at the new schema;
 *  - delta bundle: its staged rows replace, in the active schema, every row of
 *    each advisory it adds, changes or removes; the rows it replaces are saved
 *    in `ouk_undo_<import id>` so a rollback costs what the delta cost.
 *
 * An activations row records it, the import becomes 'active' and the one before
 * it 'superseded' (kept as the previous DB for rollback). Readers run in
 * REPEATABLE READ snapshots (infra/db.ts withActiveSnapshot): one that started
 * before the COMMIT keeps reading the old DB to its end, one that starts after
 * sees the new one, and none sees a mix.
 *
 * After the COMMIT, older DB schemas and the staged members are cleaned up
 * (but for a kit's image members: the images stage, next, pushes them first).
 * Idempotent: an import that is (or was) already activated is not activated again.
 */
import { TABLES } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import { connect, ident, type PoolClient } from '../infra/db.ts';
import { cleanupOldDbs } from './common/cleanup.ts';
import { stagedPrefix, undoSchemaFor, type StageContext, type StagePayload } from './context.ts';
import { dropSchema, qualified, schemaExists } from '../infra/db-schema.ts';
import { REMOVED_TABLE, type LoadResult } from './load.ts';
import { removeObjects, removeObjectsUnder } from '../infra/store.ts';
import { checkPolicy } from './common/policy.ts';
import { requireImport, stageDone, stageIsDone, stageLost, type ImportRecord } from '../infra/import-records.ts';
import { readActivePointer, type ActiveDbPointer } from '../infra/active-db.ts';
import { requireVerified } from './common/staging.ts';
import { applyExtrasDelta } from './common/extras.ts';

export interface ActivateResult {
  version: string;
  kind: 'full' | 'delta';
  /** The schema readers now use. */
  schema: string;
  previousImport: string | null;
  counts: Record<string, number>;
  /** true when this import had already been activated (nothing done). */
  already?: boolean;
}

export async function activate(p: StagePayload, ctx: StageContext): Promise<ActivateResult> {
  const rec0 = await requireImport(ctx.pool, p.importId);
  if (stageIsDone(rec0, 'activate')) return { ...(rec0.stages.activate!.result as ActivateResult), already: true };
  requireVerified(rec0);
  if (!stageIsDone(rec0, 'load')) {
    throw new OukError('IMPORT_FAILED', `import ${p.importId} has not been loaded: retry it with \`stella ouk retry ${p.importId}\``, { retryable: true });
  }

  const client: PoolClient = await connect(ctx.pool);
  let result: ActivateResult;
  let committed = false;
  let loadLost = false;
  try {
    await client.query('BEGIN');
    const pointer = await readActivePointer(client, true);
    const rec = await requireImport(client, p.importId, true);
    if (pointer.activeImport === p.importId || stageIsDone(rec, 'activate')) {
      await client.query('COMMIT');
      committed = true;
      return { ...((rec.stages.activate?.result as ActivateResult | undefined) ?? describeActive(rec, pointer)), already: true };
    }
    const { manifest } = requireVerified(rec);
    // One clock for the policy and for the times written: the stage's (injected) clock, not PostgreSQL's.
    const now = ctx.now();
    checkPolicy(manifest, pointer, { allowDowngrade: rec.allowDowngrade, force: rec.force }, now);
    const loaded = rec.stages.load!.result as LoadResult;
    if (!(await schemaExists(client, loaded.schema))) {
      loadLost = true;
      throw new OukError('IMPORT_FAILED', `the loaded DB ${loaded.schema} is gone (dropped by hand?): \`stella ouk retry ${p.importId}\` loads it again`, { retryable: false });
    }

    result = manifest.kind === 'delta' ? await applyDelta(client, rec, pointer, loaded) : await switchFull(client, rec, pointer, loaded);
    await client.query(
      `UPDATE ouk_meta.state
          SET active_import = $1, active_version = $2, active_schema = $3, active_digest = $4, activated_at = $6, previous_import = $5
        WHERE singleton`,
      [p.importId, manifest.bundleVersion, result.schema, manifest.db.digest, pointer.activeImport, now],
    );
    await client.query(
      `INSERT INTO ouk_meta.activations (action, import_id, version, kind, schema_name, db_digest, counts, feeds, at)
       VALUES ('activate', $1, $2, $3, $4, $5, $6, $7, $8)`,
      [p.importId, manifest.bundleVersion, manifest.kind, result.schema, manifest.db.digest, JSON.stringify(result.counts), JSON.stringify(manifest.feeds), now],
    );
    if (pointer.activeImport) {
      await client.query(`UPDATE ouk_meta.imports SET state = 'superseded', updated_at = now() WHERE id = $1`, [pointer.activeImport]);
    }
    await client.query(`UPDATE ouk_meta.imports SET state = 'active', activated_at = $2, error_code = NULL, error = NULL WHERE id = $1`, [p.importId, now]);
    await stageDone(client, p.importId, 'activate', result);
    await client.query('COMMIT');
    committed = true;
  } catch (e) {
    if (!committed) await client.query('ROLLBACK').catch(() => undefined);
    // The one way back from done: the system found the loaded DB gone, so load is no longer done.
    if (loadLost) await stageLost(ctx.pool, p.importId, 'load', 'the loaded DB schema was found missing at activation');
    throw e;
  } finally {
    client.release();
  }
  ctx.logger.info({ version: result.version, kind: result.kind, schema: result.schema, counts: result.counts }, 'DB activated');

  // Housekeeping after the switch: never fails the activation.
  await cleanupOldDbs(ctx.pool, ctx.logger).catch((err: unknown) => ctx.logger.warn({ err }, 'cleanup of old DBs failed; will retry later'));
  if (rec0.digest) {
    // The image members stay for the images stage, which removes the rest once it has pushed them.
    const prefix = stagedPrefix(rec0.digest, p.importId);
    const { manifest } = requireVerified(rec0);
    const cleanup = manifest.images?.length
      ? removeObjects(ctx.store, p.bucket, manifest.members.filter((m) => m.role !== 'image').map((m) => prefix + m.path))
      : removeObjectsUnder(ctx.store, p.bucket, prefix);
    await cleanup.catch((err: unknown) => ctx.logger.warn({ err }, 'could not remove staged members'));
  }
  return result;
}

function describeActive(rec: ImportRecord, pointer: ActiveDbPointer): ActivateResult {
  return {
    version: rec.version ?? pointer.activeVersion ?? '',
    kind: rec.kind ?? 'full',
    schema: pointer.activeSchema ?? '',
    previousImport: pointer.previousImport,
    counts: rec.counts ?? {},
  };
}

async function switchFull(_client: PoolClient, rec: ImportRecord, pointer: ActiveDbPointer, loaded: LoadResult): Promise<ActivateResult> {
  return { version: rec.version!, kind: 'full', schema: loaded.schema, previousImport: pointer.activeImport, counts: loaded.counts };
}

/**
 * Applies a delta to the active schema: every row of each touched advisory
 * (added, changed or removed) is replaced by the delta's rows for it. Costs
 * index lookups per touched advisory, not a pass over the DB.
 */
async function applyDelta(client: PoolClient, rec: ImportRecord, pointer: ActiveDbPointer, loaded: LoadResult): Promise<ActivateResult> {
  const active = pointer.activeSchema!;
  const staged = loaded.schema;
  const undo = undoSchemaFor(rec.id);
  const touched = qualified(undo, 'touched');
  await dropSchema(client, undo);
  await client.query(`CREATE SCHEMA ${ident(undo)}`);
  const sources = [...TABLES.map((t) => `SELECT advisory_id FROM ${qualified(staged, t.name)}`), `SELECT advisory_id FROM ${qualified(staged, REMOVED_TABLE)}`];
  // Sorted: the lookups below then walk the advisory_id indexes and the heap (loaded in
  // advisory_id order) in order, not at random — about 4 times faster on a cold full-size DB.
  // Its column is the active DB's own (collation included), so the joins below walk the active indexes
  // whether this DB was loaded with COLLATE "C" or before it (infra/db-schema.ts createTableSql).
  await client.query(`CREATE TABLE ${touched} AS SELECT advisory_id FROM ${qualified(active, 'advisories')} WITH NO DATA`);
  await client.query(`INSERT INTO ${touched} SELECT advisory_id FROM (${sources.join(' UNION ')}) u ORDER BY advisory_id`);
  await client.query(`ALTER TABLE ${touched} ADD PRIMARY KEY (advisory_id)`);
  await client.query(`ANALYZE ${touched}`);

  const before = await client.query<{ counts: Record<string, number> }>(
    'SELECT counts FROM ouk_meta.activations WHERE schema_name = $1 ORDER BY seq DESC LIMIT 1',
    [active],
  );
  const counts: Record<string, number> = { ...(before.rows[0]?.counts ?? {}) };
  for (const t of TABLES) {
    const target = qualified(active, t.name);
    // One pass: the rows the delta replaces are deleted and saved for its rollback.
    await client.query(`CREATE TABLE ${qualified(undo, t.name)} (LIKE ${target})`);
    const del = await client.query(
      `WITH gone AS (DELETE FROM ${target} x USING ${touched} d WHERE x.advisory_id = d.advisory_id RETURNING x.*)
       INSERT INTO ${qualified(undo, t.name)} SELECT * FROM gone`,
    );
    const ins = await client.query(`INSERT INTO ${target} SELECT * FROM ${qualified(staged, t.name)} ORDER BY advisory_id`);
    counts[t.name] = (counts[t.name] ?? 0) - (del.rowCount ?? 0) + (ins.rowCount ?? 0);
  }
  await applyExtrasDelta(client, active, staged, undo, counts);
  return { version: rec.version!, kind: 'delta', schema: active, previousImport: pointer.activeImport, counts };
}
