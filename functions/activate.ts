/**
 * Stage 4, activate: make the loaded DB the one readers use, in ONE transaction.
 *
 * The state row is locked FOR UPDATE (one activation or rollback at a time, on
 * any number of workers), the policy is checked again against what is active
 * now, then:
 *
 *  - full bundle: ouk_meta.active_db points at the new schema;
 *  - delta bundle: in each table of the active schema, its staged rows replace
 *    every row of each advisory it adds or removes, or whose rows in that table
 *    it changes; the rows it replaces are saved in `ouk_undo_<import id>` so a
 *    rollback costs what the delta cost.
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
import { deltaIsPerTable } from '../bundle/manifest.ts';
import { TABLES } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import { connect, ident, type PoolClient } from '../infra/db.ts';
import { cleanupOldDbs } from './common/cleanup.ts';
import { stagedPrefix, touchedTableName, undoSchemaFor, type StageContext, type StagePayload } from './context.ts';
import { dropSchema, qualified, schemaExists } from '../infra/db-schema.ts';
import { CLEARED_TABLE, REMOVED_TABLE, type LoadResult } from './common/loaded.ts';
import { removeObjects, removeObjectsUnder } from '../infra/store.ts';
import { checkPolicy } from './common/policy.ts';
import { markActive, requireImport, stageDone, stageIsDone, stageLost, supersede, type ImportRecord } from '../infra/import-records/index.ts';
import { pointActiveDb, readActivePointer, type ActiveDbPointer } from '../infra/active-db.ts';
import { requireVerified } from './common/staging.ts';
import { applyExtrasDelta } from './common/extras.ts';
import { countsOfSchema, recordActivation } from '../infra/activations.ts';

export interface ActivateResult {
  version: string;
  kind: 'full' | 'delta';
  /** The schema readers now use. */
  schema: string;
  previousImport: string | null;
  counts: Record<string, number>;
  /**
   * A full kit applied as its difference onto this version of the active DB
   * (functions/common/onto-load.ts): its rows were changed in place, the
   * replaced ones kept in `ouk_undo_<import id>` as for a delta.
   */
  appliedOnto?: string;
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
    checkPolicy(manifest, pointer, { allowDowngrade: rec.allowDowngrade, force: rec.force }, now, ctx.config.maxClockSkewSeconds);
    const loaded = rec.stages.load!.result as LoadResult;
    if (!(await schemaExists(client, loaded.schema))) {
      loadLost = true;
      throw new OukError('IMPORT_FAILED', `the loaded DB ${loaded.schema} is gone (dropped by hand?): \`stella ouk retry ${p.importId}\` loads it again`, { retryable: false });
    }

    if (loaded.onto && pointer.activeImport !== loaded.onto.importId) {
      // The difference was taken against another DB than the one active now: load it again.
      loadLost = true;
      throw new OukError('IMPORT_FAILED', `the full kit was loaded as its difference from ${loaded.onto.version}, but ${pointer.activeVersion ?? 'no DB'} is active now: \`stella ouk retry ${p.importId}\` loads it again`, { retryable: false });
    }
    result =
      manifest.kind === 'delta'
        ? await applyDelta(client, rec, pointer, loaded, deltaIsPerTable(manifest))
        : loaded.onto
          ? { ...(await applyDelta(client, rec, pointer, loaded, false)), kind: 'full', appliedOnto: loaded.onto.version }
          : fullActivationResult(rec, pointer, loaded);
    await pointActiveDb(client, { importId: p.importId, version: manifest.bundleVersion, schema: result.schema, digest: manifest.db.digest, activatedAt: now, previousImport: pointer.activeImport });
    await recordActivation(client, { action: 'activate', importId: p.importId, version: manifest.bundleVersion, kind: manifest.kind, schema: result.schema, digest: manifest.db.digest, counts: result.counts, feeds: manifest.feeds, at: now });
    if (pointer.activeImport) await supersede(client, pointer.activeImport);
    await markActive(client, p.importId, now);
    await stageDone(client, p.importId, 'activate', result);
    await client.query('COMMIT');
    committed = true;
  } catch (e) {
    if (!committed) await client.query('ROLLBACK').catch(() => undefined);
    // The one way back from done: the system found the loaded DB gone, so load is no longer done.
    if (loadLost) await stageLost(ctx.pool, p.importId, 'load', loadedAgainst(rec0) ?? 'the loaded DB schema was found missing at activation');
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

/** Why a full kit's staged difference no longer applies, when it was one. */
function loadedAgainst(rec: ImportRecord): string | null {
  const onto = (rec.stages.load?.result as LoadResult | undefined)?.onto;
  return onto ? `the difference was taken against ${onto.version}, which is no longer the active DB` : null;
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

/** A full kit's activation changes no rows: its loaded schema becomes the pointer's target (the caller's UPDATE); this says so. */
function fullActivationResult(rec: ImportRecord, pointer: ActiveDbPointer, loaded: LoadResult): ActivateResult {
  return { version: rec.version!, kind: 'full', schema: loaded.schema, previousImport: pointer.activeImport, counts: loaded.counts };
}

/**
 * Applies a delta to the active schema: in each table, every row of each
 * advisory the delta touches there is replaced by the delta's rows for it.
 * Costs index lookups per touched advisory and table, not a pass over the DB.
 *
 * The advisories a delta touches in a table: those it removes, and, of those
 * it adds or changes, the ones with rows in its member of that table or, for
 * a delta of format 3 and later, a db/cleared.tsv line for it. A format-2
 * delta carries every row of each advisory it adds or changes, so it touches
 * all of them in every table. `undo.touched` holds every advisory touched in
 * any table (what re-scans and a rollback's SBOM diffs read);
 * `undo.touched_<table>` those of one table, where fewer (what rollback reads).
 */
async function applyDelta(client: PoolClient, rec: ImportRecord, pointer: ActiveDbPointer, loaded: LoadResult, perTable: boolean): Promise<ActivateResult> {
  const active = pointer.activeSchema!;
  const staged = loaded.schema;
  const undo = undoSchemaFor(rec.id);
  await dropSchema(client, undo);
  await client.query(`CREATE SCHEMA ${ident(undo)}`);
  const removed = `SELECT advisory_id FROM ${qualified(staged, REMOVED_TABLE)}`;
  const all = await touchedTable(client, active, qualified(undo, 'touched'), [...TABLES.map((t) => `SELECT advisory_id FROM ${qualified(staged, t.name)}`), removed]);

  const counts: Record<string, number> = { ...((await countsOfSchema(client, active)) ?? {}) };
  for (const t of TABLES) {
    const target = qualified(active, t.name);
    const touched =
      perTable && t.name !== 'advisories'
        ? await touchedTable(client, active, qualified(undo, touchedTableName(t.name)), [
            `SELECT advisory_id FROM ${qualified(staged, t.name)}`,
            removed,
            `SELECT advisory_id FROM ${qualified(staged, CLEARED_TABLE)} WHERE table_name = ${client.escapeLiteral(t.name)}`,
          ])
        : all;
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

/**
 * A table of the distinct advisory ids of `sources`, sorted, with a primary
 * key, at `name`. Sorted: the lookups then walk the advisory_id indexes and
 * the heap (loaded in advisory_id order) in order, not at random — about 4
 * times faster on a cold full-size DB. Its column is the active DB's own
 * (collation included), so the joins walk the active indexes whether this DB
 * was loaded with COLLATE "C" or before it (infra/db-schema.ts createTableSql).
 */
async function touchedTable(client: PoolClient, active: string, name: string, sources: string[]): Promise<string> {
  await client.query(`CREATE TABLE ${name} AS SELECT advisory_id FROM ${qualified(active, 'advisories')} WITH NO DATA`);
  await client.query(`INSERT INTO ${name} SELECT advisory_id FROM (${sources.join(' UNION ')}) u ORDER BY advisory_id`);
  await client.query(`ALTER TABLE ${name} ADD PRIMARY KEY (advisory_id)`);
  await client.query(`ANALYZE ${name}`);
  return name;
}
