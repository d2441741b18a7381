/**
 * What one source's sync did, for `--json` and the summary lines: requests
 * made, records fetched, how each landed (added, modified, unchanged,
 * withdrawn, removed), the records skipped and why, the watermark it ends at.
 */

export const SOURCE_NAMES = ['nvd', 'osv', 'ghsa', 'kev', 'epss', 'csaf', 'euvd'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

/** Skipped records listed by id at most (the count is always exact). */
export const MAX_LISTED_SKIPS = 1000;

export interface SkippedRecord {
  id: string;
  reason: string;
}

export interface SourceReport {
  source: SourceName;
  /** ok: synced to its new watermark; failed: stopped (`error`), resumes next time; */
  status: 'ok' | 'failed';
  /** HTTP requests made (every retry counted; GHSA: git fetches). */
  requests: number;
  /** Records (or files, for whole-file sources) received from the upstream. */
  fetched: number;
  /** Records written that the directory did not hold. */
  added: number;
  /** Records written over an older copy. */
  modified: number;
  /** Records received again, identical to the copy held: not written. */
  unchanged: number;
  /** Records that became withdrawn (OSV/GHSA `withdrawn`, NVD Rejected) or left a catalog (KEV, EPSS, ENISA). */
  withdrawn: number;
  /** Record files deleted because the upstream deleted them (GHSA). */
  removed: number;
  skipped: number;
  skippedRecords: SkippedRecord[];
  /** Where the next run starts: a time, a commit, a catalog version; per ecosystem for OSV. */
  watermark: string | Record<string, string | null> | null;
  notes: string[];
  seconds: number;
  error?: { code: string; message: string };
}

export function emptyReport(source: SourceName): SourceReport {
  return { source, status: 'ok', requests: 0, fetched: 0, added: 0, modified: 0, unchanged: 0, withdrawn: 0, removed: 0, skipped: 0, skippedRecords: [], watermark: null, notes: [], seconds: 0 };
}

export function addSkip(r: SourceReport, id: string, reason: string): void {
  r.skipped++;
  if (r.skippedRecords.length < MAX_LISTED_SKIPS) r.skippedRecords.push({ id, reason });
}

export type Outcome = 'added' | 'modified' | 'unchanged' | 'withdrawn';

export function count(r: SourceReport, o: Outcome): void {
  r[o]++;
}

/** One line for a terminal. */
export function summaryLine(r: SourceReport): string {
  const wm = r.watermark === null ? '-' : typeof r.watermark === 'string' ? r.watermark : Object.entries(r.watermark).map(([k, v]) => `${k}=${v ?? '-'}`).join(' ');
  const head = `${r.source.padEnd(4)} ${r.status === 'ok' ? 'ok    ' : 'FAILED'} ${r.requests} requests, ${r.fetched} fetched: ${r.added} added, ${r.modified} modified, ${r.withdrawn} withdrawn, ${r.removed} removed, ${r.unchanged} unchanged, ${r.skipped} skipped (${r.seconds.toFixed(1)} s); watermark ${wm}`;
  return r.error ? `${head}\n     error[${r.error.code}]: ${r.error.message}` : head;
}
