/** A bundle object gets its import record (once: the id is the object's identity); flags only ever rise. */
import type { Queryable } from '../db.ts';
import { getImport } from './get.ts';
import { fromRow, type ImportRecord, type Row } from './record.ts';

export interface NewImport {
  id: string;
  bucket: string;
  objectKey: string;
  etag: string;
  size: number | null;
  allowDowngrade: boolean;
  force: boolean;
  /** 'webhook', 'cli', 'reconciler' or 'mirror' */
  startedBy: string;
}

/** Creates the record, or returns the one there is (`created: false`). */
export async function createImport(q: Queryable, n: NewImport): Promise<{ record: ImportRecord; created: boolean }> {
  const inserted = await q.query<Row>(
    `INSERT INTO ouk_meta.imports (id, bucket, object_key, etag, size, allow_downgrade, force, started_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO NOTHING
     RETURNING *`,
    [n.id, n.bucket, n.objectKey, n.etag, n.size, n.allowDowngrade, n.force, n.startedBy],
  );
  if (inserted.rows[0]) return { record: fromRow(inserted.rows[0]), created: true };
  return { record: (await getImport(q, n.id))!, created: false };
}

/** Raises the import's downgrade and force flags where asked (never lowers them). */
export async function raiseFlags(q: Queryable, id: string, flags: { allowDowngrade: boolean; force: boolean }): Promise<void> {
  await q.query('UPDATE ouk_meta.imports SET allow_downgrade = allow_downgrade OR $2, force = force OR $3, updated_at = now() WHERE id = $1', [id, flags.allowDowngrade, flags.force]);
}
