/**
 * A per-process cache of what scans read from the active DB: each package's
 * candidate rows (with their ranges compiled on first use), each advisory's
 * headline, each CVE's KEV and EPSS entries, which optional tables the DB
 * holds, and the version check's verdicts for each installed version of a
 * package already checked. A site scans the same images again and again; with the cache a
 * scan asks PostgreSQL only for what no scan of this DB asked before.
 *
 * One cache a pool (a database), keyed by the active DB's identity as the
 * scan read it in its own snapshot
 * (import id, schema, digest and activation time, infra/db.ts readActive):
 * every change of what readers see — an activation, a delta applied in
 * place, a rollback — moves that pointer in the same transaction, so the
 * key changes with the rows. A scan whose snapshot shows another DB than the
 * cache's starts a new cache and the old one is dropped (its in-flight scans
 * keep their reference and finish on it); an entry is therefore only ever
 * read by a scan of the DB it was read from. Negative answers are kept too
 * (a package with no rows, an advisory with no headline): most components
 * of an image match nothing.
 *
 * Bounded by weight (bounded-map.ts: about the characters of what is
 * kept; two generations of the sizes below): about 40 MiB of heap once full
 * (docs/performance.md, "a cache of the active DB").
 */
import type { ActiveDb } from '../infra/db.ts';
import { BoundedMap } from './bounded-map.ts';
import type { EpssInfo, KevInfo } from './findings.ts';
import type { AffectedRow, Headline } from './match.ts';
import type { OptionalTables } from './optional-tables.ts';
import type { CompiledRanges, CompiledVersions } from './ranges.ts';

/** An affected row as the version check reads it; its ranges and versions compiled on first use (range-cache.ts). */
export interface Candidate extends AffectedRow {
  compiled?: CompiledRanges | null;
  compiledVersions?: CompiledVersions | null;
}

/** A CVE's KEV (CISA), ENISA and EPSS entries; null where the DB has none. */
export interface CveEntries {
  kev: KevInfo | null;
  enisa: KevInfo | null;
  epss: EpssInfo | null;
}

/** What the version check decided for one advisory: affected (in `range`, fixed in `fixed`) or undecided (`undecided` says why). */
export interface AdvisoryVerdict {
  advisoryId: string;
  range?: string;
  fixed?: string | null;
  undecided?: string;
}

export interface ActiveDbCache {
  readonly key: string;
  /** which optional tables the DB holds, once asked */
  tables: OptionalTables | null;
  /** candidate rows by `<ecosystem>\0<package>`; an empty list: the package has none */
  readonly packages: BoundedMap<Candidate[]>;
  /** headline by advisory id; null: none (withdrawn, or not in the DB) */
  readonly headlines: BoundedMap<Headline | null>;
  /** KEV / ENISA / EPSS entries by CVE id */
  readonly cves: BoundedMap<CveEntries>;
  /** the version check's verdicts for an installed version of a package (its lookup keys and version: scan.ts verdictKey), unaffected ones left out */
  readonly verdicts: BoundedMap<AdvisoryVerdict[]>;
}

/** Characters a generation, per map: a 1,000-component scan at full size reads about 0.5 million characters of candidate rows. */
const PACKAGE_CHARS = 8_000_000;
const HEADLINE_CHARS = 4_000_000;
const CVE_CHARS = 1_000_000;
const VERDICT_CHARS = 2_000_000;

const len = (s: string | null | undefined): number => (s ? s.length : 0);

export function createActiveDbCache(key: string): ActiveDbCache {
  return {
    key,
    tables: null,
    packages: new BoundedMap<Candidate[]>(PACKAGE_CHARS, (k, rows) => {
      let n = k.length;
      for (const r of rows) n += 48 + r.advisory_id.length + r.ranges.length + r.versions.length;
      return n;
    }),
    headlines: new BoundedMap<Headline | null>(HEADLINE_CHARS, (k, h) => k.length + (h ? len(h.summary) + len(h.cvss_vector) + h.aliases.reduce((n, a) => n + a.length + 16, 0) : 0)),
    cves: new BoundedMap<CveEntries>(CVE_CHARS, (k, e) => k.length + (e.kev ? 256 : 0) + (e.enisa ? 256 : 0) + (e.epss ? 64 : 0)),
    verdicts: new BoundedMap<AdvisoryVerdict[]>(VERDICT_CHARS, (k, vs) => vs.reduce((n, v) => n + 48 + v.advisoryId.length + len(v.range) + len(v.fixed) + len(v.undecided), k.length)),
  };
}

/** The identity of what a snapshot's readers see: changes with every activation, delta and rollback. */
export function activeDbKey(active: ActiveDb): string {
  return [active.importId, active.schema, active.digest ?? '', new Date(active.activatedAt).getTime()].join('\u0000');
}

/** Per pool (one database): a process with two pools (the tests) never answers one database from the other's rows. */
const current = new WeakMap<object, ActiveDbCache>();

/** The process's cache for the DB `active` of `pool` (read in the caller's snapshot): the current one, or a new one that replaces it. */
export function activeDbCache(pool: object, active: ActiveDb): ActiveDbCache {
  const key = activeDbKey(active);
  const cached = current.get(pool);
  if (cached?.key === key) return cached;
  const fresh = createActiveDbCache(key);
  current.set(pool, fresh);
  return fresh;
}
