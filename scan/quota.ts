/**
 * The daily scan quota, counted in Redis and never leaving the host.
 *
 * Key: `<prefix>:<sha256 hex of "token:<jti or sub>" or "anon:<client id>">:<UTC date YYYY-MM-DD>`
 * (prefix `quota` by default, so `quota:<hash>:2026-11-29`). The kind is part
 * of the hashed text so an anonymous client id can never share a counter with
 * a token id. Each scan runs one Lua script: INCR, then PEXPIRE until one hour
 * past the next UTC midnight, atomically, so concurrent scans never lose an
 * increment and a counter never outlives its day by more than that hour.
 * Counters reset at 00:00 UTC because the date in the key changes.
 *
 * The expiry is sent as a duration measured on the injected clock (`now`),
 * never as an absolute time: Redis's own clock then cannot disagree with the
 * clock that chose the key's date (a test clock, or a host whose clock differs
 * from Redis's), so a key never expires before its day is over.
 *
 * Limits: anonymous QUOTA_ANON (33) a day; a verified token QUOTA_TOKEN (333),
 * or its `tier` claim when higher (tier = that token's daily allowance).
 * From QUOTA_BANNER_AT (200) scans a day, responses carry a reminder banner.
 * Over the limit nothing is refused: an anonymous scan is slowed by 10 % of
 * its own duration; a token scan is throttled by a delay that grows with each
 * scan over the limit (throttleStepMs per scan, at most throttleMaxMs).
 *
 * With Sentinel (replicaAck), each increment waits up to 100 ms for a replica
 * to have it before the scan is answered, so a failover loses only increments
 * that no replica acknowledged in time; a scan answered 503 QUOTA_UNAVAILABLE
 * during a failover may or may not have been counted (docs/scale.md).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { OukError } from '../lib/errors.ts';

export type ClientKind = 'anonymous' | 'token';

export interface QuotaClient {
  kind: ClientKind;
  /** token: jti or sub; anonymous: a stable client id (API: the remote address; CLI: user@host) */
  id: string;
  /** token `tier` claim, if any */
  tier?: number;
}

export interface QuotaOptions {
  anonLimit: number;
  tokenLimit: number;
  bannerAt: number;
  /** key prefix, default "quota"; tests use their own */
  keyPrefix?: string;
  /** the clock (tests) */
  now?: () => Date;
  /** anonymous over the limit: extra delay as a fraction of the scan's time (default 0.1) */
  anonSlowdown?: number;
  /** token over the limit: delay per scan over the limit (default 250 ms) */
  throttleStepMs?: number;
  /** token over the limit: the delay's ceiling (default 30 s) */
  throttleMaxMs?: number;
  /** seconds a counter lives past the next UTC midnight (default 3600) */
  graceSeconds?: number;
  /**
   * With Sentinel: after each increment, WAIT until this many replicas have it, at most timeoutMs
   * (replication is asynchronous: an increment only the dying primary held is lost in a failover).
   * An increment no replica acknowledged in time still counts (the scan is answered); docs/scale.md.
   */
  replicaAck?: { replicas: number; timeoutMs: number };
}

export interface QuotaUsage {
  key: string;
  /** UTC date the scan was counted on */
  date: string;
  kind: ClientKind;
  /** scans today, this one included */
  count: number;
  limit: number;
  remaining: number;
  overLimit: boolean;
  /** when the counter starts again (next 00:00 UTC) */
  resetsAt: string;
  /** reminder text from QUOTA_BANNER_AT scans a day (and whenever over the limit), else null */
  banner: string | null;
}

