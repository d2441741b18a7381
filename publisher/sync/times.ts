/**
 * Upstream timestamps compared exactly. OSV writes RFC 3339 with as many
 * fraction digits as it has (`…51.46441Z`, `…37.118219322Z`, none at all):
 * strings of different widths do not compare, and Date keeps milliseconds
 * only. `timeKey` gives a fixed-width UTC form with nanoseconds that compares
 * as a string.
 */

/** `2026-04-30T15:32:51.46441Z` → `2026-04-30T15:32:51.464410000Z`; null when unreadable. */
export function timeKey(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/i.exec(v.trim());
  if (!m) return null;
  const frac = (m[3] ?? '').padEnd(9, '0');
  const zone = m[4] ?? 'Z';
  if (zone === 'Z' || zone === 'z' || /^[+-]00:?00$/.test(zone)) {
    if (Number.isNaN(Date.parse(`${m[1]}T${m[2]}Z`))) return null;
    return `${m[1]}T${m[2]}.${frac}Z`;
  }
  // Another zone: through Date (sub-millisecond digits kept as they were).
  const ms = Date.parse(`${m[1]}T${m[2]}${zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`);
  if (Number.isNaN(ms)) return null;
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/** A time key as ISO 8601 with milliseconds (for reports). */
export function keyToIso(key: string): string {
  return `${key.slice(0, 23)}Z`;
}
