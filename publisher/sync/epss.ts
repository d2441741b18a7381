/**
 * FIRST's EPSS scores (EPSS_URL: the current daily `epss_scores-current.csv.gz`)
 * into `epss/epss_scores-YYYY-MM-DD.csv.gz`, named by the scores' own date
 * (`#model_version:…,score_date:…`, first line), the bytes as FIRST publishes
 * them; the day it replaces is deleted after, so the directory holds the
 * newest day only. Asked with the held copy's validators: an unchanged file
 * costs one request and no body. Decompression is bounded; the header lines
 * are required (a file without them is refused, as the builder refuses it),
 * rows that are not `CVE-…,score,percentile` with scores in 0..1 are listed
 * as skipped. A file older than the day held is not written. Counted per CVE
 * against the day held: added, modified (rescored), withdrawn (no score any more).
 */
import { readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { SourceContext, SyncSource } from './context.ts';
import { writeFileAtomic } from './files.ts';
import { getIfChanged, keepWholeFile } from './whole-file.ts';

const MAX_GZ_BYTES = 256 * 1024 * 1024;
const MAX_CSV_BYTES = 512 * 1024 * 1024;
const FILE_NAME = /^epss_scores-(\d{4}-\d{2}-\d{2})\.csv(\.gz)?$/;
const CVE = /^CVE-\d{4}-\d{4,}$/;

interface Scores {
  date: string;
  model: string | null;
  /** cve → "score,percentile" as written */
  rows: Map<string, string>;
}

export function gunzipBounded(buf: Buffer): Buffer {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return gunzipSync(buf, { maxOutputLength: MAX_CSV_BYTES });
  if (buf.length > MAX_CSV_BYTES) throw new RangeError(`more than ${MAX_CSV_BYTES} bytes`);
  return buf;
}

function probability(s: string | undefined): boolean {
  if (s === undefined || !/^[0-9.eE+-]+$/.test(s)) return false;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 && n <= 1;
}

/** Parses a day's CSV; null with the reason when it is not an EPSS file at all. */
export function readScores(csv: string, bad: (id: string, reason: string) => void): Scores | string {
  const lines = csv.split('\n');
  const meta = lines[0]?.trim() ?? '';
  const date = /score_date:(\d{4}-\d{2}-\d{2})/.exec(meta)?.[1];
  if (!meta.startsWith('#') || !date) return `its first line has no score_date (${JSON.stringify(meta.slice(0, 80))})`;
  if (!/^cve,epss,percentile\s*$/.test(lines[1] ?? '')) return `its header is not "cve,epss,percentile" (${JSON.stringify((lines[1] ?? '').slice(0, 80))})`;
  const rows = new Map<string, string>();
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const [cve, score, pct, extra] = line.split(',');
    if (!cve || !CVE.test(cve) || !probability(score) || !probability(pct) || extra !== undefined) {
      bad(`line ${i + 1}`, `not "CVE-…,score,percentile" with scores in 0..1: ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    rows.set(cve, `${score},${pct}`);
  }
  return { date, model: /model_version:([^,\s]+)/.exec(meta)?.[1] ?? null, rows };
}

export const epssSource: SyncSource = {
  name: 'epss',
  async run(ctx: SourceContext): Promise<void> {
    const url = ctx.settings.epssUrl;
    const client = ctx.client({ service: "FIRST's EPSS", urlVariable: 'EPSS_URL' });
    const dir = path.join(ctx.out, 'epss');
    const heldNames = (await readdir(dir).catch(() => [] as string[])).filter((n) => FILE_NAME.test(n)).sort();
    const heldName = heldNames.at(-1) ?? null;
    const a = await getIfChanged(ctx, client, url, heldName !== null, { maxBytes: MAX_GZ_BYTES, what: 'the scores' });
    if (!a) return;
    let csv: string;
    try {
      csv = gunzipBounded(a.body).toString('utf8');
    } catch (e) {
      throw client.invalid(url, `not a readable gzip file (${(e as Error).message})`);
    }
    const scores = readScores(csv, (id, reason) => ctx.skip(id, reason));
    if (typeof scores === 'string') throw client.invalid(url, scores);
    if (scores.rows.size === 0) throw client.invalid(url, 'no readable score');
    ctx.report.fetched = scores.rows.size;
    const heldDate = heldName ? FILE_NAME.exec(heldName)![1]! : null;
    if (heldDate && scores.date < heldDate) {
      ctx.note(`the scores offered are of ${scores.date}, older than the ${heldDate} held: kept those`);
      return;
    }
    let before: Scores | null = null;
    if (heldName) {
      try {
        const r = readScores(gunzipBounded(await readFile(path.join(dir, heldName))).toString('utf8'), () => undefined);
        before = typeof r === 'string' ? null : r;
      } catch {
        before = null; // a damaged copy is replaced
      }
    }
    for (const [cve, v] of scores.rows) {
      const old = before?.rows.get(cve);
      ctx.land(old === undefined ? 'added' : old === v ? 'unchanged' : 'modified');
    }
    for (const cve of before?.rows.keys() ?? []) if (!scores.rows.has(cve)) ctx.land('withdrawn');
    const name = `epss_scores-${scores.date}.csv.gz`;
    const gz = a.body[0] === 0x1f && a.body[1] === 0x8b ? a.body : gzipSync(a.body);
    await writeFileAtomic(path.join(dir, name), gz);
    for (const old of heldNames) if (old !== name) await unlink(path.join(dir, old)).catch(() => undefined);
    await keepWholeFile(ctx, a, scores.date);
  },
};
