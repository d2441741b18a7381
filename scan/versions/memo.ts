/**
 * Bounded memoisation for pure version functions. A scan compares the same
 * few thousand version strings again and again (sorting each range's events,
 * then placing the installed version), and parsing dominates that work: PEP
 * 440 and Maven parses are regex- and allocation-heavy. Entries are plain
 * values derived from the string alone, so a cached answer is always the
 * answer; the map is emptied when it reaches `max` entries, so memory stays
 * bounded whatever the SBOMs.
 */
export function memoize<T>(fn: (key: string) => T, max = 50_000): (key: string) => T {
  const cache = new Map<string, T>();
  return (key: string): T => {
    const hit = cache.get(key);
    if (hit !== undefined || cache.has(key)) return hit as T;
    const value = fn(key);
    if (cache.size >= max) cache.clear();
    cache.set(key, value);
    return value;
  };
}
