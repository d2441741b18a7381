/**
 * A per-process cache of affected entries' ranges and explicit versions,
 * parsed from the DB row's JSON and compiled (ranges.ts compileRanges: events
 * sorted once for the row's ecosystem; compileVersions: a set and the entries
 * grouped by leading number). A site scans the same packages again and again
 * (the images it runs), and parsing and sorting every candidate row's JSON
 * was a third of a scan's JavaScript and much of its garbage.
 *
 * Keyed by the row's content (ecosystem and `ranges` text; `versions` text),
 * not by its identity in one DB: a cached entry is a pure function of its key,
 * so it is right whatever DB is active, and a new DB (a full import, a delta,
 * a rollback) needs no invalidation — its changed rows are other keys, and
 * the old ones age out. Bounded by two generations of `maxChars` characters
 * of keys each: when the current one fills, it becomes the old one (its
 * entries still answer, and move back on use) and the one before is dropped.
 */
import { BoundedMap } from './bounded-map.ts';
import { compileRanges, compileVersions, type CompiledRanges, type CompiledVersions, type OsvRange } from './ranges.ts';

function parseJsonArray<T>(text: string): T[] | null {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as T[]) : null;
  } catch {
    return null;
  }
}

/** `make`'s answer for a key, made once and kept in a BoundedMap of `maxChars` characters of keys a generation. */
function memo<T>(maxChars: number, make: (key: string) => T): (key: string) => T {
  const map = new BoundedMap<T>(maxChars, (key) => key.length);
  return (key) => {
    const hit = map.get(key);
    if (hit !== undefined) return hit;
    const value = make(key);
    map.set(key, value);
    return value;
  };
}

export interface RangeCache {
  /** The compiled ranges of a row, or null when its `ranges` is not a JSON array. */
  ranges(ecosystem: string, rangesText: string): CompiledRanges | null;
  /** The compiled explicit versions of a row, or null when its `versions` is not a JSON array. */
  versions(versionsText: string): CompiledVersions | null;
}

/** `maxChars`: each generation's bound, for ranges and for versions apart (a 1,000-component scan at full size touches about 0.4 million characters of `ranges`). */
export function createRangeCache(maxChars = 1_000_000): RangeCache {
  // key: the ecosystem's length, ":", the ecosystem, the ranges text (unambiguous whatever either holds)
  const ranges = memo(maxChars, (key): CompiledRanges | null => {
    const colon = key.indexOf(':');
    const end = colon + 1 + Number(key.slice(0, colon));
    const list = parseJsonArray<OsvRange>(key.slice(end));
    return list === null ? null : compileRanges(key.slice(colon + 1, end), list);
  });
  const versions = memo(maxChars, (text): CompiledVersions | null => {
    const list = parseJsonArray<string>(text);
    return list === null ? null : compileVersions(list);
  });
  return {
    ranges: (ecosystem, rangesText) => ranges(`${ecosystem.length}:${ecosystem}${rangesText}`),
    versions,
  };
}

/** The process's cache, shared by every scan (the API's, the worker's re-scans, the CLI's). */
export const rangeCache: RangeCache = createRangeCache();
