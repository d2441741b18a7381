/**
 * Loopback upstreams for the publisher's tests and benchmark, speaking each
 * real service's protocol (as ../shared/upstream records it) over the real
 * records of ../shared/feeds and ../shared/feeds-extra, read by path:
 *
 *   /nvd/rest/json/cves/2.0   NVD CVE API 2.0: startIndex/resultsPerPage (≤ 2,000),
 *                             lastModStartDate/lastModEndDate (both or neither, ISO 8601,
 *                             ≤ 120 days), errors as an empty 404 with the reason in the
 *                             `message` header, the `apiKey` header, `\/`-escaped compact
 *                             JSON, the page `timestamp` of this world's clock (UTC, no zone);
 *                             optionally its rate limit (403 past N a rolling window)
 *   /osv/                     OSV's bucket: ecosystems.txt, <Eco>/all.zip (sorted <ID>.json
 *                             entries, ETag, Range/If-Range), <Eco>/modified_id.csv (RFC 3339
 *                             nano, newest first, ties by id), <Eco>/<ID>.json (compact)
 *   /kev/known_exploited_vulnerabilities.json   CISA KEV (ETag, Last-Modified, 304)
 *   /epss/epss_scores-current.csv.gz            FIRST EPSS (ETag, 304)
 *   /euvd/api/search          ENISA EUVD search: exploited, fromDate/toDate (on
 *                             datePublished), page, size (clamped to 100), Gson-style
 *                             escapes of = < >
 *
 * Faults are queued per service: a status with headers and body (NVD's 503
 * page, a 403/429 with a `message` or Retry-After), a connection cut after
 * some bytes of the body. Every request is logged (service, path, query,
 * status), so a test counts what a sync asked for.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { sharedDir } from './services.ts';
import { writeZip } from './zip-writer.ts';

export type Service = 'nvd' | 'osv' | 'kev' | 'epss' | 'euvd';
type Json = Record<string, unknown>;

export interface Fault {
  service: Service;
  /** Only requests whose path (and query) this matches; all of the service's when absent. */
  match?: (pathAndQuery: string) => boolean;
  /** How many requests it hits (then it is spent). */
  times: number;
  /** Answer with this status, headers and body… */
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** …or send the real answer's headers and this many bytes of its body, then cut the connection… */
  cutAfter?: number;
  /** …or send the headers and this many bytes, then hold the connection open (a test kills the client meanwhile). */
  holdAfter?: number;
  /** Told when a hold begins, with the means to cut the connection held. */
  onHold?: (cut: () => void) => void;
}

export interface LoggedRequest {
  service: Service;
  path: string;
  query: string;
  status: number;
  at: number;
  apiKey: string | null;
  range: string | null;
}

const NVD_503 = readFileSync(path.join(sharedDir, 'upstream/nvd/error-503-body.html'));
const DAY_MS = 86_400_000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** NVD writes UTC without a zone: `2026-03-15T08:00:01.123`. */
export function nvdTime(d: Date): string {
  return d.toISOString().slice(0, 23);
}

/** OSV's modified_id.csv form of a record's `modified`: Go's RFC3339Nano (fraction without trailing zeros). */
export function rfc3339Nano(v: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(v);
  if (!m) return new Date(v).toISOString().replace(/\.?0+Z$/, 'Z');
  const frac = (m[2] ?? '').replace(/0+$/, '');
  return `${m[1]}${frac ? `.${frac}` : ''}${m[3] === '+00:00' ? 'Z' : m[3]}`;
}

/** EUVD's display form: `Apr 16, 2025, 7:00:16 AM`. */
export function euvdDisplay(d: Date): string {
  const h = d.getUTCHours();
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()}, ${h % 12 === 0 ? 12 : h % 12}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
}

function parseEuvdDisplay(s: unknown): number {
  const m = typeof s === 'string' ? /^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}), (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)$/.exec(s) : null;
  if (!m) return NaN;
  const hour = (Number(m[4]) % 12) + (m[7] === 'PM' ? 12 : 0);
  return Date.UTC(Number(m[3]), MONTHS.indexOf(m[1]!), Number(m[2]), hour, Number(m[5]), Number(m[6]));
}

