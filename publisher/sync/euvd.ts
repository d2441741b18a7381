/**
 * ENISA's EU Vulnerability Database (EUVD_API_URL, its `/search`) into two
 * files the builder reads (builder/feeds/euvd.ts):
 *
 *   euvd/exploited.json  ENISA's exploited list, whole (`search?exploited=true`,
 *                        paged; the `/exploitedvulnerabilities` endpoint gives
 *                        only the latest few): per EUVD id its aliases, the day
 *                        ENISA has it exploited since, vendors and products.
 *                        Fetched again every run (about 17 pages).
 *   euvd/aliases.json    every EUVD id with its aliases (CVE, GHSA, …): the
 *                        builder makes an EUVD id an alias of the one CVE it
 *                        names. The first run walks `search` by date windows
 *                        (`fromDate`/`toDate`, a year each, a window holding
 *                        more than 10,000 results split in halves); later runs
 *                        ask from the day before the watermark to today.
 *
 * Both are normalised here (EUVD writes aliases as one newline-joined string
 * and dates as "Apr 16, 2025, 7:00:16 AM", read as UTC), checked, sorted by
 * id and written whole. An item without a readable EUVD id is skipped and
 * listed. Requests are paced (5 a second: EUVD publishes no limit but answers
 * 429 to busy clients) and 429/403/5xx retried (http.ts).
 */
import path from 'node:path';
import { isObject, type JsonObject } from '../../builder/feeds/fields.ts';
import type { SourceContext, SyncSource } from './context.ts';
import { readIfExists, writeFileAtomic } from './files.ts';
import { RollingWindow } from './pacing.ts';

const MAX_PAGE_BYTES = 32 * 1024 * 1024;
const EUVD_ID = /^EUVD-\d{4}-\d{1,9}$/;
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** The first day a full walk asks for (EUVD holds records back to CVE-1999 and older). */
const FIRST_DAY = '1988-01-01';
const DAY_MS = 86_400_000;
export const EXPLOITED_FILE = 'euvd/exploited.json';
export const ALIASES_FILE = 'euvd/aliases.json';

export interface ExploitedItem {
  id: string;
  aliases: string[];
  /** YYYY-MM-DD */
  exploitedSince: string;
  vendors: string[];
  products: string[];
  updated: string | null;
}

export interface AliasRecord {
  aliases: string[];
  updated: string | null;
}

/** "Apr 16, 2025, 7:00:16 AM" (EUVD's display form; also plain ISO 8601) → ISO 8601 UTC, or null. */
export function euvdTime(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const s = v.replace(/[\u202f\u00a0]/g, ' ').trim();
  const m = /^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}),? (\d{1,2}):(\d{2})(?::(\d{2}))? ?([AP]M)$/i.exec(s);
  if (m) {
    const month = MONTHS.indexOf(m[1]![0]!.toUpperCase() + m[1]!.slice(1).toLowerCase());
    let hour = Number(m[4]) % 12;
    if (m[7]!.toUpperCase() === 'PM') hour += 12;
    if (month < 0) return null;
    const d = new Date(Date.UTC(Number(m[3]), month, Number(m[2]), hour, Number(m[5]), Number(m[6] ?? 0)));
    return Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[2]) ? null : d.toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const ms = Date.parse(s);
    return Number.isNaN(ms) ? null : new Date(ms).toISOString();
  }
  return null;
}

/** EUVD's newline-joined alias string (or an array) → the ids, in order, once each. */
export function euvdAliases(v: unknown, own: string): string[] | null {
  if (v === undefined || v === null) return [];
  const parts = typeof v === 'string' ? v.split(/[\s,]+/) : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null;
  if (parts === null) return null;
  return [...new Set(parts.map((p) => p.trim()).filter((p) => p && p !== own && ALIAS.test(p)))];
}

