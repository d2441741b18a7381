/**
 * Which PasswordAuthenticator answers a user name and password: the
 * break-glass account for its own name (when it is on), else the directory
 * (LDAP, when OUK_LDAP_URL is set: identity/ldap/), else nobody. Every refusal
 * is the same LOGIN_FAILED, whatever refused it; DIRECTORY_UNAVAILABLE passes
 * through (retryable, never a sign-in).
 */
import { OukError } from '../lib/errors.ts';
import { BreakGlassAuthenticator, LOGIN_FAILED_MESSAGE, type BreakGlassAccount } from './break-glass.ts';
import type { PasswordAuthenticator, Person } from './person.ts';

export interface PasswordSignInOptions {
  /** The directory (LDAP); undefined when none is configured. */
  directory?: PasswordAuthenticator;
  /** The break-glass account, only when OUK_BREAK_GLASS=true and both DASHBOARD_USER and DASHBOARD_PASSWORD are set. */
  breakGlass?: BreakGlassAccount;
}

export function passwordSignIn(opts: PasswordSignInOptions): PasswordAuthenticator & { readonly configured: boolean } {
  const breakGlass = opts.breakGlass ? new BreakGlassAuthenticator(opts.breakGlass) : undefined;
  const directory = opts.directory;
  return {
    configured: Boolean(breakGlass || directory),
    async authenticate(username: string, password: string): Promise<Person> {
      if (breakGlass?.names(username)) return breakGlass.authenticate(username, password);
      if (directory) {
        const person = await directory.authenticate(username, password);
        if (person.roles.length === 0) throw new OukError('LOGIN_FAILED', LOGIN_FAILED_MESSAGE);
        return person;
      }
      throw new OukError('LOGIN_FAILED', LOGIN_FAILED_MESSAGE);
    },
  };
}
