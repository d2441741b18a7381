/**
 * Back-off and lockout of password sign-ins, per account and per source
 * address (the counts: infra/login-attempts.ts, in PostgreSQL so every replica
 * agrees and a Redis flush lifts nothing).
 *
 * An account's failures back off — after the 2nd, no attempt is checked for
 * 1 s, then 2, 4, 8 … — and at OUK_LOGIN_MAX_FAILURES within
 * OUK_LOGIN_WINDOW_SECONDS the account is locked for OUK_LOGIN_LOCK_SECONDS.
 * An address is locked at OUK_LOGIN_MAX_ADDRESS_FAILURES (no back-off: many
 * people may share one NAT). A name that exists nowhere counts exactly like a
 * real one, so a lockout says nothing about who exists. While locked, the
 * password is not even checked (a right one included) and nothing more is
 * counted; a sign-in clears its account's count, never its address's.
 */
import crypto from 'node:crypto';
import type { SignInConfig } from '../lib/config.ts';
import type { Queryable } from '../infra/db.ts';
import { attemptState, clearFailures, recordFailure, type AttemptKind } from '../infra/login-attempts.ts';

const keyOf = (kind: AttemptKind, value: string): Buffer =>
  crypto.createHash('sha256').update(`${kind}\0${kind === 'account' ? value.trim().toLowerCase() : value}`, 'utf8').digest();

export interface LoginGuard {
  /** Seconds until an attempt for this account from this address is checked again; 0: go ahead. */
  waitSeconds(username: string, address: string, now: Date): Promise<number>;
  failed(username: string, address: string, now: Date): Promise<void>;
  succeeded(username: string): Promise<void>;
}

export function accountLockSeconds(failures: number, cfg: Pick<SignInConfig, 'accountMaxFailures' | 'lockSeconds'>): number {
  if (failures >= cfg.accountMaxFailures) return cfg.lockSeconds;
  return failures >= 2 ? Math.min(2 ** (failures - 2), cfg.lockSeconds) : 0;
}

export function loginGuard(db: Queryable, cfg: SignInConfig): LoginGuard {
  const window = cfg.failureWindowSeconds;
  return {
    async waitSeconds(username, address, now) {
      const [account, from] = await Promise.all([attemptState(db, 'account', keyOf('account', username), now, window), attemptState(db, 'address', keyOf('address', address), now, window)]);
      const until = Math.max(account.lockedUntil?.getTime() ?? 0, from.lockedUntil?.getTime() ?? 0);
      return until > now.getTime() ? Math.ceil((until - now.getTime()) / 1000) : 0;
    },
    async failed(username, address, now) {
      await recordFailure(db, 'account', keyOf('account', username), now, window, (n) => accountLockSeconds(n, cfg));
      await recordFailure(db, 'address', keyOf('address', address), now, window, (n) => (n >= cfg.addressMaxFailures ? cfg.lockSeconds : 0));
    },
    async succeeded(username) {
      await clearFailures(db, 'account', keyOf('account', username));
    },
  };
}