function etagOf(b: Buffer | string): string {
  return `"${createHash('sha256').update(b).digest('hex').slice(0, 32)}"`;
}

export interface WorldOptions {
  /** OSV ecosystems to serve (default: every folder of ../shared/feeds/osv). */
  osvEcosystems?: string[];
  /** Server time (NVD's `timestamp`, Last-Modified). */
  now?: () => Date;
}

export class Upstream {
  now: () => Date;
  /** CVE id → the `cve` object NVD serves. */
  readonly nvd = new Map<string, Json>();
  /** ecosystem → id → the record's compact JSON. */
  readonly osv = new Map<string, Map<string, string>>();
  kev: Buffer = Buffer.alloc(0);
  kevModified = new Date(0);
  epss: Buffer = Buffer.alloc(0);
  epssModified = new Date(0);
  /** EUVD items as the search API returns them. */
  readonly euvd = new Map<string, Json>();
  readonly log: LoggedRequest[] = [];
  readonly faults: Fault[] = [];
  /** NVD's rate limit, enforced when set: more than `limit` requests in a rolling `windowMs` get 403. */
  nvdRateLimit: { limit: number; windowMs: number; message: string } | null = null;
  /** When set, NVD accepts only this apiKey (others: 404 "Invalid apiKey."). */
  nvdApiKey: string | null = null;
  private server!: http.Server;
  base = '';
  private zips = new Map<string, { data: Buffer; etag: string }>();

