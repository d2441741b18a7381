/**
 * Stage 3, load: the staged DB members into PostgreSQL.
 *
 *   DROP (a leftover of an earlier try) and CREATE SCHEMA ouk_db_<import id>,
 *   CREATE TABLE … per bundle/tables.ts;
 *   then every table at once, each on its own connection and in its own
 *   transaction: TRUNCATE, COPY … FREEZE of its member straight from an
 *   object-store GET stream (decompressed on the way: bundle/member-codec.ts;
 *   large values TOAST-compressed with lz4 where the server has it), its
 *   primary key and indexes, ANALYZE;
 *   the import record's load stage marked done.
 *
 * The load is not one transaction: nothing reads this schema before activate
 * points ouk_meta.active_db at it. A load that fails drops its schema at once (on
 * a full disk, it is what fills it) and closes its object-store reads; a crash
 * leaves a schema without a `done` record, which a rerun drops and builds
 * again, and gc removes once its import has failed (dropSchema refuses a live
 * schema, whoever asks). A session advisory lock keeps two runs of the same
 * import's load apart; a rerun after the record says done does nothing.
 *
 * A delta's rows are loaded the same way into their own schema (no indexes:
 * activate reads them whole and applies them to the active DB, see
 * functions/activate.ts).
 *
 * A full kit whose lineage the active DB shares (functions/common/lineage.ts)
 * is staged as its difference from it, a delta's schema that activate applies
 * as a delta (functions/common/onto-load.ts); otherwise, or when too much
 * differs, it is loaded whole. The choice is in the progress (`mode`) and the
 * result (LoadResult `mode`, `wholeBecause`, `onto`).
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pgCopyStreams from 'pg-copy-streams';
import { deltaIsPerTable, type Manifest, type ManifestMember } from '../bundle/manifest.ts';
import { contentPath, decodeMember } from '../bundle/member-codec.ts';
import { CLEARED_MEMBER, REMOVED_MEMBER, TABLES, type TableDef } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import { connect, ident, type Pool, type PoolClient } from '../infra/db.ts';
import { deltaSchemaFor, schemaFor, stagedMarker, stagedPrefix, throttledProgress, type StageContext, type StagePayload } from './context.ts';
import { copySql, createTableSql, dropSchema, indexSql, qualified } from '../infra/db-schema.ts';
import { getStream } from '../infra/store.ts';
import { requireImport, stageDone, stageIsDone } from '../infra/import-records/index.ts';
import { membersStaged, requireVerified, stageMembers } from './common/staging.ts';
import { createExtraTables, indexExtraTables, type ExtraCopy } from './common/extras.ts';
import { dropSchemasQuietly } from './common/cleanup.ts';
import { inParallel } from './common/parallel.ts';
import { lineageDecision, type LineageDecision } from './common/lineage.ts';
import { loadOnto, MAX_CHANGED_SHARE, WHOLE_MODE } from './common/onto-load.ts';
import { CLEARED_TABLE, REMOVED_TABLE, type LoadResult } from './common/loaded.ts';

const { from: copyFrom } = pgCopyStreams;

/** A delta's id lists: the table each is staged in, and its columns (all text). */
const DELTA_LISTS = { [REMOVED_TABLE]: ['advisory_id'], [CLEARED_TABLE]: ['table_name', 'advisory_id'] } as const;
type DeltaList = keyof typeof DELTA_LISTS;

/** Tables loaded at once (each on its own connection). */
export const LOAD_PARALLEL = 4;

/** Runs `fn` with a session advisory lock on this import's load (two runs of one load never interleave). */
async function withLoadLock<T>(pool: Pool, importId: string, fn: () => Promise<T>): Promise<T> {
  const client = await connect(pool);
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`ouk-load:${importId}`]);
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`ouk-load:${importId}`]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}

