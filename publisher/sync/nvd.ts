/**
 * NVD CVE API 2.0 into `nvd/<year>/<N>xxx/CVE-….json`, one `{"cve": {…}}`
 * record a file (the cvelistV5 fan-out: at most 1,000 files a directory).
 *
 * Why one file per CVE and not the API's pages: an incremental run gets a CVE
 * again whenever NVD changes it, in whatever page its window puts it. Written
 * per CVE, the new record replaces the old one in place; kept as pages, the
 * directory would hold every version of it in different pages and the builder
 * would have to pick one. Per-CVE files also make a run's writes small and
 * idempotent: a CVE fetched twice (a resumed run, the windows' overlap) is
 * "unchanged" and not written again.
 *
 * First run: every CVE, paged by `startIndex` (`resultsPerPage` ≤ 2,000). The
 * watermark is the server's `timestamp` of the first page (minus an hour:
 * records NVD commits while it answers), so what changes during the walk is
 * fetched next time. Later runs: `lastModStartDate`/`lastModEndDate` windows of
 * at most 120 days from the watermark up to now. After every page the cursor
 * (walk, window, startIndex) is saved: a killed run continues at the next page.
 *
 * Requests are paced to NVD's limit (5 a rolling 30 s, 50 with NVD_API_KEY in
 * the `apiKey` header); 403, 429 and 503 are retried with backoff (http.ts),
 * and NVD's `message` header is shown. A 404 saying "resultsPerPage parameter
 * cannot exceed N" lowers the page size to N.
 */
import { normaliseNvd } from '../../builder/feeds/nvd.ts';
import { isObject, MalformedRecord } from '../../builder/feeds/fields.ts';
import { OukError } from '../../lib/errors.ts';
import type { SourceContext, SyncSource } from './context.ts';
import { RecordFiles } from './files.ts';
import { RollingWindow } from './pacing.ts';

const DAY_MS = 86_400_000;
/** NVD: "The maximum allowable range when using any date range parameters is 120 consecutive days." */
export const MAX_WINDOW_MS = 120 * DAY_MS;
/** Records NVD commits while it answers carry a lastModified before its timestamp: the next run starts this much earlier. */
const OVERLAP_MS = 60 * 60_000;
const MAX_PAGE_BYTES = 256 * 1024 * 1024;
export const NVD_MAX_PAGE = 2000;

type Cursor =
  | { mode: 'full'; startIndex: number; since: string | null }
  | { mode: 'window'; start: string; end: string; startIndex: number; since: string | null };

