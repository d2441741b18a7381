/**
 * The quarantine's steps on the record (functions/quarantine/quarantine.ts moves the
 * objects): the place claimed before the first copy, quarantined, released,
 * removed; and the questions the reconciler, the dashboard and /metrics ask.
 */
import type { Queryable } from '../db.ts';
import { fromRow, type ImportRecord, type Row } from './record.ts';

/**
 * Where a failed import's kit goes: the key already chosen (a replay moves to
 * the same place), else `key` (set now, before the first copy). Null when the
 * record is no longer failed (retried, or quarantined meanwhile).
 */
export async function claimQuarantineKey(q: Queryable, id: string, key: string): Promise<string | null> {
  const r = await q.query<{ quarantine_key: string }>(
    `UPDATE ouk_meta.imports SET quarantine_key = COALESCE(quarantine_key, $2), updated_at = now()
      WHERE id = $1 AND state = 'failed' RETURNING quarantine_key`,
    [id, key],
  );
  return r.rows[0]?.quarantine_key ?? null;
}

/** Whether another import holds `key` under quarantine/. */
export async function quarantineKeyTaken(q: Queryable, key: string, exceptId: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM ouk_meta.imports WHERE quarantine_key = $1 AND id <> $2 LIMIT 1', [key, exceptId]);
  return (r.rowCount ?? 0) > 0;
}

/** The kit is copied under quarantine/: the import is quarantined (from failed only; false when it was not failed). */
export async function markQuarantined(q: Queryable, id: string, code: string, at: Date): Promise<boolean> {
  const r = await q.query(
    `UPDATE ouk_meta.imports SET state = 'quarantined', quarantined_at = $3, quarantine_code = $2, updated_at = now()
      WHERE id = $1 AND state = 'failed' AND quarantine_key IS NOT NULL`,
    [id, code, at],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * Released (its kit is back at its key): the import is failed again, with no
 * code (so no reconciler pass quarantines it again), and the quarantine place
 * is forgotten; the caller retries it from its failed stage (`retryImport`),
 * which checks it again: a refused verify runs again against today's trust.
 * quarantined_at and quarantine_code stay (the count never goes back).
 */
export async function markReleased(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query(
    `UPDATE ouk_meta.imports SET state = 'failed', quarantine_key = NULL, error_code = NULL, updated_at = now()
      WHERE id = $1 AND state = 'quarantined'`,
    [id],
  );
  return (r.rowCount ?? 0) > 0;
}

/** `stella ouk quarantine rm`: the import's kit is deleted (the record stays, as 'removed'). */
export async function markRemoved(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query(`UPDATE ouk_meta.imports SET state = 'removed', updated_at = now() WHERE id = $1 AND state IN ('quarantined', 'removed')`, [id]);
  return (r.rowCount ?? 0) > 0;
}

/** Quarantined imports, newest first. */
export async function quarantinedImports(q: Queryable, limit = 500): Promise<ImportRecord[]> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE state = 'quarantined' ORDER BY quarantined_at DESC, id LIMIT $1`, [limit]);
  return r.rows.map(fromRow);
}

/** Failed imports with one of `codes` in `bucket`, oldest first: what a reconciler pass may still have to quarantine. */
export async function failedWithCodes(q: Queryable, bucket: string, codes: readonly string[], limit: number): Promise<ImportRecord[]> {
  const r = await q.query<Row>(
    `SELECT * FROM ouk_meta.imports WHERE state = 'failed' AND bucket = $1 AND error_code = ANY($2::text[]) ORDER BY updated_at, id LIMIT $3`,
    [bucket, codes, limit],
  );
  return r.rows.map(fromRow);
}

/** Of these ids, the imports that are quarantined (their kit must not stay at its old key). */
export async function settledOutOfBucket(q: Queryable, ids: readonly string[]): Promise<ImportRecord[]> {
  if (ids.length === 0) return [];
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE id = ANY($1::text[]) AND state = 'quarantined'`, [ids]);
  return r.rows.map(fromRow);
}

/** Every kit ever quarantined, per code (ouk_quarantined_total). */
export async function countQuarantinedByCode(q: Queryable): Promise<Record<string, number>> {
  const r = await q.query<{ code: string; n: string }>(
    `SELECT quarantine_code AS code, count(*) AS n FROM ouk_meta.imports WHERE quarantined_at IS NOT NULL AND quarantine_code IS NOT NULL GROUP BY quarantine_code`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.code, Number(x.n)]));
}
