/**
 * An entry's attribute values as strings, whatever case the directory spells
 * the attribute in (`memberOf`, `memberof`) and whether it sent one value or
 * several.
 */
import type { Entry } from 'ldapts';

export function values(entry: Entry, name: string): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (key.toLowerCase() !== want || key === 'dn') continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push(typeof v === 'string' ? v : v.toString('utf8'));
  }
  return out;
}

export function first(entry: Entry, name: string): string | undefined {
  return values(entry, name)[0];
}