/** `2024-03-01T00:00:00.000+00:00`, `+` escaped, the colons as NVD's examples write them. */
export function nvdDate(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 23)}%2B00:00`;
}

/** Where a CVE's record lives: CVE-2024-12345 → 2024/12xxx/CVE-2024-12345.json. */
export function nvdPath(id: string): string {
  const m = /^CVE-(\d{4})-(\d+)$/.exec(id)!;
  return `${m[1]}/${Math.floor(Number(m[2]) / 1000)}xxx/${id}.json`;
}

/** NVD's `timestamp` (UTC without a zone) as ISO 8601, or null. */
function serverTime(v: unknown): string | null {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/.test(v)) return null;
  const ms = Date.parse(/(Z|[+-]\d{2}:\d{2})$/.test(v) ? v : `${v}Z`);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

interface Page {
  total: number;
  timestamp: string | null;
  items: unknown[];
}

function minIso(a: string, b: string | null): string {
  return b !== null && b < a ? b : a;
}

export const nvdSource: SyncSource = {
  name: 'nvd',
  async run(ctx: SourceContext): Promise<void> {
    const { apiKey, url: base } = ctx.settings.nvd;
    const client = ctx.client({
      service: 'NVD',
      urlVariable: 'NVD_API_URL',
      pacing: new RollingWindow(apiKey ? 50 : 5, ctx.tuning.nvdWindowMs ?? 30_000, ctx.clock),
      ...(apiKey ? { headers: { apiKey } } : {}),
    });
    const files = new RecordFiles(`${ctx.out}/nvd`, (t) => t.includes('"vulnStatus":"Rejected"'));
    let pageSize = Math.min(NVD_MAX_PAGE, ctx.tuning.nvdPageSize ?? NVD_MAX_PAGE);

    const fetchPage = async (c: Cursor): Promise<Page> => {
      for (;;) {
        let url = `${base}?resultsPerPage=${pageSize}&startIndex=${c.startIndex}`;
        if (c.mode === 'window') url += `&lastModStartDate=${nvdDate(c.start)}&lastModEndDate=${nvdDate(c.end)}`;
        let body: unknown;
        try {
          body = (await client.getJson(url, { maxBytes: MAX_PAGE_BYTES, what: `the page at startIndex ${c.startIndex}` })).body;
        } catch (e) {
          const lower = e instanceof OukError && e.code === 'UPSTREAM_REJECTED' ? /resultsPerPage parameter cannot exceed (\d+)/.exec(e.message) : null;
          if (lower && Number(lower[1]) >= 1 && Number(lower[1]) < pageSize) {
            pageSize = Number(lower[1]);
            ctx.note(`NVD allows ${pageSize} results a page: asking for that many`);
            continue;
          }
          throw e;
        }
        if (!isObject(body)) throw client.invalid(url, 'the answer is not a JSON object');
        if (typeof body.message === 'string') throw client.invalid(url, `an error instead of a page: ${body.message}`);
        const { totalResults, startIndex, vulnerabilities } = body;
        if (body.format !== 'NVD_CVE' || typeof totalResults !== 'number' || !Number.isInteger(totalResults) || totalResults < 0 || !Array.isArray(vulnerabilities)) {
          throw client.invalid(url, 'not an NVD_CVE page (format, totalResults, vulnerabilities)');
        }
        if (startIndex !== c.startIndex) throw client.invalid(url, `the page starts at ${JSON.stringify(startIndex)}, not at the startIndex asked for`);
        if (vulnerabilities.length > pageSize) throw client.invalid(url, `${vulnerabilities.length} results on a page of ${pageSize}`);
        return { total: totalResults, timestamp: serverTime(body.timestamp), items: vulnerabilities };
      }
    };

    const store = async (items: unknown[], at: number): Promise<void> => {
      for (const [i, item] of items.entries()) {
        ctx.report.fetched++;
        const cve = isObject(item) ? item.cve : undefined;
        const label = isObject(cve) && typeof cve.id === 'string' ? cve.id.slice(0, 40) : `item ${at + i}`;
        try {
          if (!isObject(cve)) throw new MalformedRecord('the item has no "cve" object');
          normaliseNvd(cve);
        } catch (e) {
          if (!(e instanceof MalformedRecord)) throw e;
          ctx.skip(label, e.message);
          continue;
        }
        ctx.land(await files.put(nvdPath(cve.id as string), `${JSON.stringify({ cve })}\n`));
      }
    };

    /** Pages through one walk (everything, or one window) from the cursor; returns the first page's server time. */
    const walk = async (c: Cursor): Promise<string | null> => {
      for (;;) {
        const page = await fetchPage(c);
        c.since ??= page.timestamp;
        await store(page.items, c.startIndex);
        c.startIndex += page.items.length;
        ctx.state.cursor = c;
        await ctx.checkpoint();
        ctx.progress(Math.min(c.startIndex, page.total), page.total, c.mode === 'full' ? 'CVEs' : `CVEs changed ${c.start.slice(0, 10)}…${c.end.slice(0, 10)}`);
        if (c.startIndex >= page.total) return c.since;
        if (page.items.length === 0) {
          ctx.note(`NVD announced ${page.total} results but sent none from ${c.startIndex}: the walk ends there`);
          return c.since;
        }
      }
    };

    const runStart = ctx.now().toISOString();
    let cursor = ctx.state.cursor as Cursor | null;
    let watermark = typeof ctx.state.watermark === 'string' ? ctx.state.watermark : null;
    if (!cursor && watermark === null) cursor = { mode: 'full', startIndex: 0, since: null };
    let walkedAll = false;
    if (cursor?.mode === 'full') {
      const since = (await walk(cursor)) ?? runStart;
      watermark = new Date(Date.parse(minIso(since, runStart)) - OVERLAP_MS).toISOString();
      ctx.state.watermark = watermark;
      ctx.state.cursor = null;
      await ctx.checkpoint();
      cursor = null;
      walkedAll = true; // this run has everything up to the walk's start: the next run asks from there
    }
    // Incremental: windows of at most 120 days from the watermark up to now.
    while (!walkedAll) {
      if (!cursor) {
        if (watermark === null || watermark >= runStart) break;
        const end = new Date(Math.min(Date.parse(watermark) + MAX_WINDOW_MS, Date.parse(runStart))).toISOString();
        cursor = { mode: 'window', start: watermark, end, startIndex: 0, since: null };
      }
      const c = cursor as Extract<Cursor, { mode: 'window' }>;
      const since = await walk(c);
      // The last window ends now: the next run starts an overlap before what NVD had when it answered.
      const reached = c.end >= runStart ? new Date(Date.parse(minIso(c.end, since)) - OVERLAP_MS).toISOString() : c.end;
      watermark = reached > c.start ? reached : c.start;
      ctx.state.watermark = watermark;
      ctx.state.cursor = null;
      await ctx.checkpoint();
      cursor = null;
      if (c.end >= runStart) break;
    }
    ctx.report.watermark = watermark;
  },
};
