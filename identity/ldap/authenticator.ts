/**
 * The directory as a PasswordAuthenticator (identity/person.ts): search, then
 * bind. One connection per sign-in (connection.ts): the service account binds
 * and finds the person (find-user.ts) and their groups, nested ones included
 * (groups.ts); then the person's own DN binds with the password typed; the
 * groups map to roles through OUK_ROLE_MAP (identity/role-map.ts).
 *
 * An unknown user, an ambiguous one, a wrong password, an empty password (an
 * LDAP "unauthenticated bind" succeeds without checking anything) and a person
 * whose groups map to no role all end in the same LOGIN_FAILED. `diagnose`
 * says which, for the operator's `stella auth test-ldap`, never for a sign-in.
 */
import { FilterParser } from 'ldapts';
import type { LdapSettings } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import type { Role } from '../../lib/tokens.ts';
import type { PasswordAuthenticator, Person } from '../person.ts';
import { parseRoleMap, rolesFor, type RoleMap } from '../role-map.ts';
import { DirectoryConnection } from './connection.ts';
import { loginFailed, serviceBindRefused } from './errors.ts';
import { userFilter } from './filter.ts';
import { findUser } from './find-user.ts';
import { groupsOf, type GroupMethod } from './groups.ts';
import { loadSecrets } from './secrets.ts';

/** Longest user name and password taken (anything longer is no one's). */
export const MAX_USERNAME_CHARS = 256;
export const MAX_PASSWORD_CHARS = 1024;

export type LdapOutcome = 'signed-in' | 'refused-input' | 'unknown-user' | 'ambiguous-user' | 'wrong-password' | 'no-role';

export interface LdapDiagnosis {
  readonly outcome: LdapOutcome;
  readonly dn?: string;
  readonly username: string;
  readonly displayName?: string;
  readonly groups: readonly string[];
  readonly groupMethod?: GroupMethod;
  readonly roles: readonly Role[];
}

export class LdapAuthenticator implements PasswordAuthenticator {
  private constructor(
    private readonly settings: LdapSettings,
    private readonly roleMap: RoleMap,
  ) {}

  /** Checks what can be checked without the directory: the role map, the filter, the files. */
  static async create(settings: LdapSettings): Promise<LdapAuthenticator> {
    const roleMap = parseRoleMap(settings.roleMap);
    if (roleMap.length === 0) {
      throw new OukError('DIRECTORY_NOT_CONFIGURED', 'OUK_ROLE_MAP is empty: nobody could sign in through the directory; map a group to a role (operator:cn=ouk-operators,ou=groups,dc=example,dc=org)');
    }
    try {
      FilterParser.parseString(userFilter(settings.userFilter, 'probe'));
    } catch (e) {
      throw new OukError('DIRECTORY_NOT_CONFIGURED', `OUK_LDAP_USER_FILTER=${settings.userFilter} is not an LDAP filter (${(e as Error).message}): fix it (default (|(uid={user})(sAMAccountName={user})))`, { cause: e });
    }
    await loadSecrets(settings);
    return new LdapAuthenticator(settings, roleMap);
  }

  async authenticate(username: string, password: string): Promise<Person> {
    const d = await this.diagnose(username, password);
    if (d.outcome !== 'signed-in' || !d.dn) throw loginFailed();
    return { sub: d.dn, username: d.username, displayName: d.displayName, roles: d.roles, via: 'ldap' };
  }

  /** What the directory says about this user name and password; DIRECTORY_* errors when it cannot say. */
  async diagnose(username: string, password: string): Promise<LdapDiagnosis> {
    const none = { username, groups: [], roles: [] };
    if (!username || username.length > MAX_USERNAME_CHARS || /[\u0000-\u001f\u007f]/.test(username) || !password || password.length > MAX_PASSWORD_CHARS) {
      return { outcome: 'refused-input', ...none };
    }
    const secrets = await loadSecrets(this.settings);
    const conn = new DirectoryConnection(this.settings, secrets);
    try {
      if (!(await conn.bind(this.settings.bindDn, secrets.bindPassword, 'binding as the service account'))) {
        throw serviceBindRefused(this.settings.url, this.settings.bindDn);
      }
      const lookup = await findUser(conn, this.settings, username);
      if (lookup.kind === 'none') return { outcome: 'unknown-user', ...none };
      if (lookup.kind === 'ambiguous') return { outcome: 'ambiguous-user', ...none };
      const user = lookup.user;
      const { groups, method } = await groupsOf(conn, this.settings, user);
      const roles = rolesFor(groups, this.roleMap);
      const found = { dn: user.dn, username: user.username, displayName: user.displayName, groups, groupMethod: method, roles };
      // last: after this bind the connection acts as the person, not the service account
      if (!(await conn.bind(user.dn, password, 'checking the password'))) return { outcome: 'wrong-password', ...found };
      return { outcome: roles.length ? 'signed-in' : 'no-role', ...found };
    } finally {
      await conn.close();
    }
  }
}
