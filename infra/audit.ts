/**
 * The audit trail (ouk_meta.audit, migration 009): the only owner of the
 * table. Rows are appended, never changed — the migration's trigger refuses
 * UPDATE, DELETE and TRUNCATE for every role. What an action writes is in
 * docs/trust.md ("The audit trail").
 */
import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export type AuditAction =
  | 'import.allow-downgrade'
  | 'import.force'
  | 'rollback'
  | 'retry'
  | 'quarantine.release'
  | 'quarantine.rm'
  | 'gc.grace-0'
  | 'dashboard.retry'
  /** any other state-changing dashboard request (clean, remove, promote, pause, resume, empty) */
  | 'dashboard.action'
  /** a sign-in with the break-glass account (OUK_BREAK_GLASS): every use is on record */
  | 'auth.break-glass'
  /** a person issued themself a personal API token (POST /auth/tokens): target `jti <id> role <role> until <exp>` */
  | 'token.issue'
  /** the verify stage stored the pinned root (a first pin, or a re-pin to another file): actor `system (<how it arrived> import)` */
  | 'trust.pin'
  /** the verify stage stored a root a kit carried: the site's root moved forward */
  | 'trust.advance';

export interface AuditEntry {
  /** the acting process's clock (injected) */
  at: Date;
  /** the person's `sub` (API, dashboard: identity/person.ts), the OS user (CLI) */
  actor: string;
  /** how the actor signed in: ldap, oidc, token, break-glass (API, dashboard); null for the CLI and the system */
  via?: string | null;
  action: AuditAction;
  target: string | null;
  reason: string | null;
  /** 'ok', or the error code the action ended with */
  outcome: string;
}

export interface AuditRow extends AuditEntry {
  seq: number;
}

/** Bounds on what a row keeps (operator text is outside input). */
const MAX_TEXT = 2000;

function bounded(s: string | null): string | null {
  return s === null ? null : s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s;
}

export async function appendAudit(q: Queryable, e: AuditEntry): Promise<void> {
  await q.query('INSERT INTO ouk_meta.audit (at, actor, action, target, reason, outcome, via) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
    e.at,
    bounded(e.actor) ?? 'unknown',
    e.action,
    bounded(e.target),
    bounded(e.reason),
    bounded(e.outcome) ?? 'ok',
    e.via ?? null,
  ]);
}

/** Rows at or after `since` (all when null), oldest first, at most `limit`. */
export async function listAudit(q: Queryable, opts: { since?: Date | null; limit?: number } = {}): Promise<AuditRow[]> {
  const r = await q.query<{ seq: string; at: Date; actor: string; via: string | null; action: AuditAction; target: string | null; reason: string | null; outcome: string }>(
    `SELECT seq, at, actor, via, action, target, reason, outcome FROM ouk_meta.audit
      WHERE $1::timestamptz IS NULL OR at >= $1::timestamptz
      ORDER BY at, seq LIMIT $2`,
    [opts.since ?? null, opts.limit ?? 1000],
  );
  return r.rows.map((x) => ({ seq: Number(x.seq), at: x.at, actor: x.actor, via: x.via, action: x.action, target: x.target, reason: x.reason, outcome: x.outcome }));
}
