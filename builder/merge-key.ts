/**
 * Which advisory a record belongs to: the alias graph.
 *
 * Every id a record names is a node; a record joins its own id with each of its
 * `aliases` (and with its `upstream` id when it names exactly one: the record
 * is that vulnerability as one distribution ships it; a record naming several
 * upstream ids bundles several vulnerabilities and joins none of them). Edges
 * are undirected, so an alias listed on one side only (a GO record names a
 * GHSA that names nothing back) still joins the two. A vulnerability is a
 * connected component of this graph; its records are merged into one advisory
 * keyed by the component's primary id (bundle/advisory-id.ts: a CVE first).
 *
 * The graph holds ids only (a union-find over an index of strings), so memory
 * grows with the number of distinct ids, not with the records' size. Feed
 * every record with `add`, then `freeze` once and ask `keyOf` per record.
 */
import { comparePrimaryPreference } from '../bundle/advisory-id.ts';
import type { SourceRecord } from './model.ts';

/** The ids a record joins into one vulnerability: its own, its aliases, a single upstream id. */
export function linkedIds(rec: Pick<SourceRecord, 'source' | 'aliases' | 'upstream'>): string[] {
  const ids = [rec.source.id, ...rec.aliases];
  if (rec.upstream.length === 1) ids.push(rec.upstream[0]!);
  return ids;
}

export class AliasGraph {
  private readonly index = new Map<string, number>();
  private readonly ids: string[] = [];
  private readonly parent: number[] = [];
  /** After freeze: the primary id of each root. */
  private primaries: Map<number, string> | null = null;

  private node(id: string): number {
    let n = this.index.get(id);
    if (n === undefined) {
      n = this.ids.length;
      this.index.set(id, n);
      this.ids.push(id);
      this.parent.push(n);
    }
    return n;
  }

  private find(n: number): number {
    let root = n;
    while (this.parent[root] !== root) root = this.parent[root]!;
    // path compression
    while (this.parent[n] !== root) {
      const next = this.parent[n]!;
      this.parent[n] = root;
      n = next;
    }
    return root;
  }

  /** Joins every id in `ids` into one component. */
  add(ids: readonly string[]): void {
    if (this.primaries) throw new Error('AliasGraph: add after freeze');
    if (ids.length === 0) return;
    const first = this.find(this.node(ids[0]!));
    for (const id of ids.slice(1)) {
      const r = this.find(this.node(id));
      if (r !== first) this.parent[r] = first;
    }
  }

  /** Ends the adding; computes each component's primary id. */
  freeze(): void {
    const primaries = new Map<number, string>();
    for (let n = 0; n < this.ids.length; n++) {
      const root = this.find(n);
      const best = primaries.get(root);
      const id = this.ids[n]!;
      if (best === undefined || comparePrimaryPreference(id, best) < 0) primaries.set(root, id);
    }
    this.primaries = primaries;
  }

  /** The primary id of the component holding `id` (an id never added is its own component). */
  keyOf(id: string): string {
    if (!this.primaries) throw new Error('AliasGraph: keyOf before freeze');
    const n = this.index.get(id);
    return n === undefined ? id : this.primaries.get(this.find(n))!;
  }

  /** Number of distinct ids seen. */
  get size(): number {
    return this.ids.length;
  }
}
