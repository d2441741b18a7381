/**
 * A full kit loaded as its difference onto the active DB of its lineage
 * (functions/common/lineage.ts decides when): the load stage stages, in the
 * delta schema `ouk_delta_<import id>`, what a format-2 delta of the same
 * change would hold, and activate applies it the way it applies a delta
 * (functions/activate.ts applyDelta: in the active schema, every row of each
 * advisory touched is replaced, the replaced rows saved for rollback).
 *
 *   1. the active DB's (advisory_id, content_hash), read with COPY TO;
 *   2. the kit's db/advisories.tsv streamed once: a row goes to COPY when its
 *      advisory is new or its content_hash differs (the digest the builder
 *      writes of the whole merged advisory, in every table); the active ids
 *      the kit does not have are the removed ones;
 *   3. each other table's member streamed once, at the same time, keeping
 *      only the rows of the changed advisories (a changed advisory's rows are
 *      replaced in every table, as a format-2 delta's are: no db/cleared.tsv
 *      needed); every member is sorted by advisory_id, so a row waits only
 *      until the advisories' pass has decided its advisory (IdGate);
 *   4. each extra table's member COPYed whole into the delta schema, then
 *      diffed against the active table by key in SQL: only the keys whose
 *      rows differ stay, the keys the kit no longer has go to
 *      `<table>_removed` — a delta's extra tables (functions/common/extras.ts).
 *
 * Every member's row count is checked against the manifest, as the whole load
 * does. When more than MAX_CHANGED_SHARE of the advisories differ, the
 * difference is no cheaper than the whole load: null is returned and the
 * caller loads the kit whole.
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pgCopyStreams from 'pg-copy-streams';
import { EXTRA_TABLES, removedTableName } from '../../bundle/extra-tables.ts';
import type { Manifest, ManifestMember } from '../../bundle/manifest.ts';
import { contentPath, decodeMember } from '../../bundle/member-codec.ts';
import { TABLES, type TableDef } from '../../bundle/tables.ts';
import { OukError } from '../../lib/errors.ts';
import { connect, ident, type PoolClient } from '../../infra/db.ts';
import { copySql, createTableSql, dropSchema, qualified, tableExists } from '../../infra/db-schema.ts';
import { getStream } from '../../infra/store.ts';
import { countBytes, deltaSchemaFor, stagedPrefix, type StageContext, type StagePayload } from '../context.ts';
import type { OntoBase } from './lineage.ts';
import { REMOVED_TABLE, type LoadResult } from './loaded.ts';
import { inParallel } from './parallel.ts';
import { advisoryChanged, idIn, IdGate, rowFilter, type AdvisoryDiff, type RowFilter } from './row-filter.ts';

const { from: copyFrom, to: copyTo } = pgCopyStreams;

/** Beyond this share of advisories added, changed or removed, the whole load is used. */
export const MAX_CHANGED_SHARE = 0.25;

/** Tables filtered and COPYed at once. */
const PARALLEL = 4;

/** The load stage's choice, as its progress and the import record show it. */
export function ontoMode(changed: number, total: number, onto: OntoBase): string {
  return `full: ${changed} changed of ${total}, applied onto ${onto.version}`;
}
export const WHOLE_MODE = 'full: loaded whole';

export interface OntoLoadInput {
  p: StagePayload;
  ctx: StageContext;
  manifest: Manifest;
  digest: string;
  onto: OntoBase;
  /** The kit's core table members (functions/load.ts dbMembers). */
  tables: { member: ManifestMember; table: TableDef }[];
}

