/**
 * Stage 3, load: the staged DB members into PostgreSQL, in ONE transaction:
 *
 *   CREATE SCHEMA ouk_db_<import id>  (a leftover is dropped first)
 *   CREATE TABLE … per bundle/tables.ts
 *   COPY each member straight from an object-store GET stream (pg-copy-streams)
 *   primary keys and indexes, ANALYZE
 *   the import record's load stage marked done
 *   COMMIT
 *
 * A crash anywhere rolls all of it back, so a half-loaded DB never exists; a
 * rerun finds the committed schema and the stage record and does nothing.
 * Readers never see this schema until activate points ouk_meta.state at it.
 *
 * A delta's rows are loaded the same way into their own schema; activate then
 * applies them to the active DB (see functions/activate.ts).
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pgCopyStreams from 'pg-copy-streams';
import type { ManifestMember } from '../bundle/manifest.ts';
import { REMOVED_MEMBER, TABLES, type TableDef } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import { connect, ident, type PoolClient } from '../infra/db.ts';
import { deltaSchemaFor, schemaFor, stagedMarker, stagedPrefix, throttledProgress, type StageContext, type StagePayload } from './context.ts';
import { copySql, createTableSql, dropSchema, indexSql, qualified } from '../infra/db-schema.ts';
import { getStream } from '../infra/store.ts';
import { requireImport, stageDone, stageIsDone } from '../infra/import-records.ts';
import { membersStaged, requireVerified, stageMembers } from './common/staging.ts';
import { createExtraTables, indexExtraTables } from './common/extras.ts';

const { from: copyFrom } = pgCopyStreams;

export interface LoadResult {
  schema: string;
  /** Rows per table (for a delta: rows staged, plus `removed` ids). */
  counts: Record<string, number>;
  bytes: number;
}

/** The table a delta's removed-id list is loaded into (one column, advisory_id). */
export const REMOVED_TABLE = 'removed';

/** Serialises two runs of the same import's load (e.g. a stalled job picked up while the first still runs). */
async function lockImport(client: PoolClient, importId: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ouk-load:${importId}`]);
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

  const members = dbMembers(manifest.members, manifest.kind);
  const extraBytes = manifest.members.filter((m) => (m.role === 'db' || m.role === 'removed') && !members.some((x) => x.member.path === m.path)).reduce((n, m) => n + m.size, 0);
  const totalBytes = members.reduce((n, m) => n + m.member.size, 0) + extraBytes;
  const progress = throttledProgress(ctx.progress);
  const client: PoolClient = await connect(ctx.pool);
  let committed = false;
  try {
    await client.query('BEGIN');
    await lockImport(client, p.importId);
    const rec = await requireImport(client, p.importId);
    if (stageIsDone(rec, 'load')) {
      await client.query('COMMIT');
      committed = true;
      return rec.stages.load!.result as LoadResult;
    }
    await client.query("SET LOCAL maintenance_work_mem = '256MB'");
    await dropSchema(client, schema);
    await client.query(`CREATE SCHEMA ${ident(schema)}`);
    for (const t of TABLES) await client.query(createTableSql(schema, t));
    if (manifest.kind === 'delta') await client.query(`CREATE TABLE ${qualified(schema, REMOVED_TABLE)} (advisory_id text NOT NULL)`);
    const extras = await createExtraTables(client, schema, manifest);

    const counts: Record<string, number> = Object.fromEntries(TABLES.map((t) => [t.name, 0]));
    let done = 0;
    const copies = [
      ...members.map(({ member, table }) => ({
        member,
        name: table ? table.name : REMOVED_TABLE,
        sql: table ? copySql(schema, table) : `COPY ${qualified(schema, REMOVED_TABLE)} (advisory_id) FROM STDIN`,
      })),
      ...extras.map((x) => ({ member: x.member, name: x.table, sql: x.sql })),
    ];
    for (const { member, name, sql } of copies) {
      const source = await getStream(ctx.store, p.bucket, stagedPrefix(digest, p.importId) + member.path);
      const copy = client.query(copyFrom(sql));
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          done += chunk.length;
          progress.update({ unit: 'bytes', done, total: totalBytes, current: member.path });
          cb(null, chunk);
        },
      });
      await pipeline(source, meter, copy);
      counts[name] = copy.rowCount;
      if (member.rows !== undefined && member.rows !== copy.rowCount) {
        throw new OukError('MANIFEST_INVALID', `${member.path} holds ${copy.rowCount} rows, the manifest says ${member.rows}: the bundle is inconsistent — rebuild it`);
      }
    }
    progress.flush();
    // A full DB gets its keys and indexes; a delta's staged rows are only scanned whole by activate.
    if (manifest.kind === 'full') {
      for (const t of TABLES) for (const sql of indexSql(schema, t)) await client.query(sql);
      await indexExtraTables(client, schema);
    }
    for (const t of TABLES) await client.query(`ANALYZE ${qualified(schema, t.name)}`);

    const result: LoadResult = { schema, counts, bytes: totalBytes };
    await stageDone(client, p.importId, 'load', result, { schema_name: schema, counts: JSON.stringify(counts) });
    await client.query('COMMIT');
    committed = true;
    ctx.logger.info({ schema, counts }, 'DB loaded into its staging schema');
    return result;
  } catch (e) {
    if (!committed) await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

interface LoadMember {
  member: ManifestMember;
  /** null for a delta's removed-id list */
  table: TableDef | null;
}

/** The members load COPYs, in TABLES order; a full bundle must carry every table. */
export function dbMembers(members: ManifestMember[], kind: 'full' | 'delta'): LoadMember[] {
  const out: LoadMember[] = [];
  for (const t of TABLES) {
    const m = members.find((x) => x.path === t.member);
    if (m) out.push({ member: m, table: t });
    else if (kind === 'full') throw new OukError('MEMBER_MISSING', `the manifest of this full bundle does not list ${t.member}: the bundle is incomplete — rebuild it`);
  }
  const removed = members.find((x) => x.path === REMOVED_MEMBER);
  if (removed && kind === 'delta') out.push({ member: removed, table: null });
  return out;
}

