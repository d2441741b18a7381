/**
 * OSV range evaluation (ossf/osv-schema docs/schema.md, "Evaluation"): a
 * version is affected when it is listed in `versions` or lies in any range.
 * Within a range the events are sorted by the range's ordering ("0" first,
 * a "*" limit is infinity) and replayed: introduced sets affected, fixed at or
 * below the version clears it, last_affected below the version clears it;
 * `limit` events bound the range from above.
 *
 * SEMVER ranges use SemVer precedence; ECOSYSTEM ranges the package
 * ecosystem's own ordering; GIT ranges (commit hashes) cannot be decided from
 * an SBOM version and are skipped. Anything that cannot be decided is
 * reported as undetermined with the reason, never as unaffected.
 */
import { majorOf, parse, schemeFor, SEMVER, type VersionScheme } from './versions/index.ts';

export type OsvEvent = { introduced: string } | { fixed: string } | { last_affected: string } | { limit: string };

export interface OsvRange {
  type: string;
  repo?: string;
  events: OsvEvent[];
}

export type Verdict =
  | {
      status: 'affected';
      /** the affected interval the version fell in, e.g. ">=2.0.0, <2.3.1", or "listed version" */
      range: string;
      /** the first fixed version above the installed one, when the data gives one */
      fixed: string | null;
    }
  | { status: 'unaffected' }
  | { status: 'undetermined'; reason: string };

type Kind = 'introduced' | 'fixed' | 'last_affected' | 'limit';

interface Ev {
  kind: Kind;
  version: string;
}

const KIND_ORDER: Record<Kind, number> = { introduced: 0, last_affected: 1, fixed: 2, limit: 3 };

function events(r: OsvRange): Ev[] {
  const out: Ev[] = [];
  for (const e of r.events ?? []) {
    for (const kind of Object.keys(KIND_ORDER) as Kind[]) {
      const v = (e as Record<string, unknown>)[kind];
      if (typeof v === 'string') out.push({ kind, version: v });
    }
  }
  return out;
}

function isZero(e: Ev): boolean {
  return e.kind === 'introduced' && e.version === '0';
}

function isInfinity(e: Ev): boolean {
  return e.kind === 'limit' && e.version.includes('*');
}

function compareEvents(scheme: VersionScheme, a: Ev, b: Ev): number {
  if (isZero(a) || isZero(b)) return isZero(a) && isZero(b) ? 0 : isZero(a) ? -1 : 1;
  if (isInfinity(a) || isInfinity(b)) return isInfinity(a) && isInfinity(b) ? 0 : isInfinity(a) ? 1 : -1;
  return Math.sign(scheme.compare(a.version, b.version)) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
}

/** v compared with an event's version; "0" is below everything, "*" above. */
function cmpTo(scheme: VersionScheme, v: string, e: Ev): number {
  if (isZero(e)) return 1;
  if (isInfinity(e)) return -1;
  return Math.sign(scheme.compare(v, e.version));
}

type RangeResult = { affected: false } | { affected: true; range: string; fixed: string | null };

/**
 * One range made ready for any number of versions: its events sorted once
 * (sorting compares every pair of event versions, the bulk of a check when it
 * was done per version), its limits picked out, or why it cannot be sorted.
 */
interface CompiledRange {
  type: string;
  /** the ordering's name (SEMVER or the ecosystem), null for a range type we do not know */
  schemeName: string | null;
  sorted: Ev[];
  limits: Ev[];
  /** set when the events cannot be ordered: the error sorting them threw */
  sortError: string | null;
}

/** An affected entry's ranges compiled for one ecosystem: what `evaluateCompiled` reads. */
export interface CompiledRanges {
  ecosystem: string;
  ranges: readonly OsvRange[];
  compiled: CompiledRange[];
}

function compileRange(ecosystem: string, r: OsvRange): CompiledRange {
  const schemeName = r.type === 'SEMVER' ? SEMVER : r.type === 'ECOSYSTEM' ? ecosystem : null;
  const out: CompiledRange = { type: r.type, schemeName, sorted: [], limits: [], sortError: null };
  const scheme = schemeName === null ? null : schemeFor(schemeName);
  if (r.type === 'GIT' || scheme === null) return out; // never evaluated: skipped, or no version parses
  try {
    out.sorted = events(r).sort((a, b) => compareEvents(scheme, a, b));
    out.limits = out.sorted.filter((e) => e.kind === 'limit');
  } catch (e) {
    out.sortError = (e as Error).message;
  }
  return out;
}

/** Compiles `ranges` for `ecosystem`: a pure function of the two, so a caller may keep the result for as long as it likes. */
export function compileRanges(ecosystem: string, ranges: readonly OsvRange[]): CompiledRanges {
  return { ecosystem, ranges, compiled: ranges.map((r) => compileRange(ecosystem, r)) };
}

function evaluateRange(scheme: VersionScheme, v: string, sorted: readonly Ev[], limits: readonly Ev[]): RangeResult {
  if (limits.length > 0 && !limits.some((l) => cmpTo(scheme, v, l) < 0)) return { affected: false };
  let affected = false;
  let from: Ev | null = null;
  for (const e of sorted) {
    if (e.kind === 'introduced' && cmpTo(scheme, v, e) >= 0) {
      affected = true;
      from = e;
    } else if (e.kind === 'fixed' && cmpTo(scheme, v, e) >= 0) {
      affected = false;
    } else if (e.kind === 'last_affected' && cmpTo(scheme, v, e) > 0) {
      affected = false;
    }
  }
  if (!affected) return { affected: false };
  // the upper end of the interval the version lies in
  const upper = sorted.find((e) => {
    if (e.kind === 'introduced') return false;
    const c = cmpTo(scheme, v, e);
    return e.kind === 'last_affected' ? c <= 0 : c < 0;
  });
  const parts: string[] = [];
  if (from && !isZero(from)) parts.push(`>=${from.version}`);
  if (upper?.kind === 'fixed' || (upper?.kind === 'limit' && !isInfinity(upper))) parts.push(`<${upper.version}`);
  if (upper?.kind === 'last_affected') parts.push(`<=${upper.version}`);
  return { affected: true, range: parts.length ? parts.join(', ') : 'all versions', fixed: upper?.kind === 'fixed' ? upper.version : null };
}

