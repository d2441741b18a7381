/**
 * ENISA's EU Vulnerability Database, as `stella feeds sync` writes it under
 * `euvd/` (publisher/sync/euvd.ts):
 *
 *   aliases.json    {"records": {"EUVD-2025-4893": {"aliases": ["CVE-…", "GHSA-…"], "updated": …}, …}}
 *   exploited.json  {"items": [{"id", "aliases", "exploitedSince": "YYYY-MM-DD", "vendors", "products", "updated"}, …]}
 *
 * Two things come of it:
 *   - EUVD ids become aliases of their CVEs: every record the builder reads
 *     whose id or alias is a CVE gets the EUVD ids naming that CVE
 *     (`withEuvdAliases`). Only an EUVD id that names exactly one CVE is an
 *     alias: one naming several would join vulnerabilities NVD keeps apart.
 *   - ENISA's exploited list becomes the `euvd_kev` table beside CISA's `kev`
 *     (bundle/extra-tables.ts), one row per CVE an exploited EUVD id names;
 *     when two name one CVE, the one updated last is kept.
 * A file that is not JSON of this shape is reported and skipped.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EXTRA_TABLES } from '../../bundle/extra-tables.ts';
import type { SourceRecord } from '../model.ts';
import { isCveId, isObject, isoTime } from './fields.ts';
import type { EnrichmentSink, EnrichmentTally } from './kev.ts';

export const EUVD_KEV_TABLE = EXTRA_TABLES.find((t) => t.name === 'euvd_kev')!;

const EUVD_ID = /^EUVD-\d{4}-\d{1,9}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** Upper bound of each file (the whole EUVD's aliases are some tens of MB). */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

type Skip = (file: string, reason: string, where?: string) => void;

async function readJson(file: string, skip: Skip): Promise<unknown> {
  const s = await stat(file).catch(() => null);
  if (!s) return undefined;
  if (s.size > MAX_FILE_BYTES) {
    skip(file, `${s.size} bytes, more than ${MAX_FILE_BYTES}`);
    return undefined;
  }
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    skip(file, `not valid JSON: ${(e as Error).message}`);
    return undefined;
  }
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** CVE id → the EUVD ids that are aliases of it (those naming that CVE and no other), from both files. */
export async function readEuvdAliases(feedsDir: string, skip: Skip): Promise<Map<string, string[]>> {
  const dir = path.join(feedsDir, 'euvd');
  const named = new Map<string, Set<string>>();
  const add = (id: unknown, aliases: unknown): void => {
    if (typeof id !== 'string' || !EUVD_ID.test(id)) return;
    const set = named.get(id) ?? new Set<string>();
    for (const a of stringList(aliases)) if (isCveId(a)) set.add(a);
    named.set(id, set);
  };
  const aliasesFile = path.join(dir, 'aliases.json');
  const aliases = await readJson(aliasesFile, skip);
  if (aliases !== undefined) {
    if (isObject(aliases) && isObject(aliases.records)) for (const [id, r] of Object.entries(aliases.records)) add(id, isObject(r) ? r.aliases : undefined);
    else skip(aliasesFile, 'not an EUVD aliases file (no "records" object)');
  }
  const exploitedFile = path.join(dir, 'exploited.json');
  const exploited = await readJson(exploitedFile, skip);
  if (isObject(exploited) && Array.isArray(exploited.items)) for (const it of exploited.items) if (isObject(it)) add(it.id, it.aliases);
  const byCve = new Map<string, string[]>();
  for (const [id, cves] of named) {
    if (cves.size !== 1) continue;
    const cve = [...cves][0]!;
    byCve.set(cve, [...(byCve.get(cve) ?? []), id].sort());
  }
  return byCve;
}

/** The record with the EUVD ids of its CVEs among its aliases (the same record when there are none). */
export function withEuvdAliases(rec: SourceRecord, byCve: ReadonlyMap<string, readonly string[]>): SourceRecord {
  if (byCve.size === 0) return rec;
  let extra: string[] | null = null;
  for (const id of [rec.source.id, ...rec.aliases]) {
    for (const euvd of byCve.get(id) ?? []) {
      if (euvd !== rec.source.id && !rec.aliases.includes(euvd) && !extra?.includes(euvd)) (extra ??= []).push(euvd);
    }
  }
  return extra ? { ...rec, aliases: [...rec.aliases, ...extra] } : rec;
}

/** ENISA's exploited list (`euvd/exploited.json`) into rows of the euvd_kev table. */
export async function readEuvdExploited(dir: string, sink: EnrichmentSink): Promise<EnrichmentTally> {
  const t: EnrichmentTally = { files: 0, records: 0, snapshot: null };
  const file = path.join(dir, 'exploited.json');
  if ((await stat(file).catch(() => null)) === null) return t;
  t.files++;
  const doc = await readJson(file, sink.skip);
  if (doc === undefined) return t;
  if (!isObject(doc) || !Array.isArray(doc.items)) {
    sink.skip(file, 'not an EUVD exploited list (no "items" array)');
    return t;
  }
  for (const [i, it] of doc.items.entries()) {
    const where = `items[${i}]`;
    if (!isObject(it) || typeof it.id !== 'string' || !EUVD_ID.test(it.id)) {
      sink.skip(file, 'not an item with an EUVD id', where);
      continue;
    }
    const since = typeof it.exploitedSince === 'string' && DAY.test(it.exploitedSince) ? it.exploitedSince : null;
    if (!since) {
      sink.skip(file, `${it.id}: exploitedSince is not a YYYY-MM-DD date`, where);
      continue;
    }
    const updated = isoTime(it.updated);
    if (updated && (!t.snapshot || updated > t.snapshot)) t.snapshot = updated;
    const vendors = stringList(it.vendors).join(', ') || null;
    const products = stringList(it.products).join(', ') || null;
    for (const cve of new Set(stringList(it.aliases).filter((a) => isCveId(a)))) {
      await sink.row(updated ?? '', [cve, it.id, since, vendors, products, updated]);
      t.records++;
    }
  }
  return t;
}
