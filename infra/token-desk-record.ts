/**
 * The free-token desk's record (infra/sql/005_token_desk.sql,
 * ouk_meta.desk_tokens): every token the desk signs for a mail, written
 * before the reply leaves. The one module that touches the table; no policy
 * here — publisher/token-desk/ decides, this stores and reads.
 *
 * Life of a row: `reserve` inserts it as `sending` inside the domain's lock
 * (after the caller has counted the window under the same lock, so two mails
 * at once cannot both pass a limit); `markSent` or `markFailed` when the relay
 * has answered. The limits count `sending` and `sent` rows: a desk stopped
 * between the two steps errs on the side of "issued".
 */
import type pg from 'pg';
import type { Queryable } from './db.ts';
import { withTransaction } from './db.ts';


export type DeskTokenState = 'sending' | 'sent' | 'failed';

export interface DeskTokenRow {
  jti: string;
  issuedAt: Date;
  address: string;
  domain: string;
  sentTo: string;
  tier: number;
  expiresAt: Date;
  state: DeskTokenState;
  requestMessageId: string | null;
  clientIp: string | null;
  error: string | null;
}

export type NewDeskToken = Omit<DeskTokenRow, 'state' | 'error'>;

/** Serialises the desk's decisions per sender domain, across sessions and desk processes. */
const DESK_LOCK_CLASS = 0x7de5;

/** `fn` in one transaction holding the domain's advisory lock (released at COMMIT/ROLLBACK). */
export async function withDomainLock<T>(pool: pg.Pool, domain: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [DESK_LOCK_CLASS, domain]);
    return fn(client);
  });
}

/**
 * The issue times of counted tokens (sending, sent) for one address or one
 * domain since `since`, newest first, at most `limit` of them: enough to tell
 * whether a limit of `limit` is reached, and when it frees.
 */
export async function recentIssues(q: Queryable, scope: 'address' | 'domain', key: string, since: Date, limit: number): Promise<Date[]> {
  const column = scope === 'address' ? 'address' : 'domain';
  const r = await q.query<{ issued_at: Date }>(
    `SELECT issued_at FROM ouk_meta.desk_tokens
      WHERE ${column} = $1 AND issued_at > $2 AND state <> 'failed'
      ORDER BY issued_at DESC LIMIT $3`,
    [key, since, limit],
  );
  return r.rows.map((row) => row.issued_at);
}

/** On record as `sending` (call inside withDomainLock, after counting). */
export async function reserve(q: Queryable, t: NewDeskToken): Promise<void> {
  await q.query(
    `INSERT INTO ouk_meta.desk_tokens (jti, issued_at, address, domain, sent_to, tier, expires_at, state, request_message_id, client_ip, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'sending', $8, $9, $2)`,
    [t.jti, t.issuedAt, t.address, t.domain, t.sentTo, t.tier, t.expiresAt, t.requestMessageId, t.clientIp],
  );
}

export async function markSent(q: Queryable, jti: string, at: Date): Promise<void> {
  await q.query(`UPDATE ouk_meta.desk_tokens SET state = 'sent', updated_at = $2 WHERE jti = $1 AND state = 'sending'`, [jti, at]);
}

/** The relay refused the reply: the token never left, and no longer counts. */
export async function markFailed(q: Queryable, jti: string, at: Date, error: string): Promise<void> {
  await q.query(`UPDATE ouk_meta.desk_tokens SET state = 'failed', error = $3, updated_at = $2 WHERE jti = $1 AND state = 'sending'`, [jti, at, error.slice(0, 1000)]);
}

interface DbRow {
  jti: string;
  issued_at: Date;
  address: string;
  domain: string;
  sent_to: string;
  tier: number;
  expires_at: Date;
  state: DeskTokenState;
  request_message_id: string | null;
  client_ip: string | null;
  error: string | null;
}

/** The record, newest first (optionally one address's or one domain's). */
export async function listDeskTokens(q: Queryable, filter: { address?: string; domain?: string; limit?: number } = {}): Promise<DeskTokenRow[]> {
  const r = await q.query<DbRow>(
    `SELECT jti, issued_at, address, domain, sent_to, tier, expires_at, state, request_message_id, client_ip, error
       FROM ouk_meta.desk_tokens
      WHERE ($1::text IS NULL OR address = $1) AND ($2::text IS NULL OR domain = $2)
      ORDER BY issued_at DESC, jti LIMIT $3`,
    [filter.address ?? null, filter.domain ?? null, filter.limit ?? 1000],
  );
  return r.rows.map((x) => ({
    jti: x.jti,
    issuedAt: x.issued_at,
    address: x.address,
    domain: x.domain,
    sentTo: x.sent_to,
    tier: x.tier,
    expiresAt: x.expires_at,
    state: x.state,
    requestMessageId: x.request_message_id,
    clientIp: x.client_ip,
    error: x.error,
  }));
}
