/**
 * The groups a person is in, nested groups included, found by the service
 * account:
 *
 *   direct      OUK_LDAP_GROUP_BASE set: groups under it whose `member` or
 *               `uniqueMember` names the person; unset: the person's `memberOf`.
 *   in-chain    Active Directory: one search with LDAP_MATCHING_RULE_IN_CHAIN
 *               (1.2.840.113556.1.4.1941), the server follows the chain.
 *   walk        Everyone else (OpenLDAP has no in-chain rule): the groups of
 *               those groups, level by level, at most OUK_LDAP_GROUP_DEPTH
 *               levels; a cycle ends where it meets a group already seen.
 *
 * `auto` asks the root DSE: a server announcing Active Directory's capability
 * (1.2.840.113556.1.4.800) gets in-chain, any other the walk. More than
 * OUK_LDAP_MAX_GROUPS groups signs nobody in (a bound, not a truncation:
 * dropping groups silently would make roles depend on search order).
 */
import { NoSuchObjectError, SizeLimitExceededError } from 'ldapts';
import type { LdapSettings, NestedGroups } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import { normalizeGroup } from '../role-map.ts';
import { first, values } from './attributes.ts';
import type { DirectoryConnection } from './connection.ts';
import { directGroupsFilter, inChainGroupsFilter } from './filter.ts';
import type { DirectoryUser } from './find-user.ts';

export type GroupMethod = 'direct' | 'in-chain' | 'walk';

export interface GroupsFound {
  readonly groups: readonly string[];
  readonly method: GroupMethod;
}

const AD_CAPABILITY = '1.2.840.113556.1.4.800';
/** DNs per search of the walk: the filter stays a few KiB. */
const BATCH = 25;
/** RFC 4511's "no attributes": only the DNs. */
const NO_ATTRIBUTES = ['1.1'];

class GroupSet {
  private readonly seen = new Map<string, string>();
  constructor(
    private readonly max: number,
    private readonly who: string,
  ) {}
  /** The DNs not seen before, now added. */
  add(dns: Iterable<string>): string[] {
    const fresh: string[] = [];
    for (const dn of dns) {
      const key = normalizeGroup(dn);
      if (this.seen.has(key)) continue;
      this.seen.set(key, dn);
      fresh.push(dn);
    }
    if (this.seen.size > this.max) throw tooManyGroups(this.who, this.max);
    return fresh;
  }
  get all(): string[] {
    return [...this.seen.values()];
  }
}

function tooManyGroups(who: string, max: number): OukError {
  return new OukError(
    'DIRECTORY_UNAVAILABLE',
    `${who} is in more than ${max} groups: nobody is signed in; raise OUK_LDAP_MAX_GROUPS, or narrow OUK_LDAP_GROUP_BASE to where the groups of OUK_ROLE_MAP live`,
    { retryable: false },
  );
}

async function searchGroups(conn: DirectoryConnection, settings: LdapSettings, base: string, filter: string, attributes: string[], who: string): Promise<{ dn: string; memberOf: string[] }[]> {
  try {
    const entries = await conn.search(base, { scope: 'sub', filter, attributes, sizeLimit: settings.maxGroups + 1 }, `looking up groups under ${base}`);
    return entries.map((e) => ({ dn: e.dn, memberOf: values(e, 'memberOf') }));
  } catch (e) {
    if (e instanceof SizeLimitExceededError) throw tooManyGroups(who, settings.maxGroups);
    if (e instanceof NoSuchObjectError) {
      throw new OukError('DIRECTORY_UNAVAILABLE', `the group base ${base} does not exist in the directory: nobody is signed in; fix OUK_LDAP_GROUP_BASE`, { cause: e, retryable: false });
    }
    throw e;
  }
}

/** The groups that directly contain any of `dns`. */
async function parentsOf(conn: DirectoryConnection, settings: LdapSettings, dns: readonly string[], who: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < dns.length; i += BATCH) {
    const batch = dns.slice(i, i + BATCH);
    if (settings.groupBase) {
      const found = await searchGroups(conn, settings, settings.groupBase, directGroupsFilter(batch), NO_ATTRIBUTES, who);
      out.push(...found.map((g) => g.dn));
    } else {
      for (const dn of batch) {
        const found = await memberOfGroup(conn, settings, dn, who);
        out.push(...found);
      }
    }
  }
  return out;
}

/** A group's own `memberOf` (nothing when the group is gone: a dangling memberOf grants nothing further). */
async function memberOfGroup(conn: DirectoryConnection, settings: LdapSettings, dn: string, who: string): Promise<string[]> {
  try {
    const entries = await conn.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['memberOf'], sizeLimit: 1 }, `reading the group ${dn}`);
    return entries.flatMap((e) => values(e, 'memberOf'));
  } catch (e) {
    if (e instanceof NoSuchObjectError) return [];
    if (e instanceof SizeLimitExceededError) throw tooManyGroups(who, settings.maxGroups);
    throw e;
  }
}

async function resolveMethod(conn: DirectoryConnection, nested: NestedGroups): Promise<{ method: GroupMethod; namingContext: string | undefined }> {
  if (nested === 'off') return { method: 'direct', namingContext: undefined };
  if (nested === 'walk') return { method: 'walk', namingContext: undefined };
  const dse = await conn.rootDse(['supportedCapabilities', 'defaultNamingContext']);
  const isAd = dse ? values(dse, 'supportedCapabilities').includes(AD_CAPABILITY) : false;
  const namingContext = dse ? first(dse, 'defaultNamingContext') : undefined;
  if (nested === 'in-chain') return { method: 'in-chain', namingContext };
  return { method: isAd ? 'in-chain' : 'walk', namingContext };
}

export async function groupsOf(conn: DirectoryConnection, settings: LdapSettings, user: DirectoryUser): Promise<GroupsFound> {
  const who = user.dn;
  const set = new GroupSet(settings.maxGroups, who);
  const { method, namingContext } = await resolveMethod(conn, settings.nestedGroups);
  if (method === 'in-chain') {
    const base = settings.groupBase ?? namingContext ?? settings.userBase;
    set.add(user.memberOf);
    set.add((await searchGroups(conn, settings, base, inChainGroupsFilter(user.dn), NO_ATTRIBUTES, who)).map((g) => g.dn));
    return { groups: set.all, method };
  }
  const direct = settings.groupBase
    ? (await searchGroups(conn, settings, settings.groupBase, directGroupsFilter([user.dn]), NO_ATTRIBUTES, who)).map((g) => g.dn)
    : user.memberOf;
  let frontier = set.add(direct);
  if (method === 'walk') {
    for (let depth = 0; depth < settings.groupDepth && frontier.length > 0; depth++) {
      frontier = set.add(await parentsOf(conn, settings, frontier, who));
    }
  }
  return { groups: set.all, method };
}
