/**
 * Search filters built from what a person typed: every value is escaped as
 * RFC 4515 says (`*`, `(`, `)`, `\` and NUL as `\XX`), so a user name such as
 * `*)(uid=*` is looked up as those eight characters and matches nobody.
 */

/** `value` as the assertion value of a filter: the characters that mean something in a filter, escaped. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\u0000]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** OUK_LDAP_USER_FILTER with the escaped user name in place of each `{user}`. */
export function userFilter(template: string, username: string): string {
  const value = escapeFilterValue(username);
  return template.split('{user}').join(value);
}

/** Groups that list any of `dns` as a direct member (groupOfNames' `member`, groupOfUniqueNames' `uniqueMember`). */
export function directGroupsFilter(dns: readonly string[]): string {
  const terms = dns.flatMap((dn) => [`(member=${escapeFilterValue(dn)})`, `(uniqueMember=${escapeFilterValue(dn)})`]);
  return `(|${terms.join('')})`;
}

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: evaluated by the server along the whole chain of groups. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

/** Every group `dn` belongs to, directly or through other groups (Active Directory only). */
export function inChainGroupsFilter(dn: string): string {
  return `(member:${IN_CHAIN_RULE}:=${escapeFilterValue(dn)})`;
}
