/**
 * The extra tables (bundle/extra-tables.ts: kev, epss, vex) in the pipeline,
 * shared by load, activate and rollback:
 *
 *   load      a full DB gets every extra table (empty when the kit has no
 *             member for it: an older kit, or one built without that feed);
 *             a delta stages the members it carries and their removed keys
 *   activate  per extra table a delta carries: the rows of every key in (its
 *             rows ∪ its removed keys) are deleted from the active DB and
 *             saved in the undo schema, then its rows inserted — index
 *             lookups per touched key, like the advisory tables
 *   rollback  the same keys' rows deleted again and the saved ones restored
 *
 * An active DB loaded before these tables existed gets them (empty) the first
 * time a delta carries one.
 */
import type pg from 'pg';
import { EXTRA_TABLES, removedTableName, type ExtraTableDef } from '../../bundle/extra-tables.ts';
import type { Manifest, ManifestMember } from '../../bundle/manifest.ts';
import { contentPath } from '../../bundle/member-codec.ts';
import { ident } from '../../infra/db.ts';
import { copySql, createTableSql, indexSql, qualified, schemaExists, tableExists } from '../../infra/db-schema.ts';
import { touchedTableName } from '../context.ts';

type Client = Pick<pg.PoolClient, 'query'>;

export interface ExtraCopy {
  member: ManifestMember;
  /** The table the rows land in (the table itself, or its removed-key list). */
  table: string;
  sql: string;
}

/** The member carrying `path` (stored compressed or not: bundle/member-codec.ts). */
function member(manifest: Manifest, path: string): ManifestMember | undefined {
  return manifest.members.find((m) => contentPath(m) === path);
}

/** Creates the extra tables a load needs in `schema` and says which members to COPY into them. */
export async function createExtraTables(client: Client, schema: string, manifest: Manifest): Promise<ExtraCopy[]> {
  const copies: ExtraCopy[] = [];
  for (const t of EXTRA_TABLES) {
    const rows = member(manifest, t.member);
    if (manifest.kind === 'delta' && !rows) continue;
    await client.query(createTableSql(schema, t));
    if (rows) copies.push({ member: rows, table: t.name, sql: copySql(schema, t) });
    if (manifest.kind === 'delta') {
      const removed = qualified(schema, removedTableName(t));
      await client.query(`CREATE TABLE ${removed} (${ident(t.key)} text NOT NULL)`);
      const list = member(manifest, t.removedMember);
      if (list) copies.push({ member: list, table: removedTableName(t), sql: `COPY ${removed} (${ident(t.key)}) FROM STDIN` });
    }
  }
  return copies;
}

/** Indexes of a full DB's extra tables, after the COPY. */
export async function indexExtraTables(client: Client, schema: string): Promise<void> {
  for (const t of EXTRA_TABLES) {
    for (const sql of indexSql(schema, t)) await client.query(sql);
    await client.query(`ANALYZE ${qualified(schema, t.name)}`);
  }
}

const touchedName = (t: ExtraTableDef): string => touchedTableName(t.name);

/**
 * Applies a delta's extra tables to the active schema, saving what it
 * replaces under `undo`; updates `counts` (rows per table).
 */
export async function applyExtrasDelta(client: Client, active: string, staged: string, undo: string, counts: Record<string, number>): Promise<void> {
  for (const t of EXTRA_TABLES) {
    if (!(await tableExists(client, staged, t.name))) continue;
    const target = qualified(active, t.name);
    if (!(await tableExists(client, active, t.name))) {
      await client.query(createTableSql(active, t));
      for (const sql of indexSql(active, t)) await client.query(sql);
    }
    const touched = qualified(undo, touchedName(t));
    const key = ident(t.key);
    // the active table's own column (collation included): the joins below use its indexes
    await client.query(`CREATE TABLE ${touched} AS SELECT ${key} FROM ${target} WITH NO DATA`);
    await client.query(`INSERT INTO ${touched} SELECT ${key} FROM ${qualified(staged, t.name)} UNION SELECT ${key} FROM ${qualified(staged, removedTableName(t))}`);
    await client.query(`ALTER TABLE ${touched} ADD PRIMARY KEY (${key})`);
    await client.query(`ANALYZE ${touched}`);
    await client.query(`CREATE TABLE ${qualified(undo, t.name)} (LIKE ${target})`);
    const del = await client.query(
      `WITH gone AS (DELETE FROM ${target} x USING ${touched} d WHERE x.${key} = d.${key} RETURNING x.*)
       INSERT INTO ${qualified(undo, t.name)} SELECT * FROM gone`,
    );
    const ins = await client.query(`INSERT INTO ${target} SELECT * FROM ${qualified(staged, t.name)}`);
    counts[t.name] = (counts[t.name] ?? 0) - (del.rowCount ?? 0) + (ins.rowCount ?? 0);
  }
}

/** Undoes applyExtrasDelta from the undo schema. */
export async function rollbackExtras(client: Client, active: string, undo: string): Promise<void> {
  if (!(await schemaExists(client as Parameters<typeof schemaExists>[0], undo))) return;
  for (const t of EXTRA_TABLES) {
    if (!(await tableExists(client, undo, touchedName(t)))) continue;
    const target = qualified(active, t.name);
    const key = ident(t.key);
    await client.query(`DELETE FROM ${target} x USING ${qualified(undo, touchedName(t))} d WHERE x.${key} = d.${key}`);
    await client.query(`INSERT INTO ${target} SELECT * FROM ${qualified(undo, t.name)}`);
  }
}