export async function loadOnto({ p, ctx, manifest, digest, onto, tables }: OntoLoadInput): Promise<LoadResult | null> {
  const schema = deltaSchemaFor(p.importId);
  const active = onto.schema;
  const extras = EXTRA_TABLES.map((t) => ({ t, member: manifest.members.find((m) => contentPath(m) === t.member && m.role === 'db') }));
  const totalBytes = [...tables.map((x) => x.member), ...extras.flatMap((x) => (x.member ? [x.member] : []))].reduce((n, m) => n + m.size, 0);
  let done = 0;
  let last = 0;
  const report = (current: string, force = false): void => {
    const now = Date.now();
    if (!force && now - last < 500) return;
    last = now;
    ctx.progress({ unit: 'bytes', done, total: totalBytes, current, mode: `full: comparing with ${onto.version}` });
  };

  // 1. The active DB's content hashes, read while the schema is set up and the kit's advisories start to stream.
  const t0 = performance.now();
  const hashes = new Map<string, string>();
  const hashesRead = activeHashes(ctx, active, hashes);
  hashesRead.catch(() => undefined); // awaited below; a failure fails the advisories' stream first

  // The delta schema and its empty tables; each extra table shaped as the active one (the diff compares them).
  const setup = await connect(ctx.pool);
  try {
    await setup.query('BEGIN');
    await dropSchema(setup, schema);
    await setup.query(`CREATE SCHEMA ${ident(schema)}`);
    for (const t of TABLES) await setup.query(createTableSql(schema, t));
    await setup.query(`CREATE TABLE ${qualified(schema, REMOVED_TABLE)} (advisory_id text NOT NULL)`);
    for (const { t } of extras) {
      if (await tableExists(setup, active, t.name)) await setup.query(`CREATE TABLE ${qualified(schema, t.name)} (LIKE ${qualified(active, t.name)})`);
      else await setup.query(createTableSql(schema, t));
      await setup.query(`CREATE TABLE ${qualified(schema, removedTableName(t))} (${ident(t.key)} text NOT NULL)`);
    }
    await setup.query('COMMIT');
  } catch (e) {
    await setup.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    setup.release();
  }

  /** Streams a staged member through `filter` into `sql` (a COPY FROM STDIN); checks its row count. */
  const copyMember = async (member: ManifestMember, sql: string, filter: RowFilter, ready?: Promise<unknown>): Promise<number> => {
    const client: PoolClient = await connect(ctx.pool);
    let stored: Readable | null = null;
    try {
      stored = await getStream(ctx.store, p.bucket, stagedPrefix(digest, p.importId) + member.path);
      const counted = countBytes(stored, (n) => {
        done += n;
        report(member.path);
      });
      const copy = client.query(copyFrom(sql));
      const decoded = decodeMember(member, counted);
      await (ready ? pipeline(decoded, after(ready), filter, copy) : pipeline(decoded, filter, copy));
      if (member.rows !== undefined && member.rows !== filter.lines) {
        throw new OukError('MANIFEST_INVALID', `${member.path} holds ${filter.lines} rows, the manifest says ${member.rows}: the bundle is inconsistent — rebuild it`);
      }
      return copy.rowCount;
    } catch (e) {
      stored?.destroy();
      throw e;
    } finally {
      client.release();
    }
  };


  // 2. The kit's advisories: the new and changed rows; what is left in `hashes` is removed. At the same
  // time (3, 4), the other tables' rows of the changed advisories — each row waits until the advisories'
  // pass has decided its advisory (all members are sorted by advisory_id) — and the extra tables whole.
  const advisories = tables.find((x) => x.table.name === 'advisories')!;
  const hashColumn = advisories.table.columns.findIndex((c) => c.name === 'content_hash');
  const diff: AdvisoryDiff = { changed: new Set(), total: 0, added: 0 };
  const counts: Record<string, number> = Object.fromEntries(TABLES.map((t) => [t.name, 0]));
  let t1 = 0;
  let t2 = 0;
  const ready = hashesRead.then((n) => {
    t1 = performance.now();
    return n;
  });
  const gate = new IdGate();
  const advisoriesPass = copyMember(advisories.member, copySql(schema, advisories.table), rowFilter(advisoryChanged(hashes, hashColumn, diff, gate)), ready).then(
    (n) => {
      t2 = performance.now();
      gate.close();
      return n;
    },
    (e: unknown) => {
      gate.close(e instanceof Error ? e : new Error(String(e)));
      throw e;
    },
  );
  const keepChanged = diff.changed;
  const tasks: (() => Promise<[string, number]>)[] = [
    ...tables.filter((x) => x !== advisories).map((x) => async (): Promise<[string, number]> => [x.table.name, await copyMember(x.member, copySql(schema, x.table), rowFilter(idIn(keepChanged), gate))]),
    ...extras.flatMap(({ t, member }) => (member ? [async (): Promise<[string, number]> => [t.name, await copyMember(member, copySql(schema, t), rowFilter(() => true))]] : [])),
  ];
  const [adv, rest] = await Promise.allSettled([advisoriesPass, inParallel(tasks, PARALLEL - 1)]);
  if (adv.status === 'rejected') throw adv.reason;
  if (rest.status === 'rejected') throw rest.reason;
  counts.advisories = adv.value;
  for (const [name, n] of rest.value) counts[name] = n;
  const activeTotal = await ready;
  const t3 = performance.now();
  const removed = [...hashes.keys()];
  hashes.clear();
  const touched = diff.changed.size + removed.length;
  const ms = (a: number, b: number): number => Math.round(b - a);
  ctx.logger.info({ changed: diff.changed.size - diff.added, added: diff.added, removed: removed.length, kit: diff.total, active: activeTotal, hashesMs: ms(t0, t1), advisoriesMs: ms(t1, t2), tablesMs: ms(t1, t3) }, 'full kit compared with the active DB');
  if (touched > MAX_CHANGED_SHARE * Math.max(diff.total, activeTotal)) return null;

  await copyLines(ctx, `COPY ${qualified(schema, REMOVED_TABLE)} (advisory_id) FROM STDIN`, removed);
  counts[REMOVED_TABLE] = removed.length;

  const client = await connect(ctx.pool);
  try {
    for (const { t } of extras) counts[t.name] = await diffExtraTable(client, schema, active, t.name, t.key, removedTableName(t));
    for (const t of [...TABLES.map((x) => x.name), REMOVED_TABLE]) await client.query(`ANALYZE ${qualified(schema, t)}`);
  } finally {
    client.release();
  }
  ctx.logger.info({ extrasDiffAnalyzeMs: ms(t3, performance.now()) }, 'difference staged');
  const mode = ontoMode(touched, Math.max(diff.total, activeTotal), onto);
  ctx.progress({ unit: 'bytes', done, total: totalBytes, current: mode, mode });
  return { schema, counts, bytes: totalBytes, mode, onto: { ...onto, changed: diff.changed.size - diff.added, added: diff.added, removed: removed.length, advisories: diff.total } };
}

