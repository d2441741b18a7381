/** Reading import records: one by id, by id prefix (the CLI), the newest ones. */
import { OukError } from '../../lib/errors.ts';
import type { Queryable } from '../db.ts';
import { fromRow, type ImportRecord, type Row } from './record.ts';

export async function getImport(q: Queryable, id: string, forUpdate = false): Promise<ImportRecord | null> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return r.rows[0] ? fromRow(r.rows[0]) : null;
}

export async function requireImport(q: Queryable, id: string, forUpdate = false): Promise<ImportRecord> {
  const rec = await getImport(q, id, forUpdate);
  if (!rec) throw new OukError('IMPORT_NOT_FOUND', `no import ${id}: list imports with \`stella ouk status\``);
  return rec;
}

/** Imports whose id starts with `prefix` (the CLI accepts a unique prefix). */
export async function findImports(q: Queryable, prefix: string): Promise<ImportRecord[]> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE id LIKE $1 || '%' ORDER BY created_at DESC LIMIT 10`, [prefix.toLowerCase().replace(/[^0-9a-f]/g, '')]);
  return r.rows.map(fromRow);
}

/** The newest `limit` imports, newest first. */
export async function recentImports(q: Queryable, limit = 10): Promise<ImportRecord[]> {
  const r = await q.query<Row>('SELECT * FROM ouk_meta.imports ORDER BY created_at DESC LIMIT $1', [limit]);
  return r.rows.map(fromRow);
}

/** The newest `limit` failed imports and those of `alsoIds` (a stage job failed in the queue), newest first. */
export async function recentFailedImports(q: Queryable, alsoIds: readonly string[], limit: number): Promise<ImportRecord[]> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE state = 'failed' OR id = ANY($1::text[]) ORDER BY created_at DESC LIMIT $2`, [alsoIds, limit]);
  return r.rows.map(fromRow);
}

/** An import's bundle version (null when unknown or not verified yet). */
export async function importVersion(q: Queryable, id: string): Promise<string | null> {
  const r = await q.query<{ version: string | null }>('SELECT version FROM ouk_meta.imports WHERE id = $1', [id]);
  return r.rows[0]?.version ?? null;
}
