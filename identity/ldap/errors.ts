/**
 * What a sign-in through the directory ends in when it does not end in a
 * person: LOGIN_FAILED, one message for an unknown user, a wrong password and
 * a person without a role (it tells an attacker nothing), or
 * DIRECTORY_UNAVAILABLE (the directory is down, slow, untrusted or refuses the
 * service account: nobody is signed in; retryable when waiting may fix it).
 */
import { ResultCodeError } from 'ldapts';
import { OukError } from '../../lib/errors.ts';

export { LOGIN_FAILED_MESSAGE, loginFailed } from '../person.ts';

/** TLS verification failures, by node's error codes: the directory answered, but not as the site's CA vouches for. */
const UNTRUSTED = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME/i;

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code ? `${code}: ${e.message}` : e.message || e.name;
  }
  return String(e);
}

/** The directory at `url` failed while doing `what` (a dropped or refused connection, a timeout, a TLS refusal, an LDAP error). */
export function directoryUnavailable(url: string, what: string, cause: unknown): OukError {
  if (cause instanceof OukError) return cause;
  const detail = describe(cause);
  if (cause instanceof ResultCodeError) {
    // busy (51), unavailable (52), time limit exceeded (3), other (80): waiting may help; the rest is the configuration
    const transient = [3, 51, 52, 80].includes(cause.code);
    return new OukError(
      'DIRECTORY_UNAVAILABLE',
      `the directory at ${url} answered LDAP result ${cause.code} while ${what} (${cause.message}): nobody is signed in; ${transient ? 'try again shortly' : 'check OUK_LDAP_USER_BASE, OUK_LDAP_GROUP_BASE, OUK_LDAP_USER_FILTER and what the service account OUK_LDAP_BIND_DN may read'}`,
      { cause, retryable: transient },
    );
  }
  const code = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? '') : '';
  if (UNTRUSTED.test(code)) {
    return new OukError(
      'DIRECTORY_UNAVAILABLE',
      `the directory at ${url} is not trusted while ${what} (${detail}): nobody is signed in; set OUK_CA_FILE to the CA that issued its certificate, and check that OUK_LDAP_URL names a host its certificate lists`,
      { cause, retryable: false },
    );
  }
  return new OukError(
    'DIRECTORY_UNAVAILABLE',
    `the directory at ${url} failed while ${what} (${detail}): nobody is signed in; check that it is up and that OUK_LDAP_URL is right — sign-in works again by itself once it answers`,
    { cause, retryable: true },
  );
}

/** The directory answered "invalid credentials" to the service account's bind. */
export function serviceBindRefused(url: string, bindDn: string): OukError {
  return new OukError(
    'DIRECTORY_UNAVAILABLE',
    `the directory at ${url} refused the service account ${bindDn} (invalid credentials): nobody is signed in; check OUK_LDAP_BIND_DN and the password in OUK_LDAP_BIND_PASSWORD_FILE`,
    { retryable: false },
  );
}
