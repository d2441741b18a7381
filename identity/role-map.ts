/**
 * OUK_ROLE_MAP: which directory or OpenID groups grant which role.
 *
 *   operator:cn=ouk-operators,ou=groups,dc=example,dc=org;viewer:cn=staff,ou=groups,dc=example,dc=org
 *
 * Entries are `role:group` separated by `;` (a DN holds commas, never `;`
 * unescaped). Group names compare as DNs do, case- and space-insensitively
 * around the commas; an OIDC groups claim's plain names compare the same way.
 * A person whose groups map to no role gets none, and cannot sign in.
 */
import { OukError } from '../lib/errors.ts';
import { ROLES, type Role } from '../lib/tokens.ts';

export type RoleMap = ReadonlyArray<{ readonly role: Role; readonly group: string }>;

/** A DN or group name in the form two spellings of one group share. */
export function normalizeGroup(name: string): string {
  return name
    .split(/(?<!\\),/)
    .map((rdn) => rdn.trim().replace(/\s*=\s*/, '=').toLowerCase())
    .join(',');
}

export function parseRoleMap(text: string | undefined): RoleMap {
  const out: { role: Role; group: string }[] = [];
  for (const raw of (text ?? '').split(';')) {
    const entry = raw.trim();
    if (!entry) continue;
    const colon = entry.indexOf(':');
    const role = entry.slice(0, colon).trim() as Role;
    const group = entry.slice(colon + 1).trim();
    if (colon < 1 || !ROLES.includes(role) || !group) {
      throw new OukError('USAGE', `OUK_ROLE_MAP entry "${entry}" is not role:group with a role of ${ROLES.join(', ')}; fix OUK_ROLE_MAP`);
    }
    out.push({ role, group: normalizeGroup(group) });
  }
  return out;
}

/** The roles the person's groups grant, in ROLES order, each once. */
export function rolesFor(groups: Iterable<string>, map: RoleMap): Role[] {
  const have = new Set([...groups].map(normalizeGroup));
  const granted = new Set(map.filter((e) => have.has(e.group)).map((e) => e.role));
  return ROLES.filter((r) => granted.has(r));
}