function names(list: unknown, key: 'vendor' | 'product'): string[] {
  if (!Array.isArray(list)) return [];
  const out = new Set<string>();
  for (const x of list) {
    const inner = isObject(x) ? x[key] : undefined;
    const name = isObject(inner) ? inner.name : undefined;
    if (typeof name === 'string' && name.trim()) out.add(name.trim().slice(0, 200));
  }
  return [...out];
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function sortedObject<T>(m: Map<string, T>): Record<string, T> {
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

interface Search {
  total: number;
  items: JsonObject[];
}

export const euvdSource: SyncSource = {
  name: 'euvd',
  async run(ctx: SourceContext): Promise<void> {
    const base = ctx.settings.euvdUrl.replace(/\/+$/, '');
    const client = ctx.client({ service: "ENISA's EUVD", urlVariable: 'EUVD_API_URL', pacing: new RollingWindow(5, 1000, ctx.clock), headers: { accept: 'application/json' } });
    const size = ctx.tuning.euvdPageSize ?? 100;
    const cap = ctx.tuning.euvdWindowCap ?? 10_000;

    const search = async (params: Record<string, string | number>, page: number): Promise<Search> => {
      const q = Object.entries({ ...params, page, size }).map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`).join('&');
      const url = `${base}/search?${q}`;
      const a = await client.getJson(url, { maxBytes: MAX_PAGE_BYTES, allow: [204], what: `search page ${page}` });
      if (a.status === 204) return { total: 0, items: [] };
      const body = a.body;
      if (!isObject(body) || !Array.isArray(body.items) || typeof body.total !== 'number' || !Number.isInteger(body.total) || body.total < 0) {
        throw client.invalid(url, 'not a search answer ({"items": […], "total": N})');
      }
      return { total: body.total, items: body.items.filter((x): x is JsonObject => isObject(x)) };
    };

    /** Every item `params` selects, page by page (bounded by the total the first page announces). */
    const all = async (params: Record<string, string | number>, each: (item: JsonObject) => void, first?: Search): Promise<void> => {
      const head = first ?? (await search(params, 0));
      const pages = Math.ceil(head.total / size);
      head.items.forEach(each);
      for (let p = 1; p < pages; p++) {
        const page = await search(params, p);
        page.items.forEach(each);
        if (page.items.length === 0) break;
      }
    };

    const idOf = (item: JsonObject): string | null => {
      const id = typeof item.id === 'string' ? item.id.trim() : '';
      if (EUVD_ID.test(id)) return id;
      ctx.skip(typeof item.id === 'string' ? item.id.slice(0, 60) : '(no id)', 'not an EUVD id (EUVD-YYYY-N)');
      return null;
    };

    // 1. The exploited list, whole.
    const exploited = new Map<string, ExploitedItem>();
    await all({ exploited: 'true' }, (item) => {
      const id = idOf(item);
      if (!id) return;
      ctx.report.fetched++;
      const since = euvdTime(item.exploitedSince);
      const aliases = euvdAliases(item.aliases, id);
      if (!since || aliases === null) return ctx.skip(id, since ? 'its aliases are not a string of ids' : `exploitedSince ${JSON.stringify(item.exploitedSince ?? null)} is not a date`);
      exploited.set(id, { id, aliases, exploitedSince: since.slice(0, 10), vendors: names(item.enisaIdVendor, 'vendor'), products: names(item.enisaIdProduct, 'product'), updated: euvdTime(item.dateUpdated) });
    });
    const exploitedFile = path.join(ctx.out, EXPLOITED_FILE);
    const heldExploited = new Map<string, string>();
    try {
      const held = JSON.parse((await readIfExists(exploitedFile)) ?? '{}') as { items?: ExploitedItem[] };
      for (const it of held.items ?? []) heldExploited.set(it.id, JSON.stringify(it));
    } catch {
      // a damaged copy is replaced
    }
    for (const [id, it] of exploited) {
      const old = heldExploited.get(id);
      ctx.land(old === undefined ? 'added' : old === JSON.stringify(it) ? 'unchanged' : 'modified');
    }
    for (const id of heldExploited.keys()) if (!exploited.has(id)) ctx.land('withdrawn');
    const items = Object.values(sortedObject(exploited));
    await writeFileAtomic(exploitedFile, `${JSON.stringify({ format: 'stella-euvd-exploited/1', source: `${base}/search?exploited=true`, items }, null, 1)}\n`);
    ctx.progress(exploited.size, exploited.size, 'exploited');

    // 2. The aliases of every EUVD id, by date windows.
    const aliasesFile = path.join(ctx.out, ALIASES_FILE);
    const records = new Map<string, AliasRecord>();
    try {
      const held = JSON.parse((await readIfExists(aliasesFile)) ?? '{}') as { records?: Record<string, AliasRecord> };
      for (const [id, r] of Object.entries(held.records ?? {})) records.set(id, r);
    } catch {
      // a damaged copy: walked again in full
      ctx.state.watermark = null;
    }
    const save = async (): Promise<void> => {
      await writeFileAtomic(aliasesFile, `${JSON.stringify({ format: 'stella-euvd-aliases/1', records: sortedObject(records) })}\n`);
    };
    const take = (item: JsonObject): void => {
      const id = idOf(item);
      if (!id) return;
      ctx.report.fetched++;
      const aliases = euvdAliases(item.aliases, id);
      if (aliases === null) return ctx.skip(id, 'its aliases are not a string of ids');
      const rec: AliasRecord = { aliases, updated: euvdTime(item.dateUpdated) };
      const old = records.get(id);
      records.set(id, rec);
      if (!exploited.has(id)) ctx.land(old === undefined ? 'added' : JSON.stringify(old) === JSON.stringify(rec) ? 'unchanged' : 'modified');
    };
    /** One window of days, split while it holds more than the cap. */
    const window = async (from: number, to: number): Promise<void> => {
      const params = { fromDate: day(from), toDate: day(to) };
      const first = await search(params, 0);
      if (first.total > cap && to - from >= DAY_MS) {
        const mid = from + Math.floor((to - from) / DAY_MS / 2) * DAY_MS;
        await window(from, mid);
        await window(mid + DAY_MS, to);
        return;
      }
      await all(params, take, first);
    };
    const today = Date.parse(`${day(ctx.now().getTime())}T00:00:00Z`);
    const wm = typeof ctx.state.watermark === 'string' ? Date.parse(`${ctx.state.watermark}T00:00:00Z`) : NaN;
    const resume = typeof ctx.state.cursor === 'string' ? Date.parse(`${ctx.state.cursor}T00:00:00Z`) : NaN;
    let from = !Number.isNaN(resume) ? resume : !Number.isNaN(wm) ? wm - DAY_MS : Date.parse(`${FIRST_DAY}T00:00:00Z`);
    const yearMs = 365 * DAY_MS;
    while (from <= today) {
      const to = Math.min(from + yearMs, today);
      await window(from, to);
      from = to + DAY_MS;
      await save();
      ctx.state.cursor = from <= today ? day(from) : null;
      await ctx.checkpoint();
      ctx.progress(records.size, null, `EUVD ids, up to ${day(to)}`);
    }
    ctx.state.cursor = null;
    ctx.state.watermark = day(today);
    ctx.report.watermark = day(today);
    await save();
    await ctx.checkpoint();
  },
};
