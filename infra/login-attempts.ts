/**
 * Failed sign-ins per account and per source address (ouk_meta.login_attempts,
 * migration 010): the only owner of the table. Kept in PostgreSQL, not Redis:
 * every API replica sees the same counts, a Redis flush or failover (the
 * queues' store) cannot lift a lockout, and sign-ins are few enough that a row
 * write each costs nothing. Keys are hashes (identity/ never sees them).
 *
 * The policy (when to back off, when to lock) is the caller's: `recordFailure`
 * takes the lock time it computed from the new failure count.
 */
import type { Queryable } from './db.ts';

export type AttemptKind = 'account' | 'address';

export interface AttemptState {
  failures: number;
  lockedUntil: Date | null;
}

/** The current count within the window (older failures are forgotten), or zero. */
export async function attemptState(q: Queryable, kind: AttemptKind, keyHash: Buffer, now: Date, windowSeconds: number): Promise<AttemptState> {
  const r = await q.query<{ failures: number; locked_until: Date | null; first_at: Date }>(
    'SELECT failures, locked_until, first_at FROM ouk_meta.login_attempts WHERE kind = $1 AND key_hash = $2',
    [kind, keyHash],
  );
  const row = r.rows[0];
  if (!row) return { failures: 0, lockedUntil: null };
  const locked = row.locked_until && row.locked_until > now ? row.locked_until : null;
  const inWindow = now.getTime() - row.first_at.getTime() < windowSeconds * 1000;
  return { failures: inWindow || locked ? row.failures : 0, lockedUntil: locked };
}

/**
 * One more failure (a new window when the old one is over); `lockFor(failures)`
 * says how many seconds no attempt is checked after it (0: none). Returns the new state.
 */
export async function recordFailure(q: Queryable, kind: AttemptKind, keyHash: Buffer, now: Date, windowSeconds: number, lockFor: (failures: number) => number): Promise<AttemptState> {
  const r = await q.query<{ failures: number }>(
    `INSERT INTO ouk_meta.login_attempts AS a (kind, key_hash, failures, first_at, last_at)
     VALUES ($1, $2, 1, $3, $3)
     ON CONFLICT (kind, key_hash) DO UPDATE SET
       failures = CASE WHEN a.first_at + make_interval(secs => $4) <= $3 AND (a.locked_until IS NULL OR a.locked_until <= $3) THEN 1 ELSE a.failures + 1 END,
       first_at = CASE WHEN a.first_at + make_interval(secs => $4) <= $3 AND (a.locked_until IS NULL OR a.locked_until <= $3) THEN $3 ELSE a.first_at END,
       last_at = $3
     RETURNING failures`,
    [kind, keyHash, now, windowSeconds],
  );
  const failures = r.rows[0]?.failures ?? 1;
  const seconds = lockFor(failures);
  const lockedUntil = seconds > 0 ? new Date(now.getTime() + seconds * 1000) : null;
  await q.query('UPDATE ouk_meta.login_attempts SET locked_until = $3 WHERE kind = $1 AND key_hash = $2', [kind, keyHash, lockedUntil]);
  return { failures, lockedUntil };
}

/** A successful sign-in clears the account's count (never the address's: one good password must not reset a spray). */
export async function clearFailures(q: Queryable, kind: AttemptKind, keyHash: Buffer): Promise<void> {
  await q.query('DELETE FROM ouk_meta.login_attempts WHERE kind = $1 AND key_hash = $2', [kind, keyHash]);
}
