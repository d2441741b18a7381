/**
 * CISA's Known Exploited Vulnerabilities catalog (KEV_URL, JSON) into
 * `kev/known_exploited_vulnerabilities.json`, as CISA publishes it. Asked
 * with the validators of the copy held (If-None-Match, If-Modified-Since): a
 * catalog that has not changed costs one request and no body. The catalog is
 * checked as the builder reads it (builder/feeds/kev.ts); entries that fail
 * are listed as skipped (the builder skips them too), a catalog with no good
 * entry, or older than the one held, is not written. Counted per CVE:
 * added, modified, withdrawn (left the catalog).
 */
import path from 'node:path';
import { isObject, isoTime, type JsonObject } from '../../builder/feeds/fields.ts';
import type { SourceContext, SyncSource } from './context.ts';
import { readIfExists, writeFileAtomic } from './files.ts';
import { getIfChanged, keepWholeFile } from './whole-file.ts';

const MAX_CATALOG_BYTES = 64 * 1024 * 1024;
const CVE = /^CVE-\d{4}-\d{4,}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const KEV_FILE = 'kev/known_exploited_vulnerabilities.json';

interface Catalog {
  version: string | null;
  released: string | null;
  /** cve → the entry's JSON */
  entries: Map<string, string>;
}

/** The catalog's good entries; `bad` is told about the others. */
function readCatalog(doc: unknown, bad: (id: string, reason: string) => void): Catalog | null {
  if (!isObject(doc) || !Array.isArray(doc.vulnerabilities)) return null;
  const entries = new Map<string, string>();
  doc.vulnerabilities.forEach((v, i) => {
    const where = `vulnerabilities[${i}]`;
    if (!isObject(v)) return bad(where, 'not an object');
    const e = v as JsonObject;
    const cve = typeof e.cveID === 'string' ? e.cveID.trim() : '';
    if (!CVE.test(cve)) return bad(where, `cveID ${JSON.stringify(e.cveID ?? null)} is not a CVE id`);
    const due = e.dueDate;
    if (typeof e.dateAdded !== 'string' || !DAY.test(e.dateAdded.trim()) || (due !== undefined && due !== null && (typeof due !== 'string' || !DAY.test(due.trim())))) {
      return bad(cve, 'dateAdded/dueDate are not YYYY-MM-DD dates');
    }
    entries.set(cve, JSON.stringify(e));
  });
  return { version: typeof doc.catalogVersion === 'string' ? doc.catalogVersion : null, released: isoTime(doc.dateReleased), entries };
}

export const kevSource: SyncSource = {
  name: 'kev',
  async run(ctx: SourceContext): Promise<void> {
    const url = ctx.settings.kevUrl;
    const client = ctx.client({ service: "CISA's KEV catalog", urlVariable: 'KEV_URL' });
    const file = path.join(ctx.out, KEV_FILE);
    const held = await readIfExists(file);
    const a = await getIfChanged(ctx, client, url, held !== null, { maxBytes: MAX_CATALOG_BYTES, what: 'the catalog' });
    if (!a) return;
    let doc: unknown;
    try {
      doc = JSON.parse(a.body.toString('utf8'));
    } catch (e) {
      throw client.invalid(url, `not JSON (${(e as Error).message})`);
    }
    const catalog = readCatalog(doc, (id, reason) => ctx.skip(id, reason));
    if (!catalog) throw client.invalid(url, 'not a KEV catalog (no "vulnerabilities" array)');
    if (catalog.entries.size === 0) throw client.invalid(url, 'the catalog holds no readable entry');
    ctx.report.fetched = catalog.entries.size;
    let before: Catalog | null = null;
    if (held !== null) {
      try {
        before = readCatalog(JSON.parse(held), () => undefined);
      } catch {
        before = null; // a damaged copy is replaced
      }
    }
    if (before?.released && catalog.released && catalog.released < before.released) {
      ctx.note(`the catalog offered (${catalog.version}, released ${catalog.released}) is older than the one held (${before.version}, ${before.released}): kept the one held`);
      return;
    }
    for (const [cve, entry] of catalog.entries) {
      const old = before?.entries.get(cve);
      ctx.land(old === undefined ? 'added' : old === entry ? 'unchanged' : 'modified');
    }
    for (const cve of before?.entries.keys() ?? []) if (!catalog.entries.has(cve)) ctx.land('withdrawn');
    if (held !== a.body.toString('utf8')) await writeFileAtomic(file, a.body);
    await keepWholeFile(ctx, a, catalog.version ?? catalog.released);
  },
};