/** INCR + PEXPIRE (milliseconds left in the key's day, plus the grace) in one atomic step; returns the new count. */
const INCR_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return n
`;

/** Milliseconds a counter counted at `now` lives: to the next UTC midnight plus `graceSeconds`. */
export function counterTtlMs(now: Date, graceSeconds = 3600): number {
  return Math.max(1, nextUtcMidnight(now).getTime() + graceSeconds * 1000 - now.getTime());
}

export function utcDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function nextUtcMidnight(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1));
}

export function clientHash(client: Pick<QuotaClient, 'kind' | 'id'>): string {
  return createHash('sha256').update(`${client.kind === 'token' ? 'token' : 'anon'}:${client.id}`, 'utf8').digest('hex');
}

export function quotaKey(client: Pick<QuotaClient, 'kind' | 'id'>, date: Date, prefix = 'quota'): string {
  return `${prefix}:${clientHash(client)}:${utcDate(date)}`;
}

export function limitFor(client: QuotaClient, opts: Pick<QuotaOptions, 'anonLimit' | 'tokenLimit'>): number {
  if (client.kind === 'anonymous') return opts.anonLimit;
  return Math.max(opts.tokenLimit, client.tier ?? 0);
}

function bannerText(u: Omit<QuotaUsage, 'banner'>, bannerAt: number, opts: QuotaOptions): string | null {
  if (u.overLimit) {
    const how =
      u.kind === 'anonymous'
        ? `anonymous scans are now slowed by ${Math.round((opts.anonSlowdown ?? 0.1) * 100)} %; use a token (STELLA_JWT) for a higher allowance`
        : 'scans are now throttled with a growing delay (never refused)';
    return `Quota: ${u.count} scans today, over the daily limit of ${u.limit} — ${how}. The counter resets at ${u.resetsAt}.`;
  }
  if (u.count >= bannerAt) {
    return `Reminder: ${u.count} of ${u.limit} scans used today (${u.remaining} left); the counter resets at ${u.resetsAt}.`;
  }
  return null;
}

export class Quota {
  constructor(
    private readonly redis: Redis,
    readonly opts: QuotaOptions,
  ) {}

  /** Counts one scan for `client` and says where it stands. */
  async count(client: QuotaClient): Promise<QuotaUsage> {
    const now = (this.opts.now ?? (() => new Date()))();
    const key = quotaKey(client, now, this.opts.keyPrefix ?? 'quota');
    const reset = nextUtcMidnight(now);
    const ttlMs = counterTtlMs(now, this.opts.graceSeconds ?? 3600);
    let count: number;
    try {
      count = Number(await this.redis.eval(INCR_SCRIPT, 1, key, String(ttlMs)));
      // the primary may die before a replica has the increment: a scan is answered once one has it (or the wait ends)
      const ack = this.opts.replicaAck;
      if (ack) await this.redis.wait(ack.replicas, ack.timeoutMs);
    } catch (e) {
      throw new OukError('QUOTA_UNAVAILABLE', `cannot count the scan in Redis (${(e as Error).message}): check REDIS_URL (or REDIS_SENTINELS) and that Redis has a primary; try again in a moment`, { cause: e, retryable: true });
    }
    const limit = limitFor(client, this.opts);
    const base = {
      key,
      date: utcDate(now),
      kind: client.kind,
      count,
      limit,
      remaining: Math.max(0, limit - count),
      overLimit: count > limit,
      resetsAt: reset.toISOString(),
    };
    return { ...base, banner: bannerText(base, this.opts.bannerAt, this.opts) };
  }

  /**
   * The delay owed after a scan that took `scanMs`: 0 within the limit;
   * anonymous: anonSlowdown x scanMs; token: throttleStepMs per scan over the
   * limit, capped at throttleMaxMs.
   */
  delayMs(usage: QuotaUsage, scanMs: number): number {
    if (!usage.overLimit) return 0;
    if (usage.kind === 'anonymous') return Math.round(Math.max(0, scanMs) * (this.opts.anonSlowdown ?? 0.1));
    const over = usage.count - usage.limit;
    return Math.min(this.opts.throttleMaxMs ?? 30_000, over * (this.opts.throttleStepMs ?? 250));
  }

  /** Today's count without counting (status, tests). */
  async peek(client: Pick<QuotaClient, 'kind' | 'id'>): Promise<number> {
    const now = (this.opts.now ?? (() => new Date()))();
    const v = await this.redis.get(quotaKey(client, now, this.opts.keyPrefix ?? 'quota'));
    return v === null ? 0 : Number(v);
  }
}