  private constructor(o: WorldOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** Starts the servers on a free loopback port with every record of ../shared loaded. */
  static async start(o: WorldOptions = {}): Promise<Upstream> {
    const u = new Upstream(o);
    await u.load(o);
    u.server = http.createServer((req, res) => {
      u.handle(req, res).catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
    await new Promise<void>((resolve) => u.server.listen(0, '127.0.0.1', resolve));
    u.base = `http://127.0.0.1:${(u.server.address() as AddressInfo).port}`;
    return u;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The sync's configuration pointing at this world (GHSA's repository is the caller's). */
  env(): Record<string, string> {
    return {
      NVD_API_URL: `${this.base}/nvd/rest/json/cves/2.0`,
      OSV_URL: `${this.base}/osv/`,
      KEV_URL: `${this.base}/kev/known_exploited_vulnerabilities.json`,
      EPSS_URL: `${this.base}/epss/epss_scores-current.csv.gz`,
      EUVD_API_URL: `${this.base}/euvd/api`,
    };
  }

  /** Requests a service received (optionally only those whose path matches). */
  requests(service: Service, pathMatch?: RegExp): LoggedRequest[] {
    return this.log.filter((r) => r.service === service && (!pathMatch || pathMatch.test(r.path)));
  }

  private async load(o: WorldOptions): Promise<void> {
    for (const f of (await readdir(path.join(sharedDir, 'feeds/nvd'))).filter((n) => n.endsWith('.json')).sort()) {
      const page = JSON.parse(await readFile(path.join(sharedDir, 'feeds/nvd', f), 'utf8')) as { vulnerabilities: { cve: Json }[] };
      for (const { cve } of page.vulnerabilities) {
        const had = this.nvd.get(cve.id as string);
        if (!had || String(had.lastModified) < String(cve.lastModified)) this.nvd.set(cve.id as string, cve);
      }
    }
    const ecos = o.osvEcosystems ?? (await readdir(path.join(sharedDir, 'feeds/osv'))).sort();
    for (const eco of ecos) {
      const m = new Map<string, string>();
      const dir = path.join(sharedDir, 'feeds/osv', eco);
      for (const f of (await readdir(dir)).filter((n) => n.endsWith('.json'))) {
        const rec = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Json;
        m.set(rec.id as string, JSON.stringify(rec));
      }
      this.osv.set(eco, m);
    }
    this.kev = await readFile(path.join(sharedDir, 'feeds-extra/kev/known_exploited_vulnerabilities.json'));
    this.kevModified = new Date(Date.UTC(2025, 7, 25, 17, 4, 19));
    this.epss = await readFile(path.join(sharedDir, 'feeds-extra/epss/epss_scores-2026-01-30.csv.gz'));
    this.epssModified = new Date(Date.UTC(2026, 0, 30, 13, 31, 7));
    const eu = path.join(sharedDir, 'upstream/euvd');
    const items: Json[] = [];
    const read = async (f: string): Promise<unknown> => JSON.parse(await readFile(path.join(eu, f), 'utf8'));
    items.push(...((await read('search-response.cku-heise-README.json')) as { items: Json[] }).items);
    items.push(...((await read('search-exploited-page0.trimmed.caisarus.json')) as { items: Json[] }).items);
    items.push(...((await read('exploitedvulnerabilities-latest.caisarus.json')) as Json[]));
    items.push(...((await read('lastvulnerabilities.caisarus.json')) as Json[]));
    for (const it of items) {
      // One item per id: the search form (with products) over the shorter list forms.
      const had = this.euvd.get(it.id as string);
      if (!had || Object.keys(it).length > Object.keys(had).length) this.euvd.set(it.id as string, it);
    }
  }

  /** Changes (or adds) an OSV record; its `modified` is set to `modified`. */
  putOsv(eco: string, rec: Json, modified: Date): void {
    const r: Json = { ...rec, modified: modified.toISOString() };
    (this.osv.get(eco) ?? this.osv.set(eco, new Map()).get(eco)!).set(r.id as string, JSON.stringify(r));
    this.zips.delete(eco);
  }

  removeOsv(eco: string, id: string): void {
    this.osv.get(eco)?.delete(id);
    this.zips.delete(eco);
  }

  /** Changes (or adds) an NVD record; its `lastModified` is set to `modified`. */
  putNvd(cve: Json, modified: Date): void {
    this.nvd.set(cve.id as string, { ...cve, lastModified: nvdTime(modified) });
  }

  private fault(service: Service, pq: string): Fault | null {
    const i = this.faults.findIndex((f) => f.service === service && f.times > 0 && (!f.match || f.match(pq)));
    if (i < 0) return null;
    const f = this.faults[i]!;
    f.times--;
    return f;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const service = (url.pathname.split('/')[1] ?? '') as Service;
    const entry: LoggedRequest = { service, path: decodeURIComponent(url.pathname), query: url.search, status: 0, at: Date.now(), apiKey: (req.headers.apikey as string | undefined) ?? null, range: (req.headers.range as string | undefined) ?? null };
    this.log.push(entry);
    const f = this.fault(service, `${url.pathname}${url.search}`);
    const send = (status: number, body: Buffer | string, headers: Record<string, string> = {}, cutAfter?: number): void => {
      entry.status = status;
      const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
      res.writeHead(status, { 'content-length': String(b.length), ...headers });
      if (cutAfter !== undefined) {
        res.write(b.subarray(0, Math.min(cutAfter, b.length)), () => res.socket?.destroy());
        return;
      }
      if (f?.holdAfter !== undefined && status < 300) {
        res.write(b.subarray(0, Math.min(f.holdAfter, b.length)), () => f.onHold?.(() => res.socket?.destroy()));
        return;
      }
      res.end(req.method === 'HEAD' ? undefined : b);
    };
    if (f && f.status !== undefined) return send(f.status, f.body ?? '', f.headers ?? {});
    const cut = f?.cutAfter;
    if (service === 'nvd') return this.nvdAnswer(url, req, send, cut);
    if (service === 'osv') return this.osvAnswer(url, req, send, cut);
    if (url.pathname === '/kev/known_exploited_vulnerabilities.json') return this.fileAnswer(req, this.kev, this.kevModified, 'application/json', send, cut);
    if (url.pathname === '/epss/epss_scores-current.csv.gz') return this.fileAnswer(req, this.epss, this.epssModified, 'application/gzip', send, cut);
    if (service === 'euvd') return this.euvdAnswer(url, send, cut);
    send(404, '');
  }

  private nvdAnswer(url: URL, req: http.IncomingMessage, send: (s: number, b: Buffer | string, h?: Record<string, string>, cut?: number) => void, cut?: number): void {
    const error = (message: string): void => send(404, '', { message, 'access-control-allow-origin': '*' });
    const key = (req.headers.apikey as string | undefined) ?? null;
    if (this.nvdApiKey !== null && key !== null && key !== this.nvdApiKey) return error('Invalid apiKey.');
    if (this.nvdRateLimit) {
      const { limit, windowMs, message } = this.nvdRateLimit;
      const now = Date.now();
      const recent = this.log.filter((r) => r.service === 'nvd' && r.status !== 403 && r.status !== 0 && r.at > now - windowMs);
      if (recent.length >= limit) return send(403, '', { message });
    }
    const q = url.searchParams;
    const num = (name: string, dflt: number): number | null => {
      const v = q.get(name);
      if (v === null) return dflt;
      return /^\d+$/.test(v) ? Number(v) : null;
    };
    const perPage = num('resultsPerPage', 2000);
    const start = num('startIndex', 0);
    if (perPage === null || start === null) return error('Invalid parameter value, see documentation.');
    if (perPage > 2000) return error('resultsPerPage parameter cannot exceed 2000.');
    const from = q.get('lastModStartDate');
    const to = q.get('lastModEndDate');
    let range: [number, number] | null = null;
    if (from !== null || to !== null) {
      if (from === null || to === null) return send(404, '');
      const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?(Z|[+-]\d{2}:\d{2})?$/;
      if (!iso.test(from) || !iso.test(to)) return error('Invalid ISO 8601 date/time format, see documentation.');
      const a = Date.parse(/(Z|[+-]\d{2}:\d{2})$/.test(from) ? from : `${from}Z`);
      const b = Date.parse(/(Z|[+-]\d{2}:\d{2})$/.test(to) ? to : `${to}Z`);
      if (Number.isNaN(a) || Number.isNaN(b)) return error('Invalid ISO 8601 date/time format, see documentation.');
      if (b - a > 120 * DAY_MS || b < a) return error('The maximum allowable range when using any date range parameters is 120 consecutive days.');
      range = [a, b];
    }
    const all = [...this.nvd.values()]
      .filter((c) => !range || (Date.parse(`${String(c.lastModified)}Z`) >= range[0] && Date.parse(`${String(c.lastModified)}Z`) <= range[1]))
      .sort((x, y) => (String(x.id) < String(y.id) ? -1 : 1));
    const items = all.slice(start, start + perPage);
    const body = JSON.stringify({ resultsPerPage: items.length, startIndex: start, totalResults: all.length, format: 'NVD_CVE', version: '2.0', timestamp: nvdTime(this.now()), vulnerabilities: items.map((cve) => ({ cve })) }).replace(/\//g, '\\/');
    send(200, body, { 'content-type': 'application/json', apikey: key ? 'Yes' : 'No', 'x-frame-options': 'SAMEORIGIN' }, cut);
  }

  private osvAnswer(url: URL, req: http.IncomingMessage, send: (s: number, b: Buffer | string, h?: Record<string, string>, cut?: number) => void, cut?: number): void {
    const parts = url.pathname.split('/').slice(2).map((p) => decodeURIComponent(p));
    if (parts.length === 1 && parts[0] === 'ecosystems.txt') return send(200, `${[...this.osv.keys()].sort().join('\n')}\n`, { 'content-type': 'text/plain' }, cut);
    const records = parts.length === 2 ? this.osv.get(parts[0]!) : undefined;
    if (!records) return send(404, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>', { 'content-type': 'application/xml' });
    const eco = parts[0]!;
    const name = parts[1]!;
    if (name === 'modified_id.csv') {
      const rows = [...records.values()].map((t) => {
        const r = JSON.parse(t) as Json;
        return { m: rfc3339Nano(String(r.modified)), k: new Date(String(r.modified)).getTime(), id: String(r.id) };
      });
      rows.sort((a, b) => b.k - a.k || (a.m < b.m ? 1 : a.m > b.m ? -1 : 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return send(200, rows.map((r) => `${r.m},${r.id}\n`).join(''), { 'content-type': 'text/csv' }, cut);
    }
    if (name === 'all.zip') {
      let z = this.zips.get(eco);
      if (!z) {
        const ids = [...records.keys()].sort();
        const data = writeZip(ids.map((id) => ({ name: `${id}.json`, data: Buffer.from(records.get(id)!) })));
        this.zips.set(eco, (z = { data, etag: etagOf(data) }));
      }
      const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      const ifRange = req.headers['if-range'];
      if (range && (!ifRange || ifRange === z.etag) && Number(range[1]) < z.data.length) {
        const from = Number(range[1]);
        return send(206, z.data.subarray(from), { 'content-type': 'application/zip', etag: z.etag, 'content-range': `bytes ${from}-${z.data.length - 1}/${z.data.length}`, 'accept-ranges': 'bytes' }, cut);
      }
      return send(200, z.data, { 'content-type': 'application/zip', etag: z.etag, 'accept-ranges': 'bytes' }, cut);
    }
    const id = name.endsWith('.json') ? name.slice(0, -5) : '';
    const text = records.get(id);
    if (text === undefined) return send(404, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>', { 'content-type': 'application/xml' });
    send(200, text, { 'content-type': 'application/json' }, cut);
  }

  private fileAnswer(req: http.IncomingMessage, data: Buffer, modified: Date, type: string, send: (s: number, b: Buffer | string, h?: Record<string, string>, cut?: number) => void, cut?: number): void {
    const etag = etagOf(data);
    const lastModified = modified.toUTCString();
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if ((inm && inm === etag) || (!inm && ims && Date.parse(String(ims)) >= Math.floor(modified.getTime() / 1000) * 1000)) return send(304, '', { etag, 'last-modified': lastModified });
    send(200, data, { 'content-type': type, etag, 'last-modified': lastModified }, cut);
  }

  private euvdAnswer(url: URL, send: (s: number, b: Buffer | string, h?: Record<string, string>, cut?: number) => void, cut?: number): void {
    if (url.pathname !== '/euvd/api/search') return send(404, '');
    const q = url.searchParams;
    const day = (name: string): number | null | 'bad' => {
      const v = q.get(name);
      if (v === null) return null;
      return /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) ? Date.parse(`${v}T00:00:00Z`) : 'bad';
    };
    const from = day('fromDate');
    const to = day('toDate');
    const page = Number(q.get('page') ?? 0);
    const size = Math.min(100, Math.max(1, Number(q.get('size') ?? 10)));
    if (from === 'bad' || to === 'bad' || !Number.isInteger(page) || page < 0 || !Number.isFinite(size)) return send(403, '');
    const exploited = q.get('exploited') === 'true';
    const all = [...this.euvd.values()]
      .filter((it) => !exploited || typeof it.exploitedSince === 'string')
      .filter((it) => {
        const p = parseEuvdDisplay(it.datePublished);
        return (from === null || p >= from) && (to === null || p < to + DAY_MS);
      })
      .sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
    const items = all.slice(page * size, page * size + size);
    const body = JSON.stringify({ items, total: all.length }).replace(/=/g, '\\u003d').replace(/</g, '\\u003c').replace(/>/g, '\\u003e');
    send(200, body, { 'content-type': 'application/json', 'cache-control': 'no-cache, no-store' }, cut);
  }
}

/** NVD's 503 as HAProxy sends it (../shared/upstream/nvd/error-503-body.html and its headers). */
export function nvd503(times: number, match?: Fault['match']): Fault {
  return { service: 'nvd', times, status: 503, body: NVD_503, headers: { 'cache-control': 'no-cache', 'content-type': 'text/html' }, ...(match ? { match } : {}) };
}
