/**
 * Search, then bind: the person is found by the service account under
 * OUK_LDAP_USER_BASE with OUK_LDAP_USER_FILTER, the typed name escaped. Exactly
 * one entry is a person; none is an unknown user; two or more (a filter that
 * is too wide) signs nobody in.
 */
import { NoSuchObjectError, SizeLimitExceededError } from 'ldapts';
import type { LdapSettings } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import { first, values } from './attributes.ts';
import type { DirectoryConnection } from './connection.ts';
import { userFilter } from './filter.ts';

export interface DirectoryUser {
  readonly dn: string;
  /** uid or sAMAccountName as the directory spells it, else the name typed. */
  readonly username: string;
  readonly displayName: string | undefined;
  /** The entry's own `memberOf` values (the memberof overlay, Active Directory). */
  readonly memberOf: readonly string[];
}

export type UserLookup = { readonly kind: 'found'; readonly user: DirectoryUser } | { readonly kind: 'none' } | { readonly kind: 'ambiguous' };

const USER_ATTRIBUTES = ['uid', 'sAMAccountName', 'cn', 'displayName', 'memberOf'];

export async function findUser(conn: DirectoryConnection, settings: LdapSettings, username: string): Promise<UserLookup> {
  let entries;
  try {
    entries = await conn.search(
      settings.userBase,
      { scope: 'sub', filter: userFilter(settings.userFilter, username), attributes: USER_ATTRIBUTES, sizeLimit: 2 },
      `looking up the user under ${settings.userBase}`,
    );
  } catch (e) {
    if (e instanceof SizeLimitExceededError) return { kind: 'ambiguous' };
    if (e instanceof NoSuchObjectError) {
      throw new OukError('DIRECTORY_UNAVAILABLE', `the user base ${settings.userBase} does not exist in the directory: nobody is signed in; fix OUK_LDAP_USER_BASE`, { cause: e, retryable: false });
    }
    throw e;
  }
  if (entries.length === 0) return { kind: 'none' };
  if (entries.length > 1) return { kind: 'ambiguous' };
  const entry = entries[0]!;
  return {
    kind: 'found',
    user: {
      dn: entry.dn,
      username: first(entry, 'uid') ?? first(entry, 'sAMAccountName') ?? username,
      displayName: first(entry, 'displayName') ?? first(entry, 'cn'),
      memberOf: values(entry, 'memberOf'),
    },
  };
}
