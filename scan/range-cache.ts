/**
 * A per-process cache of affected entries' ranges, parsed from the DB row's
 * JSON and compiled for the row's ecosystem (ranges.ts compileRanges: events
 * sorted once). A site scans the same packages again and again (the images it
 * runs), and parsing plus sorting every candidate row's ranges was a third of
 * a scan's JavaScript.
 *
 * Keyed by the row's content (ecosystem and `ranges` text), not by its
 * identity in one DB: a cached entry is a pure function of its key, so it is
 * right whatever DB is active, and a new DB (a full import, a delta, a
 * rollback) needs no invalidation — its changed rows are other keys, and the
 * old ones age out. Bounded by two generations of `max` entries: when the
 * current one fills, it becomes the old one (its entries still answer, and
 * are moved back on use) and the one before is dropped.
 */
import { compileRanges, type CompiledRanges, type OsvRange } from './ranges.ts';

function parseRanges(text: string): OsvRange[] | null {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as OsvRange[]) : null;
  } catch {
    return null;
  }
}

export interface RangeCache {
  /** The compiled ranges of a row, or null when its `ranges` is not a JSON array. */
  get(ecosystem: string, rangesText: string): CompiledRanges | null;
}

export function createRangeCache(max = 20_000): RangeCache {
  let current = new Map<string, CompiledRanges | null>();
  let old = new Map<string, CompiledRanges | null>();
  const put = (key: string, value: CompiledRanges | null): void => {
    if (current.size >= max) {
      old = current;
      current = new Map();
    }
    current.set(key, value);
  };
  return {
    get(ecosystem, rangesText) {
      const key = `${ecosystem}\u0000${rangesText}`;
      const hit = current.get(key);
      if (hit !== undefined) return hit;
      const aged = old.get(key);
      if (aged !== undefined) {
        old.delete(key);
        put(key, aged);
        return aged;
      }
      const ranges = parseRanges(rangesText);
      const value = ranges === null ? null : compileRanges(ecosystem, ranges);
      put(key, value);
      return value;
    },
  };
}

/** The process's cache, shared by every scan (the API's, the worker's re-scans, the CLI's). */
export const rangeCache: RangeCache = createRangeCache();
