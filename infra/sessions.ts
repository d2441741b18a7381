/**
 * Signed-in sessions (ouk_meta.sessions, migration 010): the only owner of the
 * table. The caller hands in the hash of the cookie's random id, never the id
 * itself; every clock reading is the caller's (injected) `now`.
 *
 * A session is live while it is not ended, `now` is before its absolute
 * timeout (`expires_at`) and within `idleSeconds` of its last use. `touch`
 * moves the last use forward in the same statement that checks liveness, so
 * two replicas answering one person agree.
 */
import type { Queryable } from './db.ts';

export interface SessionRecord {
  sub: string;
  username: string;
  displayName: string | null;
  roles: string[];
  via: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

export interface NewSession {
  idHash: Buffer;
  sub: string;
  username: string;
  displayName: string | null;
  roles: readonly string[];
  via: string;
  address: string | null;
  now: Date;
  expiresAt: Date;
}

/** Outside text kept in a row: bounded. */
const bounded = (s: string | null, max = 512): string | null => (s === null ? null : s.slice(0, max));

export async function createSession(q: Queryable, s: NewSession): Promise<void> {
  await q.query(
    `INSERT INTO ouk_meta.sessions (id_hash, sub, username, display_name, roles, via, address, created_at, last_seen_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)`,
    [s.idHash, bounded(s.sub, 1024), bounded(s.username, 256), bounded(s.displayName, 256), [...s.roles], s.via, bounded(s.address, 64), s.now, s.expiresAt],
  );
}

/** The live session with this id hash, its last use moved to `now`; null when unknown, ended, idle too long or past its absolute timeout. */
export async function touchSession(q: Queryable, idHash: Buffer, now: Date, idleSeconds: number): Promise<SessionRecord | null> {
  const r = await q.query<{ sub: string; username: string; display_name: string | null; roles: string[]; via: string; created_at: Date; last_seen_at: Date; expires_at: Date }>(
    `UPDATE ouk_meta.sessions SET last_seen_at = GREATEST(last_seen_at, $2)
      WHERE id_hash = $1 AND ended_at IS NULL AND $2 < expires_at AND $2 < last_seen_at + make_interval(secs => $3)
      RETURNING sub, username, display_name, roles, via, created_at, last_seen_at, expires_at`,
    [idHash, now, idleSeconds],
  );
  const row = r.rows[0];
  if (!row) return null;
  return { sub: row.sub, username: row.username, displayName: row.display_name, roles: row.roles, via: row.via, createdAt: row.created_at, lastSeenAt: row.last_seen_at, expiresAt: row.expires_at };
}

/** Sign-out: the session ends now (whatever state it was in). */
export async function endSession(q: Queryable, idHash: Buffer, now: Date): Promise<boolean> {
  const r = await q.query('UPDATE ouk_meta.sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL', [idHash, now]);
  return (r.rowCount ?? 0) > 0;
}

/** Removes sessions that ended, or timed out, more than `keepSeconds` before `now`; how many. */
export async function pruneSessions(q: Queryable, now: Date, idleSeconds: number, keepSeconds = 86_400): Promise<number> {
  const r = await q.query(
    `DELETE FROM ouk_meta.sessions
      WHERE LEAST(COALESCE(ended_at, 'infinity'), expires_at, last_seen_at + make_interval(secs => $2)) < $1::timestamptz - make_interval(secs => $3)`,
    [now, idleSeconds, keepSeconds],
  );
  return r.rowCount ?? 0;
}
