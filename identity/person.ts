/**
 * Who a person is once signed in: the one shape every way of signing in
 * (a directory through LDAP, an OpenID provider, a personal API token, the
 * break-glass account) hands to the API's sessions and to the audit trail.
 *
 * identity/ stands on lib/ only: the directory client (identity/ldap/), the
 * OpenID client (identity/oidc/) and the role map live here; sessions and the
 * routes that use them live in api/, their table in infra/.
 */
import { OukError } from '../lib/errors.ts';
import type { Role } from '../lib/tokens.ts';

export type SignInMethod = 'ldap' | 'oidc' | 'token' | 'break-glass';

export interface Person {
  /** Stable identity for the audit trail: the directory's DN (ldap), `iss#sub` (oidc), the token's `sub`. */
  readonly sub: string;
  /** The short name a person types or is shown (uid, sAMAccountName, preferred_username). */
  readonly username: string;
  readonly displayName?: string;
  /** The roles the role map grants; never empty for a person who may sign in. */
  readonly roles: readonly Role[];
  readonly via: SignInMethod;
}

/** A way to sign in with a user name and a password (the directory; the break-glass account). */
export interface PasswordAuthenticator {
  /**
   * The person, or a thrown OukError: LOGIN_FAILED (unknown user, wrong password,
   * no mapped role: the same code and message for each), DIRECTORY_UNAVAILABLE
   * (the directory is down or answers wrong: retryable, never a sign-in).
   */
  authenticate(username: string, password: string): Promise<Person>;
}

/**
 * The one answer to every refused sign-in — an unknown user, a wrong password,
 * a person with no mapped role — whichever way they came (directory, OpenID,
 * break-glass): it tells an attacker nothing.
 */
export const LOGIN_FAILED_MESSAGE = 'the user name or the password is wrong (or the account may not sign in here): check both and try again';

export function loginFailed(): OukError {
  return new OukError('LOGIN_FAILED', LOGIN_FAILED_MESSAGE);
}