export async function load(p: StagePayload, ctx: StageContext): Promise<LoadResult> {
  const rec0 = await requireImport(ctx.pool, p.importId);
  const { digest, manifest } = requireVerified(rec0);
  const schema = manifest.kind === 'delta' ? deltaSchemaFor(p.importId) : schemaFor(p.importId);
  // Done stays done: a replay never rebuilds a loaded (perhaps active) DB.
  if (stageIsDone(rec0, 'load')) return rec0.stages.load!.result as LoadResult;
  if (!(await membersStaged(ctx, p, digest))) {
    // The staged members are gone (removed by hand, or a store wiped between
    // retries): stage them again from the verified tarball — with the same
    // checks unpack makes — rather than fail a retry that could never succeed.
    ctx.logger.warn({ marker: stagedMarker(digest, p.importId) }, 'staged members missing; staging them again from the tarball');
    await stageMembers(p, ctx, rec0);
  }

  const members = dbMembers(manifest);
  const extraBytes = manifest.members.filter((m) => (m.role === 'db' || m.role === 'removed') && !members.some((x) => x.member.path === m.path)).reduce((n, m) => n + m.size, 0);
  const totalBytes = members.reduce((n, m) => n + m.member.size, 0) + extraBytes;
  const progress = throttledProgress(ctx.progress);
  let done = 0;

  return withLoadLock(ctx.pool, p.importId, async () => {
    const rec = await requireImport(ctx.pool, p.importId);
    if (stageIsDone(rec, 'load')) return rec.stages.load!.result as LoadResult;

    // A full kit onto the active DB of its lineage: only the difference is staged (activate applies it as a delta).
    let wholeBecause: string | undefined;
    if (manifest.kind === 'full') {
      const decision = await lineageDecision(ctx.pool, manifest).catch((e: unknown): LineageDecision => ({ whole: `the active DB could not be compared (${e instanceof Error ? e.message : String(e)})` }));
      if ('onto' in decision) {
        const ontoSchema = deltaSchemaFor(p.importId);
        const tables = members.flatMap((m) => (m.table ? [{ member: m.member, table: m.table }] : []));
        let result: LoadResult | null;
        try {
          result = await loadOnto({ p, ctx, manifest, digest, onto: decision.onto, tables });
        } catch (e) {
          await dropSchemasQuietly(ctx.pool, [ontoSchema], ctx.logger).catch(() => null);
          ctx.logger.warn({ schema: ontoSchema }, 'load of the difference failed; its schema dropped');
          throw e;
        }
        if (result) {
          await stageDone(ctx.pool, p.importId, 'load', result, { schema_name: result.schema, counts: JSON.stringify(result.counts) });
          ctx.logger.info({ schema: result.schema, mode: result.mode, onto: result.onto }, 'full kit staged as its difference from the active DB');
          return result;
        }
        await dropSchemasQuietly(ctx.pool, [ontoSchema], ctx.logger).catch(() => null);
        wholeBecause = `more than ${Math.round(MAX_CHANGED_SHARE * 100)} % of the advisories differ from the active DB's`;
      } else wholeBecause = decision.whole;
      ctx.logger.info({ because: wholeBecause }, WHOLE_MODE);
    }
    const mode = manifest.kind === 'full' ? WHOLE_MODE : undefined;

    // The schema and its empty tables, committed: a leftover of a crashed try goes first.
    let extras: ExtraCopy[] = [];
    let lz4 = false;
    const setup = await connect(ctx.pool);
    try {
      lz4 = await hasLz4(setup);
      await setup.query('BEGIN');
      await dropSchema(setup, schema);
      await setup.query(`CREATE SCHEMA ${ident(schema)}`);
      for (const t of TABLES) await setup.query(createTableSql(schema, t));
      if (manifest.kind === 'delta') {
        for (const [list, cols] of Object.entries(DELTA_LISTS)) {
          await setup.query(`CREATE TABLE ${qualified(schema, list)} (${cols.map((c) => `${c} text NOT NULL`).join(', ')})`);
        }
      }
      extras = await createExtraTables(setup, schema, manifest);
      await setup.query('COMMIT');
    } catch (e) {
      await setup.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      setup.release();
    }

    // Every table at once: COPY, then (a full DB) its keys and indexes, then ANALYZE — one connection and transaction each.
    const loadTable = async ({ member, name, sql, table }: CopyTask): Promise<[string, number]> => {
      const client: PoolClient = await connect(ctx.pool);
      let stored: Readable | null = null;
      try {
        await client.query('BEGIN');
        await client.query("SET LOCAL maintenance_work_mem = '128MB'");
        // The tables load side by side already: parallel index workers would only add processes
        // (and the CPU of merging their sorts) to cores the other tables' COPYs keep busy.
        await client.query('SET LOCAL max_parallel_maintenance_workers = 0');
        // Large values (a document, a long versions list) are compressed as they are stored: lz4 does it
        // several times faster than the default pglz, at about the same size.
        if (lz4) await client.query("SET LOCAL default_toast_compression = 'lz4'");
        stored = await getStream(ctx.store, p.bucket, stagedPrefix(digest, p.importId) + member.path);
        const body = stored;
        const meter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            done += chunk.length;
            progress.update({ unit: 'bytes', done, total: totalBytes, current: member.path, ...(mode ? { mode } : {}) });
            cb(null, chunk);
          },
        });
        body.on('error', (e) => meter.destroy(e));
        // Emptied in this transaction, so COPY may write its rows frozen: no hint bits
        // to set and no vacuum pass to make them all-visible later. Nothing reads this
        // schema before activate, so the usual MVCC caveat of FREEZE cannot apply.
        await client.query(`TRUNCATE ${qualified(schema, name)}`);
        const t0 = performance.now();
        const copy = client.query(copyFrom(`${sql} WITH (FREEZE)`));
        await pipeline(decodeMember(member, body.pipe(meter)), copy);
        const t1 = performance.now();
        if (member.rows !== undefined && member.rows !== copy.rowCount) {
          throw new OukError('MANIFEST_INVALID', `${member.path} holds ${copy.rowCount} rows, the manifest says ${member.rows}: the bundle is inconsistent — rebuild it`);
        }
        if (table && manifest.kind === 'full') for (const q of indexSql(schema, table)) await client.query(q);
        const t2 = performance.now();
        await client.query(`ANALYZE ${qualified(schema, name)}`);
        await client.query('COMMIT');
        const ms = (a: number, b: number): number => Math.round(b - a);
        ctx.logger.info({ table: name, rows: copy.rowCount, copyMs: ms(t0, t1), indexMs: ms(t1, t2), analyzeCommitMs: ms(t2, performance.now()) }, 'table loaded');
        return [name, copy.rowCount];
      } catch (e) {
        // The GET is not part of the pipeline (piped into the meter): a COPY that failed leaves it
        // paused with unread data, its connection to the store held open. Close it.
        stored?.destroy();
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    };
    const tasks: CopyTask[] = [
      ...members.map(({ member, table, list }) => ({
        member,
        name: table ? table.name : list,
        sql: table ? copySql(schema, table) : `COPY ${qualified(schema, list)} (${DELTA_LISTS[list].join(', ')}) FROM STDIN`,
        table,
      })),
      ...extras.map((x) => ({ member: x.member, name: x.table, sql: x.sql, table: null })),
    ];
    let loaded: [string, number][];
    try {
      loaded = await inParallel(tasks.map((t) => () => loadTable(t)), LOAD_PARALLEL);
      progress.flush();
      // The extra tables' indexes (small tables: one connection).
      if (manifest.kind === 'full') {
        const client = await connect(ctx.pool);
        try {
          await indexExtraTables(client, schema);
        } finally {
          client.release();
        }
      }
    } catch (e) {
      // A failed load leaves nothing: its half-filled schema (no done record names it, nothing reads
      // it) goes at once, not after gc's grace period — on a full disk it is what fills it. A retry
      // builds it again from the staged members.
      const dropped = (await dropSchemasQuietly(ctx.pool, [schema], ctx.logger).catch(() => null))?.dropped.length;
      ctx.logger.warn({ schema }, dropped ? 'load failed; its schema dropped' : 'load failed; its schema could not be dropped now (gc drops it)');
      throw e;
    }

    const counts: Record<string, number> = Object.fromEntries(TABLES.map((t) => [t.name, 0]));
    for (const [name, rows] of loaded) counts[name] = rows;
    const result: LoadResult = { schema, counts, bytes: totalBytes, ...(mode ? { mode, wholeBecause } : {}) };
    await stageDone(ctx.pool, p.importId, 'load', result, { schema_name: schema, counts: JSON.stringify(counts) });
    ctx.logger.info({ schema, counts }, 'DB loaded into its staging schema');
    return result;
  });
}

