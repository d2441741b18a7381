/**
 * Signing in through the site's directory (LDAP, Active Directory): what
 * identity/ldap/ offers the API and the CLI. docs/operations.md, "Signing in",
 * shows the configuration for OpenLDAP and Active Directory.
 */
export { LdapAuthenticator, MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS, type LdapDiagnosis, type LdapOutcome } from './authenticator.ts';
export { LOGIN_FAILED_MESSAGE } from './errors.ts';
export { escapeFilterValue, userFilter } from './filter.ts';
export type { GroupMethod } from './groups.ts';
