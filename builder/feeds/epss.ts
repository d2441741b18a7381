/**
 * FIRST's EPSS scores (`epss/**.csv` or `.csv.gz`, the daily file as FIRST
 * publishes it) into rows of the `epss` table, one per CVE:
 *
 *   #model_version:v2025.03.14,score_date:2026-01-30T12:55:00Z
 *   cve,epss,percentile
 *   CVE-1999-0001,0.01151,0.78086
 *
 * Files are streamed line by line (a day is ~300,000 rows). The score date
 * comes from the comment line (or, without one, from an
 * `epss_scores-YYYY-MM-DD` file name) and is each row's precedence: when
 * several days are present, a CVE keeps its newest score. Scores are numbers
 * in 0..1 (FIRST writes some in scientific notation, `2e-05`), stored as the
 * shortest decimal that reads back as the same number.
 *
 * Bounded (feeds/bounded.ts): a `.csv.gz` that inflates past its limit (100
 * times its size plus 16 MiB, at most 1 GiB) fails the build with
 * FEED_UNREADABLE naming the file; a line longer than MAX_LINE_CHARS ends
 * the file's reading (reported, the rows before it kept).
 */
import path from 'node:path';
import { EXTRA_TABLES } from '../../bundle/extra-tables.ts';
import { isOukError } from '../../lib/errors.ts';
import { boundedLines, openFeedFile } from './bounded.ts';
import { MalformedRecord } from './fields.ts';
import type { EnrichmentSink, EnrichmentTally } from './kev.ts';
import { isEpssFile, walkFiles } from './walk.ts';

export const EPSS_TABLE = EXTRA_TABLES.find((t) => t.name === 'epss')!;

const CVE = /^CVE-\d{4}-\d{4,}$/;

/** `#model_version:v2023.03.01,score_date:2024-10-25T00:00:00+0000` -> its fields. */
export function parseEpssComment(line: string): { model: string | null; date: string | null } {
  const fields = Object.fromEntries(
    line
      .replace(/^#/, '')
      .split(',')
      .map((kv) => {
        const i = kv.indexOf(':');
        return i === -1 ? [kv.trim(), ''] : [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
      }),
  );
  const day = /^(\d{4}-\d{2}-\d{2})/.exec(fields.score_date ?? '')?.[1] ?? null;
  return { model: fields.model_version || null, date: day };
}

function score(v: string | undefined): number | null {
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 && n <= 1 ? n : null;
}

/** Longest line read: a row is under 60 characters, a header or comment line a few hundred. */
export const MAX_LINE_CHARS = 64 * 1024;

export async function readEpssFeed(dir: string, sink: EnrichmentSink): Promise<EnrichmentTally> {
  const t: EnrichmentTally = { files: 0, records: 0, snapshot: null };
  for await (const file of walkFiles(dir, isEpssFile)) {
    t.files++;
    let model: string | null = null;
    let date: string | null = /epss_scores-(\d{4}-\d{2}-\d{2})/.exec(path.basename(file))?.[1] ?? null;
    let header: string[] | null = null;
    let column = { cve: -1, epss: -1, percentile: -1 };
    let n = 0;
    let lineNo = 0;
    let bad = 0;
    try {
      for await (const raw of boundedLines(await openFeedFile(file), MAX_LINE_CHARS)) {
        lineNo++;
        const line = raw.trim();
        if (line === '') continue;
        if (line.startsWith('#')) {
          const c = parseEpssComment(line);
          model = c.model ?? model;
          date = c.date ?? date;
          continue;
        }
        const cells = line.split(',');
        if (!header) {
          header = cells.map((h) => h.trim().toLowerCase());
          column = { cve: header.indexOf('cve'), epss: header.indexOf('epss'), percentile: header.indexOf('percentile') };
          if (column.cve === -1 || column.epss === -1) throw new Error(`line ${lineNo}: the header "${line.slice(0, 80)}" has no cve and epss columns`);
          if (!date) throw new Error('no score date: neither a "#…score_date:" line nor an epss_scores-YYYY-MM-DD file name');
          continue;
        }
        const cve = cells[column.cve]?.trim() ?? '';
        const s = score(cells[column.epss]);
        const p = column.percentile === -1 ? null : score(cells[column.percentile]);
        if (!CVE.test(cve) || s === null || p === null) {
          // a bad row is reported (the first few) and left out; the rest of the file stands
          if (++bad <= 3) sink.skip(file, `"${line.slice(0, 80)}" is not "CVE-…,score,percentile" with scores in 0..1`, `line ${lineNo}`);
          continue;
        }
        await sink.row(date!, [cve, s, p, date, model]);
        n++;
      }
    } catch (e) {
      // over a decompression bound: the build stops, naming the file (the sink's own errors pass too)
      if (isOukError(e)) throw e;
      const where = e instanceof MalformedRecord ? `line ${lineNo + 1}: ` : '';
      sink.skip(file, `unreadable: ${where}${(e as Error).message}${n ? `; the ${n} row(s) before the fault were kept` : ''}`);
    }
    t.records += n;
    if (n > 0 && date && (!t.snapshot || `${date}T00:00:00.000Z` > t.snapshot)) t.snapshot = `${date}T00:00:00.000Z`;
  }
  return t;
}
