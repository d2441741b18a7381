/**
 * The newest signed time this site has seen (ouk_meta.signed_time, one row,
 * infra/sql/006_signed_time.sql): the `created` time of a verified kit's
 * manifest. The only module that touches the row.
 *
 * It moves only forward: `advanceSignedTime` is a monotonic
 * `SET newest = GREATEST(newest, $1)`, and the table's trigger keeps the newer
 * time whatever an UPDATE asks for. A site whose clock is set back reads it
 * to count ages from the later of the two (lib/freshness.ts).
 */
import type { Queryable } from './db.ts';


export interface SignedTime {
  /** the newest signed time, null before the first verified kit */
  newest: Date | null;
  /** the import and kit version it came from */
  importId: string | null;
  version: string | null;
  /** the host clock when it was recorded */
  recordedAt: Date | null;
}

export async function readSignedTime(q: Queryable): Promise<SignedTime> {
  const r = await q.query<{ newest: Date | null; import_id: string | null; version: string | null; recorded_at: Date | null }>(
    'SELECT newest, import_id, version, recorded_at FROM ouk_meta.signed_time WHERE singleton',
  );
  const row = r.rows[0];
  if (!row) throw new Error('ouk_meta.signed_time has no row: run the migrations (infra/db.ts migrate)');
  return { newest: row.newest, importId: row.import_id, version: row.version, recordedAt: row.recorded_at };
}

/**
 * Records `created` (a verified kit's signed time) unless a later time is on
 * record already; returns whether it advanced. `hostNow` is this host's clock,
 * kept beside it for the record (never PostgreSQL's own now()).
 */
export async function advanceSignedTime(q: Queryable, created: Date, source: { importId: string; version: string }, hostNow: Date): Promise<boolean> {
  if (Number.isNaN(created.getTime())) throw new Error(`not a signed time: ${String(created)}`);
  const r = await q.query(
    `UPDATE ouk_meta.signed_time
        SET newest = GREATEST(newest, $1::timestamptz), import_id = $2, version = $3, recorded_at = $4
      WHERE singleton AND (newest IS NULL OR newest < $1::timestamptz)`,
    [created, source.importId, source.version, hostNow],
  );
  return (r.rowCount ?? 0) > 0;
}
