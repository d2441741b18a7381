/**
 * Single sign-on: the person a verified ID token names. `sub` is `iss#sub` (a
 * subject is unique only within its issuer); the roles are what the groups claim
 * (OUK_OIDC_GROUPS_CLAIM) maps to through OUK_ROLE_MAP. No mapped role: refused
 * exactly as a failed password sign-in is (LOGIN_FAILED).
 *
 * The claims are bounded: a groups claim that is not a list of names (or one
 * name), lists more than MAX_GROUPS, or holds a name longer than MAX_GROUP_CHARS
 * is the provider answering what OUK cannot read (OIDC_UNAVAILABLE).
 */
import { OukError } from '../../lib/errors.ts';
import { loginFailed, type Person } from '../person.ts';
import { rolesFor, type RoleMap } from '../role-map.ts';

export const MAX_GROUPS = 1000;
export const MAX_GROUP_CHARS = 1024;
const MAX_NAME_CHARS = 256;

export type IdTokenClaims = Readonly<Record<string, unknown>> & { readonly iss: string; readonly sub: string };

function groupsOf(claims: IdTokenClaims, claim: string): string[] {
  const value = claims[claim];
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  const unreadable = (why: string): OukError =>
    new OukError('OIDC_UNAVAILABLE', `the OpenID provider's "${claim}" claim ${why}: set OUK_OIDC_GROUPS_CLAIM to the claim listing group names, or fix the provider's groups mapper`);
  if (!Array.isArray(list)) throw unreadable('is not a list of group names');
  if (list.length > MAX_GROUPS) throw unreadable(`lists ${list.length} groups, more than the ${MAX_GROUPS} OUK reads`);
  for (const g of list) {
    if (typeof g !== 'string' || g.length > MAX_GROUP_CHARS) throw unreadable(`holds an entry that is not a group name of at most ${MAX_GROUP_CHARS} characters`);
  }
  return list as string[];
}

function shortText(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value.replace(/[\x00-\x1f\x7f]/g, '').slice(0, MAX_NAME_CHARS) : undefined;
}

/** The person an ID token's claims name, or LOGIN_FAILED when their groups map to no role. */
export function personFromClaims(claims: IdTokenClaims, groupsClaim: string, roleMap: RoleMap): Person {
  const roles = rolesFor(groupsOf(claims, groupsClaim), roleMap);
  if (roles.length === 0) {
    throw loginFailed();
  }
  const username = shortText(claims.preferred_username) ?? shortText(claims.email) ?? claims.sub.slice(0, MAX_NAME_CHARS);
  const displayName = shortText(claims.name);
  return {
    sub: `${claims.iss}#${claims.sub}`,
    username,
    ...(displayName ? { displayName } : {}),
    roles,
    via: 'oidc',
  };
}
