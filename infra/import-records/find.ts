/**
 * The questions the rest of the site asks of the import records: the
 * reconciler's (which have a flow, what to repair, what waits for a signature
 * or a base), the mirror's, gc's and the delta policy's.
 */
import type { Queryable } from '../db.ts';
import { fromRow, type ImportRecord, type Row } from './record.ts';
import { FINISHED_STATES, UNFINISHED_STATES, type ImportState } from './states.ts';

/** Of `ids`, those whose flow was added to the queue. */
export async function withFlowAdded(q: Queryable, ids: readonly string[]): Promise<Set<string>> {
  const r = await q.query<{ id: string }>('SELECT id FROM ouk_meta.imports WHERE id = ANY($1::text[]) AND flow_added_at IS NOT NULL', [ids]);
  return new Set(r.rows.map((x) => x.id));
}

/**
 * The imports a repair looks at, oldest first, after `after` (a page cursor):
 * the unfinished ones, and the active one whose images step is owed (neither
 * done nor failed: a failed one waits for `stella ouk retry`).
 * The cursor's time is a JS Date (milliseconds): rows are ordered and compared
 * by created_at at that precision, else rows created within one millisecond
 * of the cursor's (PostgreSQL keeps microseconds) would be listed again and a
 * full page of them would hold the cursor where it is.
 */
export async function importsToRepair(q: Queryable, after: { createdAt: Date; id: string } | null, limit: number): Promise<ImportRecord[]> {
  const r = await q.query<Row>(
    `SELECT * FROM ouk_meta.imports
      WHERE (state = ANY($1::text[])
             OR (state = 'active' AND COALESCE(stages -> 'images' ->> 'state', '') NOT IN ('done', 'failed')))
        AND ($2::timestamptz IS NULL OR (date_trunc('milliseconds', created_at), id) > ($2::timestamptz, $3::text))
      ORDER BY date_trunc('milliseconds', created_at), id
      LIMIT $4`,
    [UNFINISHED_STATES, after?.createdAt ?? null, after?.id ?? '', limit],
  );
  return r.rows.map(fromRow);
}

/** The ids of the imports under way. */
export async function unfinishedImportIds(q: Queryable): Promise<string[]> {
  const r = await q.query<{ id: string }>('SELECT id FROM ouk_meta.imports WHERE state = ANY($1::text[])', [UNFINISHED_STATES]);
  return r.rows.map((x) => x.id);
}

/** Imports of `bucket` that failed with `code` (of one object when `objectKey` is given), oldest first. */
export async function failedWithCode(q: Queryable, bucket: string, code: string, objectKey?: string): Promise<{ id: string; objectKey: string }[]> {
  const r = await q.query<{ id: string; object_key: string }>(
    `SELECT id, object_key FROM ouk_meta.imports
      WHERE state = 'failed' AND error_code = $2 AND bucket = $1 AND ($3::text IS NULL OR object_key = $3)
      ORDER BY created_at`,
    [bucket, code, objectKey ?? null],
  );
  return r.rows.map((x) => ({ id: x.id, objectKey: x.object_key }));
}

/** Deltas of `bucket` refused for their base (DELTA_BASE_MISMATCH) whose base is `base`, oldest version first. */
export async function deltasRefusedForBase(q: Queryable, bucket: string, base: { version: string; digest: string }): Promise<{ id: string; version: string; base: string }[]> {
  const r = await q.query<{ id: string; version: string; base: string }>(
    `SELECT id, version, base_version AS base
       FROM ouk_meta.imports
      WHERE state = 'failed' AND error_code = 'DELTA_BASE_MISMATCH' AND kind = 'delta' AND bucket = $1
        AND manifest -> 'base' ->> 'version' = $2 AND manifest -> 'base' ->> 'dbDigest' = $3
      ORDER BY version, created_at`,
    [bucket, base.version, base.digest],
  );
  return r.rows;
}

/** The imports of any of these digests or object keys, and every one that was active once; newest first. */
export async function importsOfBundles(q: Queryable, digests: readonly string[], objectKeys: readonly string[]): Promise<ImportRecord[]> {
  const r = await q.query<Row>(
    `SELECT * FROM ouk_meta.imports
      WHERE digest = ANY($1::text[]) OR object_key = ANY($2::text[]) OR state = ANY($3::text[])
      ORDER BY created_at DESC`,
    [digests, objectKeys, FINISHED_STATES],
  );
  return r.rows.map(fromRow);
}

/** What gc weighs per import: its state, its last change, whether its load is done and whether an images step is still owed. */
export interface ImportGcFacts {
  state: ImportState;
  updatedAt: Date;
  loadDone: boolean;
  imagesPending: boolean;
}

export async function gcFactsByImport(q: Queryable): Promise<Map<string, ImportGcFacts>> {
  const r = await q.query<{ id: string; state: ImportState; updated_at: Date; load_done: boolean; images_pending: boolean }>(
    `SELECT id, state, updated_at,
            COALESCE(stages -> 'load' ->> 'state', '') = 'done' AS load_done,
            COALESCE(jsonb_array_length(manifest -> 'images'), 0) > 0 AND COALESCE(stages -> 'images' ->> 'state', '') <> 'done' AS images_pending
       FROM ouk_meta.imports`,
  );
  return new Map(r.rows.map((x) => [x.id, { state: x.state, updatedAt: x.updated_at, loadDone: x.load_done, imagesPending: x.images_pending }]));
}

/** The states of the imports of `ids` that exist. */
export async function statesOf(q: Queryable, ids: readonly string[]): Promise<Map<string, ImportState>> {
  const r = await q.query<{ id: string; state: ImportState }>('SELECT id, state FROM ouk_meta.imports WHERE id = ANY($1::text[])', [ids]);
  return new Map(r.rows.map((x) => [x.id, x.state]));
}

/**
 * Imports in `bucket` other than `excludeId`, under way (UNFINISHED_STATES),
 * of bundle version `version` or not verified yet and of object `objectKey`:
 * what may still bring a delta's base. Oldest first, with the DB digest their
 * manifest names.
 */
export async function baseCandidatesUnderWay(
  q: Queryable,
  w: { bucket: string; excludeId: string; version: string; objectKey: string },
): Promise<{ id: string; objectKey: string; state: ImportState; version: string | null; dbDigest: string | null }[]> {
  const r = await q.query<{ id: string; object_key: string; state: ImportState; version: string | null; db_digest: string | null }>(
    `SELECT id, object_key, state, version, manifest -> 'db' ->> 'digest' AS db_digest
       FROM ouk_meta.imports
      WHERE bucket = $1 AND id <> $2 AND state = ANY($3::text[])
        AND (version = $4 OR (version IS NULL AND object_key = $5))
      ORDER BY created_at`,
    [w.bucket, w.excludeId, UNFINISHED_STATES, w.version, w.objectKey],
  );
  return r.rows.map((x) => ({ id: x.id, objectKey: x.object_key, state: x.state, version: x.version, dbDigest: x.db_digest }));
}

/** Whether an import of this object (bucket, key, etag) exists. */
export async function importExistsFor(q: Queryable, bucket: string, objectKey: string, etag: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM ouk_meta.imports WHERE bucket = $1 AND object_key = $2 AND etag = $3', [bucket, objectKey, etag]);
  return (r.rowCount ?? 0) > 0;
}
