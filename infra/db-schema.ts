/**
 * SQL for a loaded DB, generated from bundle/tables.ts: one schema per import
 * (`ouk_db_<import id>`) holding the tables, then primary keys and indexes,
 * built after the COPY (faster than maintaining them row by row).
 */
import type pg from 'pg';
import type { TableDef } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import { liveSchemas } from './active-db.ts';
import { ident } from './db.ts';

export function qualified(schema: string, table: string): string {
  return `${ident(schema)}.${ident(table)}`;
}

/** A table's shape: one of bundle/tables.ts or bundle/extra-tables.ts. */
type TableShape = Pick<TableDef, 'columns' | 'indexes' | 'primaryKey'> & { name: string };

/**
 * Text columns compare bytewise (COLLATE "C"): every lookup is an equality, ids
 * and names are compared as the builder sorts them, and building an index over
 * millions of rows costs less without the server's locale (and much less
 * under en_US.UTF-8, the official images' default). A DB schema loaded before
 * keeps the database's default collation; the two mix without conflict (the
 * default yields to "C"), and statements joining two schemas make the one
 * they create take the target's collation (see functions/activate.ts).
 */
export function createTableSql(schema: string, t: TableShape): string {
  const cols = t.columns.map((c) => `${ident(c.name)} ${c.type}${c.type === 'text' ? ' COLLATE "C"' : ''}${c.nullable ? '' : ' NOT NULL'}`);
  return `CREATE TABLE ${qualified(schema, t.name)} (${cols.join(', ')})`;
}

export function copySql(schema: string, t: TableShape): string {
  return `COPY ${qualified(schema, t.name)} (${t.columns.map((c) => ident(c.name)).join(', ')}) FROM STDIN`;
}

/** Primary key and index statements for a table, after its rows are in. */
export function indexSql(schema: string, t: TableShape): string[] {
  const out: string[] = [];
  if (t.primaryKey?.length) {
    out.push(`ALTER TABLE ${qualified(schema, t.name)} ADD PRIMARY KEY (${t.primaryKey.map(ident).join(', ')})`);
  }
  for (const cols of t.indexes) {
    const name = `${t.name}_${cols.join('_')}_idx`;
    out.push(`CREATE INDEX ${ident(name)} ON ${qualified(schema, t.name)} (${cols.map(ident).join(', ')})`);
  }
  return out;
}

/**
 * DROP SCHEMA … CASCADE, refused for a live schema (the active DB, its undo
 * data, the previous DB): whatever replays a stage or cleans up, nothing ever
 * drops or rewrites what ouk_meta.active_db points at.
 */
export async function dropSchema(client: Pick<pg.PoolClient, 'query'>, schema: string): Promise<void> {
  if ((await liveSchemas(client)).has(schema)) {
    throw new OukError('IMPORT_FAILED', `refusing to drop ${schema}: it is a live DB (active, its undo data, or the previous DB kept for rollback)`);
  }
  await client.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`);
}

/** Whether `schema`.`table` exists. */
export async function tableExists(client: Pick<pg.PoolClient, 'query'>, schema: string, table: string): Promise<boolean> {
  const r = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [qualified(schema, table)]);
  return r.rows[0]?.t != null;
}

export async function schemaExists(q: { query: (sql: string, values?: unknown[]) => Promise<{ rowCount: number | null }> }, schema: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return (r.rowCount ?? 0) > 0;
}