/** The first fixed version of any range above `v` (for a version matched through the `versions` list). */
function firstFixedAbove(scheme: VersionScheme | null, v: string, ranges: OsvRange[]): string | null {
  if (!scheme) return null;
  let best: string | null = null;
  for (const r of ranges) {
    if (r.type === 'GIT') continue;
    for (const e of events(r)) {
      if (e.kind !== 'fixed') continue;
      try {
        if (scheme.compare(v, e.version) < 0 && (best === null || scheme.compare(e.version, best) < 0)) best = e.version;
      } catch {
        /* not orderable: no fixed hint */
      }
    }
  }
  return best;
}

/**
 * An entry's explicit versions made ready for any number of lookups: a set
 * for the exact match, and the entries grouped by their leading number, so a
 * version is compared only with those that may equal it (versions/index.ts
 * mayHaveMajor) without a pass over the whole list.
 */
export interface CompiledVersions {
  list: readonly string[];
  exact: ReadonlySet<string>;
  byMajor: ReadonlyMap<string, readonly string[]>;
  /** the entries without a leading number (or with an epoch): any version may equal them */
  noMajor: readonly string[];
}

export function compileVersions(list: readonly string[]): CompiledVersions {
  const byMajor = new Map<string, string[]>();
  const noMajor: string[] = [];
  for (const w of list) {
    const m = typeof w === 'string' ? majorOf(w) : null;
    if (m === null) noMajor.push(w);
    else {
      const g = byMajor.get(m);
      if (g) g.push(w);
      else byMajor.set(m, [w]);
    }
  }
  return { list, exact: new Set(list), byMajor, noMajor };
}

function equalsOne(scheme: VersionScheme, v: string, candidates: readonly string[]): boolean {
  for (const w of candidates) {
    try {
      if (scheme.invalidReason(w) === null && scheme.compare(v, w) === 0) return true;
    } catch {
      /* an unorderable listed version matches only exactly */
    }
  }
  return false;
}

function listed(scheme: VersionScheme | null, v: string, versions: CompiledVersions): boolean {
  if (versions.exact.has(v)) return true;
  if (!scheme) return false;
  const major = majorOf(v);
  if (major === null) return equalsOne(scheme, v, versions.list);
  return equalsOne(scheme, v, versions.byMajor.get(major) ?? []) || equalsOne(scheme, v, versions.noMajor);
}

/**
 * Whether `version` of a package in `ecosystem` is affected by one OSV
 * `affected` entry (its ranges and explicit versions). `versions` may be a
 * function giving them (null: unreadable), called only when no range decides.
 */
export function evaluate(ecosystem: string, version: string, ranges: readonly OsvRange[], versions: readonly string[] | (() => readonly string[] | null)): Verdict {
  const list = (): CompiledVersions | null => {
    const l = typeof versions === 'function' ? versions() : versions;
    return l === null ? null : compileVersions(l);
  };
  return evaluateCompiled(compileRanges(ecosystem, ranges), version, list);
}

/**
 * `evaluate` over ranges and versions compiled once (compileRanges,
 * compileVersions), for a caller that checks many versions against the same
 * entry; `versions` is called only when no range decides.
 */
export function evaluateCompiled(entry: CompiledRanges, version: string, versions: () => CompiledVersions | null): Verdict {
  const { ecosystem, ranges } = entry;
  const undetermined: string[] = [];
  let decided = false;
  for (const r of entry.compiled) {
    if (r.type === 'GIT') continue;
    const schemeName = r.schemeName;
    if (schemeName === null) {
      undetermined.push(`unknown range type ${r.type}`);
      continue;
    }
    const p = parse(schemeName, version);
    if (!p.ok) {
      undetermined.push(`${r.type} range: ${p.reason}`);
      continue;
    }
    if (r.sortError !== null) {
      undetermined.push(`${r.type} range not orderable: ${r.sortError}`);
      continue;
    }
    let res: RangeResult;
    try {
      res = evaluateRange(p.scheme, version, r.sorted, r.limits);
    } catch (e) {
      undetermined.push(`${r.type} range not orderable: ${(e as Error).message}`);
      continue;
    }
    decided = true;
    if (res.affected) return { status: 'affected', range: res.range, fixed: res.fixed };
  }
  // The explicit versions only now: a version a range covers never needs them (a caller may pass them unparsed).
  const list = versions();
  if (list === null) return { status: 'undetermined', reason: 'the explicit versions list of this entry is unreadable' };
  const ecoScheme = parse(ecosystem, version).ok ? schemeFor(ecosystem) : null;
  if (listed(ecoScheme, version, list)) {
    return { status: 'affected', range: 'listed version', fixed: firstFixedAbove(ecoScheme, version, [...ranges]) };
  }
  if (undetermined.length > 0) return { status: 'undetermined', reason: undetermined.join('; ') };
  // an explicit versions list decides "not listed" when only GIT ranges are given
  if (!decided && list.list.length === 0) {
    return { status: 'undetermined', reason: 'only GIT (commit) ranges, which an SBOM version cannot be checked against' };
  }
  return { status: 'unaffected' };
}
