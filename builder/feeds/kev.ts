/**
 * CISA's Known Exploited Vulnerabilities catalog (`kev/**.json`, the catalog
 * as CISA publishes it: `{catalogVersion, dateReleased, vulnerabilities:
 * [{cveID, vendorProject, product, vulnerabilityName, dateAdded, dueDate,
 * knownRansomwareCampaignUse, requiredAction, …}]}`) into rows of the `kev`
 * table, one per CVE. The catalog's `dateReleased` is each row's precedence:
 * when two catalogs name a CVE, the newer one's entry is kept. The catalog's
 * JSON schema (a file with `$schema`) and anything that is not a catalog are
 * reported and skipped, and so is a file over MAX_KEV_BYTES (CISA's catalog
 * is about 1.5 MB) before it is read.
 */
import { EXTRA_TABLES } from '../../bundle/extra-tables.ts';
import type { Cell } from '../../bundle/tsv.ts';
import { readBoundedText } from './bounded.ts';
import { isObject, isoTime, MalformedRecord, type JsonObject } from './fields.ts';
import { walkJson } from './walk.ts';

export const KEV_TABLE = EXTRA_TABLES.find((t) => t.name === 'kev')!;

/** Largest KEV catalog file read. */
export const MAX_KEV_BYTES = 64 * 1024 * 1024;

const CVE = /^CVE-\d{4}-\d{4,}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface EnrichmentSink {
  row(precedence: string, cells: Cell[]): Promise<void>;
  skip(file: string, reason: string, where?: string): void;
}

export interface EnrichmentTally {
  files: number;
  records: number;
  /** Newest catalog release / score date seen, ISO 8601. */
  snapshot: string | null;
}

function str(o: JsonObject, k: string): string | null {
  const v = o[k];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

export async function readKevFeed(dir: string, sink: EnrichmentSink): Promise<EnrichmentTally> {
  const t: EnrichmentTally = { files: 0, records: 0, snapshot: null };
  for await (const file of walkJson(dir)) {
    t.files++;
    let doc: unknown;
    try {
      doc = JSON.parse(await readBoundedText(file, MAX_KEV_BYTES, 'a KEV catalog'));
    } catch (e) {
      sink.skip(file, e instanceof SyntaxError ? `not valid JSON: ${e.message}` : e instanceof MalformedRecord ? e.message : `unreadable: ${(e as Error).message}`);
      continue;
    }
    if (!isObject(doc) || !Array.isArray(doc.vulnerabilities)) {
      sink.skip(file, isObject(doc) && typeof doc.$schema === 'string' ? 'a JSON schema, not a KEV catalog' : 'not a KEV catalog (no "vulnerabilities" array)');
      continue;
    }
    const released = isoTime(doc.dateReleased);
    const version = str(doc, 'catalogVersion');
    if (released && (!t.snapshot || released > t.snapshot)) t.snapshot = released;
    const precedence = released ?? version ?? '';
    let n = 0;
    for (const [i, v] of doc.vulnerabilities.entries()) {
      const where = `vulnerabilities[${i}]`;
      if (!isObject(v)) {
        sink.skip(file, 'not an object', where);
        continue;
      }
      const cve = str(v, 'cveID');
      const added = str(v, 'dateAdded');
      const due = str(v, 'dueDate');
      if (!cve || !CVE.test(cve)) {
        sink.skip(file, `cveID ${JSON.stringify(v.cveID ?? null)} is not a CVE id`, where);
        continue;
      }
      if (!added || !DAY.test(added) || (due !== null && !DAY.test(due))) {
        sink.skip(file, `${cve}: dateAdded/dueDate are not YYYY-MM-DD dates`, where);
        continue;
      }
      await sink.row(precedence, [cve, str(v, 'vendorProject'), str(v, 'product'), str(v, 'vulnerabilityName'), added, due, str(v, 'knownRansomwareCampaignUse'), str(v, 'requiredAction'), version]);
      n++;
    }
    t.records += n;
  }
  return t;
}
