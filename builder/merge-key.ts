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
 * The graph holds ids only, compactly: each distinct id once, as UTF-8 bytes
 * numbered by id-table.ts (never the caller's strings, which may pin whole
 * feed chunks in memory), and the union-find as typed arrays of those numbers,
 * about 50 bytes an id (some 55 MB for the 1.1 million ids of the full-size
 * bench corpus). Memory grows with the number of distinct ids, never with the
 * records' size. Feed every record with `add`, then `freeze` once and ask
 * `keyOf` per record.
 */
import { comparePrimaryPreference } from '../bundle/advisory-id.ts';
import { grow, IdTable } from './id-table.ts';
import type { SourceRecord } from './model.ts';

/** The ids a record joins into one vulnerability: its own, its aliases, a single upstream id. */
export function linkedIds(rec: Pick<SourceRecord, 'source' | 'aliases' | 'upstream'>): string[] {
  const ids = [rec.source.id, ...rec.aliases];
  if (rec.upstream.length === 1) ids.push(rec.upstream[0]!);
  return ids;
}

export class AliasGraph {
  private readonly ids = new IdTable();
  /** parent[n]: id n's parent in the union-find (itself at a root). */
  private parent = new Int32Array(1024);
  /** After freeze: primary[root] is the number of the primary id of the root's component. */
  private primary: Int32Array | null = null;

  private node(id: string): number {
    const before = this.ids.size;
    const n = this.ids.intern(id);
    if (this.ids.size === before) return n;
    if (n >= this.parent.length) this.parent = grow(this.parent, this.parent.length * 2);
    this.parent[n] = n;
    return n;
  }

  private find(n: number): number {
    const parent = this.parent;
    let root = n;
    while (parent[root] !== root) root = parent[root]!;
    // path compression
    while (parent[n] !== root) {
      const next = parent[n]!;
      parent[n] = root;
      n = next;
    }
    return root;
  }

  /** Joins every id in `ids` into one component. */
  add(ids: readonly string[]): void {
    if (this.primary) throw new Error('AliasGraph: add after freeze');
    if (ids.length === 0) return;
    const first = this.find(this.node(ids[0]!));
    for (let i = 1; i < ids.length; i++) {
      const r = this.find(this.node(ids[i]!));
      if (r !== first) this.parent[r] = first;
    }
  }

  /** Ends the adding; computes each component's primary id. */
  freeze(): void {
    const count = this.ids.size;
    const primary = new Int32Array(count).fill(-1);
    for (let n = 0; n < count; n++) {
      const root = this.find(n);
      const best = primary[root]!;
      if (best === -1 || comparePrimaryPreference(this.ids.get(n), this.ids.get(best)) < 0) primary[root] = n;
    }
    this.primary = primary;
  }

  /** The primary id of the component holding `id` (an id never added is its own component). */
  keyOf(id: string): string {
    if (!this.primary) throw new Error('AliasGraph: keyOf before freeze');
    const n = this.ids.find(id);
    return n === -1 ? id : this.ids.get(this.primary[this.find(n)]!);
  }

  /** Number of distinct ids seen. */
  get size(): number {
    return this.ids.size;
  }
}
