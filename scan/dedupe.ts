/**
 * One finding per (component, vulnerability). The DB already holds one
 * advisory per vulnerability (the builder's alias graph), but a scan can still
 * reach one vulnerability twice: through two lookup keys of a component, or a
 * DB built before the graph existed. Findings of one component whose ids
 * (advisory id and aliases) overlap are one vulnerability. The match of the
 * finding matched by purl (over CPE), then with the preferred id, is kept
 * (its range and fixed version); it is named by the primary id of all the
 * ids (bundle/advisory-id.ts) and carries every other id as an alias.
 */
import { comparePrimaryPreference, primaryId } from '../bundle/advisory-id.ts';
import type { Finding } from './findings.ts';

function idsOf(f: Finding): string[] {
  return [f.advisoryId, ...f.aliases];
}

function preferred(a: Finding, b: Finding): number {
  return Number(a.matchedBy === 'cpe') - Number(b.matchedBy === 'cpe') || comparePrimaryPreference(a.advisoryId, b.advisoryId);
}

export function oneFindingPerVulnerability(findings: readonly Finding[]): Finding[] {
  const byComponent = new Map<string, Finding[]>();
  for (const f of findings) {
    const list = byComponent.get(f.component);
    if (list) list.push(f);
    else byComponent.set(f.component, [f]);
  }
  const out: Finding[] = [];
  for (const list of byComponent.values()) {
    // union-find over the component's findings, joined by any shared id
    const parent = list.map((_, i) => i);
    const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
    const owner = new Map<string, number>();
    list.forEach((f, i) => {
      for (const id of idsOf(f)) {
        const j = owner.get(id);
        if (j === undefined) owner.set(id, i);
        else parent[find(i)] = find(j);
      }
    });
    const groups = new Map<number, Finding[]>();
    list.forEach((f, i) => {
      const root = find(i);
      const g = groups.get(root);
      if (g) g.push(f);
      else groups.set(root, [f]);
    });
    for (const group of groups.values()) {
      if (group.length === 1) {
        out.push(group[0]!);
        continue;
      }
      const kept = [...group].sort(preferred)[0]!;
      const ids = new Set(group.flatMap(idsOf));
      const advisoryId = primaryId(ids);
      ids.delete(advisoryId);
      out.push({ ...kept, advisoryId, aliases: [...ids].sort() });
    }
  }
  return out;
}
