/**
 * Small, strict readers for upstream JSON fields. A field of the wrong type
 * makes the whole record malformed (MalformedRecord, with the field's path); an
 * absent optional field is simply absent.
 */

/** Thrown by the normalisers; the feed reader reports it with the file and skips the record. */
export class MalformedRecord extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'MalformedRecord';
  }
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function optString(o: JsonObject, key: string, path: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new MalformedRecord(`${path}${key} is ${describe(v)}, not a string`);
  return v;
}

export function optArray(o: JsonObject, key: string, path: string): Json[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new MalformedRecord(`${path}${key} is ${describe(v)}, not an array`);
  return v;
}

export function optStringArray(o: JsonObject, key: string, path: string): string[] {
  return optArray(o, key, path).map((v, i) => {
    if (typeof v !== 'string') throw new MalformedRecord(`${path}${key}[${i}] is ${describe(v)}, not a string`);
    return v;
  });
}

export function optObject(o: JsonObject, key: string, path: string): JsonObject | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw new MalformedRecord(`${path}${key} is ${describe(v)}, not an object`);
  return v;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Record ids become TSV keys and sort keys: printable, no whitespace, bounded. */
const ID_RE = /^[\x21-\x7e]{1,200}$/;

export function requireId(v: unknown, path: string): string {
  if (v === undefined || v === null || v === '') throw new MalformedRecord(`missing "${path}"`);
  if (typeof v !== 'string') throw new MalformedRecord(`"${path}" is ${describe(v)}, not a string`);
  if (!ID_RE.test(v)) throw new MalformedRecord(`"${path}" ${JSON.stringify(v.slice(0, 80))} is not a printable id without spaces`);
  return v;
}

/**
 * An upstream timestamp as ISO 8601 UTC, or null when absent, unreadable or a
 * placeholder (Go's zero time 0001-01-01). NVD writes UTC without a zone.
 */
export function isoTime(v: unknown): string | null {
  if (typeof v !== 'string' || v === '') return null;
  const s = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v) ? `${v}Z` : v;
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return null;
  const d = new Date(ms);
  if (d.getUTCFullYear() < 1900) return null;
  return d.toISOString();
}

export function maxTime(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

export function minTime(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

export { isCveId } from '../../bundle/advisory-id.ts';