/** Passes its input on once `ready` has resolved (fails with it when it rejects). */
function after(ready: Promise<unknown>): Transform {
  let open = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (open) return cb(null, chunk);
      ready.then(
        () => {
          open = true;
          cb(null, chunk);
        },
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
      );
    },
  });
}

/** Fills `out` with the active DB's advisory_id → content_hash, read as COPY text (the kit's escaping); returns how many. */
async function activeHashes(ctx: StageContext, active: string, out: Map<string, string>): Promise<number> {
  const client = await connect(ctx.pool);
  try {
    const stream = client.query(copyTo(`COPY (SELECT advisory_id, content_hash FROM ${qualified(active, 'advisories')}) TO STDOUT`));
    const collect = rowFilter((line) => {
      const tab = line.indexOf(0x09);
      out.set(line.toString('utf8', 0, tab), line.toString('utf8', tab + 1));
      return false;
    });
    await pipeline(stream, collect, async function* (src: AsyncIterable<Buffer>) {
      for await (const _ of src) void _;
    });
    return out.size;
  } finally {
    client.release();
  }
}

/** COPYs `lines` (COPY text already: one row each) with `sql`. */
async function copyLines(ctx: StageContext, sql: string, lines: string[]): Promise<void> {
  const client = await connect(ctx.pool);
  try {
    const copy = client.query(copyFrom(sql));
    await pipeline(
      (async function* () {
        for (let i = 0; i < lines.length; i += 10_000) yield Buffer.from(lines.slice(i, i + 10_000).map((l) => `${l}\n`).join(''));
      })(),
      copy,
    );
  } finally {
    client.release();
  }
}

/**
 * Leaves in `schema`.`table` only the rows of the keys whose rows differ from
 * the active table's (as sets: a key's rows all stay or all go), and lists in
 * `removedTable` the active keys the kit no longer has. Returns the rows left.
 */
async function diffExtraTable(client: PoolClient, schema: string, active: string, table: string, keyColumn: string, removedTable: string): Promise<number> {
  const staged = qualified(schema, table);
  const key = ident(keyColumn);
  const changed = qualified(schema, `${table}_changed`);
  if (await tableExists(client, active, table)) {
    const target = qualified(active, table);
    await client.query(
      `CREATE TABLE ${changed} AS SELECT DISTINCT ${key} FROM (
         (SELECT * FROM ${staged} EXCEPT ALL SELECT * FROM ${target})
         UNION ALL
         (SELECT * FROM ${target} EXCEPT ALL SELECT * FROM ${staged})
       ) d`,
    );
  } else {
    await client.query(`CREATE TABLE ${changed} AS SELECT DISTINCT ${key} FROM ${staged}`);
  }
  await client.query(`DELETE FROM ${staged} s WHERE NOT EXISTS (SELECT 1 FROM ${changed} c WHERE c.${key} = s.${key})`);
  await client.query(`INSERT INTO ${qualified(schema, removedTable)} SELECT c.${key} FROM ${changed} c WHERE NOT EXISTS (SELECT 1 FROM ${staged} s WHERE s.${key} = c.${key})`);
  await client.query(`DROP TABLE ${changed}`);
  const n = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${staged}`);
  return n.rows[0]!.n;
}