/** Whether this PostgreSQL (14 or later, built with lz4, as Debian's and the official images are) can compress values with lz4. */
async function hasLz4(client: PoolClient): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>("SELECT coalesce('lz4' = ANY(enumvals), false) AS ok FROM pg_settings WHERE name = 'default_toast_compression'");
  return r.rows[0]?.ok === true;
}

interface CopyTask {
  member: ManifestMember;
  /** the table the rows land in */
  name: string;
  sql: string;
  /** a core table (indexed in a full DB), or null */
  table: TableDef | null;
}

type LoadMember =
  | { member: ManifestMember; table: TableDef; list?: undefined }
  /** a delta's removed-id list, or its cleared list */
  | { member: ManifestMember; table: null; list: DeltaList };

/**
 * The members load COPYs, in TABLES order; a full bundle must carry every
 * table, a delta of format 3 or later its db/cleared.tsv (without it, rows it
 * means to delete would stay).
 */
export function dbMembers(manifest: Pick<Manifest, 'members' | 'kind' | 'formatVersion'>): LoadMember[] {
  const { members, kind } = manifest;
  const out: LoadMember[] = [];
  for (const t of TABLES) {
    const m = members.find((x) => contentPath(x) === t.member && x.role === 'db');
    if (m) out.push({ member: m, table: t });
    else if (kind === 'full') throw new OukError('MEMBER_MISSING', `the manifest of this full bundle does not list ${t.member}: the bundle is incomplete — rebuild it`);
  }
  if (kind !== 'delta') return out;
  const removed = members.find((x) => contentPath(x) === REMOVED_MEMBER && x.role === 'removed');
  if (removed) out.push({ member: removed, table: null, list: REMOVED_TABLE });
  const cleared = members.find((x) => contentPath(x) === CLEARED_MEMBER && x.role === 'removed');
  if (cleared) out.push({ member: cleared, table: null, list: CLEARED_TABLE });
  else if (deltaIsPerTable(manifest)) {
    throw new OukError('MEMBER_MISSING', `the manifest of this format-${manifest.formatVersion} delta does not list ${CLEARED_MEMBER}: the bundle is incomplete — rebuild it`);
  }
  return out;
}

