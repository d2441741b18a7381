/**
 * Which advisory a record belongs to. A record keyed by a CVE id is merged with
 * every other record keyed by that CVE (the NVD record, GHSA, OSV, distro
 * records): the record's own id when it is a CVE id; else the single CVE id among
 * its aliases and upstream ids; else (no CVE, or several) its own id, so records
 * that share an id across feeds (a GHSA in ghsa/ and in osv/npm/) still merge.
 */
import { isCveId } from './feeds/fields.ts';

export function mergeKey(id: string, aliases: readonly string[], upstream: readonly string[]): string {
  if (isCveId(id)) return id;
  const cves = new Set<string>();
  for (const a of aliases) if (isCveId(a)) cves.add(a);
  for (const a of upstream) if (isCveId(a)) cves.add(a);
  if (cves.size === 1) return cves.values().next().value!;
  return id;
}
