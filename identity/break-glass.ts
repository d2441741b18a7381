/**
 * The break-glass account: the one shared DASHBOARD_USER/DASHBOARD_PASSWORD,
 * for the day the directory is down. Off unless OUK_BREAK_GLASS=true; whoever
 * signs in with it holds every role (admin), and the API puts every use on the
 * audit trail (via `break-glass`).
 *
 * Both the user name and the password are compared in constant time (SHA-256
 * digests first, so lengths leak nothing either), and both are always compared.
 */
import crypto from 'node:crypto';
import { OukError } from '../lib/errors.ts';
import { LOGIN_FAILED_MESSAGE, type PasswordAuthenticator, type Person } from './person.ts';

export { LOGIN_FAILED_MESSAGE };

const digest = (s: string): Buffer => crypto.createHash('sha256').update(s, 'utf8').digest();

export function constantTimeEqual(a: string, b: string): boolean {
  return crypto.timingSafeEqual(digest(a), digest(b));
}

export interface BreakGlassAccount {
  user: string;
  password: string;
}

export class BreakGlassAuthenticator implements PasswordAuthenticator {
  readonly #account: BreakGlassAccount;

  constructor(account: BreakGlassAccount) {
    this.#account = account;
  }

  /** Whether `username` names this account (constant time): the sign-in chooser asks before trying the directory. */
  names(username: string): boolean {
    return constantTimeEqual(username, this.#account.user);
  }

  async authenticate(username: string, password: string): Promise<Person> {
    const userOk = constantTimeEqual(username, this.#account.user);
    const passOk = constantTimeEqual(password, this.#account.password);
    if (!(userOk && passOk)) throw new OukError('LOGIN_FAILED', LOGIN_FAILED_MESSAGE);
    return { sub: this.#account.user, username: this.#account.user, displayName: 'break-glass account', roles: ['admin'], via: 'break-glass' };
  }
}
