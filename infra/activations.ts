/**
 * The activation history (ouk_meta.activations): one row per switch of the
 * active-DB pointer — an import activated, or a rollback to the previous DB —
 * written in the same transaction as the pointer (infra/active-db.ts). This
 * file is the only code that reads or writes that table.
 */
import type { Queryable } from './db.ts';

export type ActivationAction = 'activate' | 'rollback';

/** A row as stored. */
export interface ActivationRow {
  seq: string;
  action: ActivationAction;
  import_id: string | null;
  version: string;
  kind: string;
  schema_name: string;
  db_digest: string | null;
  counts: Record<string, number>;
  feeds: Array<{ name: string; snapshot: string | null; records: number; skipped: number }>;
  at: Date;
}

/** What the re-scan of stored SBOMs needs of an activation. */
export interface ActivationRef {
  seq: number;
  action: ActivationAction;
  importId: string | null;
  version: string;
  kind: string;
  schema: string;
}

export interface NewActivation {
  action: ActivationAction;
  importId: string;
  version: string;
  kind: string;
  schema: string;
  digest: string | null;
  counts: Record<string, number>;
  feeds: unknown;
  /** the caller's clock (not PostgreSQL's) */
  at: Date;
}

/** Records a switch; call it in the transaction that moves the pointer. */
export async function recordActivation(q: Queryable, a: NewActivation): Promise<void> {
  await q.query(
    `INSERT INTO ouk_meta.activations (action, import_id, version, kind, schema_name, db_digest, counts, feeds, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [a.action, a.importId, a.version, a.kind, a.schema, a.digest, JSON.stringify(a.counts), JSON.stringify(a.feeds), a.at],
  );
}

/** The newest activation of an import (its schema, counts and feeds as they were made active). */
export async function lastActivationOf(q: Queryable, importId: string): Promise<ActivationRow | undefined> {
  const r = await q.query<ActivationRow>('SELECT * FROM ouk_meta.activations WHERE import_id = $1 ORDER BY seq DESC LIMIT 1', [importId]);
  return r.rows[0];
}

/** The newest `limit` activations, newest first. */
export async function activationHistory(q: Queryable, limit: number): Promise<ActivationRow[]> {
  return (await q.query<ActivationRow>('SELECT * FROM ouk_meta.activations ORDER BY seq DESC LIMIT $1', [limit])).rows;
}

/** The row counts recorded when `schema` was last made active (null: never). */
export async function countsOfSchema(q: Queryable, schema: string): Promise<Record<string, number> | null> {
  const r = await q.query<{ counts: Record<string, number> }>('SELECT counts FROM ouk_meta.activations WHERE schema_name = $1 ORDER BY seq DESC LIMIT 1', [schema]);
  return r.rows[0]?.counts ?? null;
}

function toRef(row: ActivationRow | undefined): ActivationRef | null {
  return row ? { seq: Number(row.seq), action: row.action, importId: row.import_id, version: row.version, kind: row.kind, schema: row.schema_name } : null;
}

/** The newest activation (the one the active-DB pointer names: both are written in one transaction). */
export async function latestActivation(q: Queryable): Promise<ActivationRef | null> {
  return toRef((await q.query<ActivationRow>('SELECT * FROM ouk_meta.activations ORDER BY seq DESC LIMIT 1')).rows[0]);
}

/** The activation before `seq` (what a rollback undid is the one it follows). */
export async function activationBefore(q: Queryable, seq: number): Promise<ActivationRef | null> {
  return toRef((await q.query<ActivationRow>('SELECT * FROM ouk_meta.activations WHERE seq < $1 ORDER BY seq DESC LIMIT 1', [seq])).rows[0]);
}
