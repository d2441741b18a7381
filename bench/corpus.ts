/**
 * A full-size feed corpus at real density, for the benchmarks: feeds in the
 * real formats (NVD CVE API 2.0 pages, OSV and GHSA records one a file) that
 * `stella ouk build --feeds DIR` reads unchanged, derived from the real records
 * in ../shared/feeds.
 *
 *   npm run bench:corpus -- [--out DIR] [--scale 1] [--force]
 *
 * Every real record is a template, cloned as often as its source and ecosystem
 * need to reach the real world's size. Clone 0 is the record itself; clone k
 * keeps the text, references, severity, CPE configurations and version events
 * and gets new identities, consistently across sources so that the alias graph
 * merges clones the way the originals merge:
 *
 *   CVE-2021-23337      → CVE-2021-<k><0023337>   (8+ digits: never a real id)
 *   GHSA-35jh-r3h4-6jhm → GHSA-xxxx-xxxx-xxxx     (hash of id and k, GHSA's alphabet)
 *   GO-2021-0159, …     → GO-2021-0159-g<k>
 *   package `lodash`    → `lodash-g<k>`, CPE product `zope` → `zope_g<k>`
 *
 * New package names keep the density real: a package has about as many
 * advisories as in the real data, not k times as many. Versions are unchanged.
 *
 * Targets at scale 1 (the world the kit carries, rounded): NVD 320,000 CVEs
 * (Dec 2025), GHSA 29,000 reviewed advisories, OSV 520,000 records (Apr 2026)
 * split over the eight ecosystems the real sample holds, in proportion to
 * osv.dev's counts, with those eight standing in for the rest (Ubuntu, SUSE,
 * Red Hat, …). Deterministic: the same scale writes the same files.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED_FEEDS = path.resolve(repoRoot, '../shared/feeds');

/** Records per source/ecosystem at scale 1. */
export const TARGETS = {
  nvd: 320_000,
  ghsa: 29_000,
  osv: {
    npm: 250_000, // most of it OpenSSF malicious-package reports
    Debian: 80_000,
    Alpine: 50_000,
    PyPI: 40_000,
    AlmaLinux: 30_000,
    Maven: 30_000,
    Go: 20_000,
    Bitnami: 20_000,
  } as Record<string, number>,
};

type Json = Record<string, unknown>;

const GHSA_ALPHABET = '23456789cfghjmpqrvwx';

/** The identity of clone `k` of a vulnerability id (k = 0: the id itself). */
export function cloneId(id: string, k: number): string {
  if (k === 0) return id;
  const cve = /^CVE-(\d{4})-(\d+)$/.exec(id);
  if (cve) return `CVE-${cve[1]}-${k}${cve[2]!.padStart(7, '0')}`;
  if (/^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$/.test(id)) {
    const h = createHash('sha256').update(`${id}#${k}`).digest();
    const part = (o: number): string => Array.from({ length: 4 }, (_, i) => GHSA_ALPHABET[h[o + i]! % GHSA_ALPHABET.length]).join('');
    return `GHSA-${part(0)}-${part(4)}-${part(8)}`;
  }
  return `${id}-g${k}`;
}

function cloneName(name: string, k: number): string {
  return k === 0 ? name : `${name}-g${k}`;
}

/** A purl with its name replaced by clone k's (the name is the last path segment, before @, ? or #). */
function clonePurl(purl: string, name: string, k: number): string {
  if (k === 0) return purl;
  const m = /^(pkg:[^/]+\/(?:[^@?#]*\/)?)([^/@?#]+)(.*)$/.exec(purl);
  if (!m) return purl;
  const last = decodeURIComponent(m[2]!);
  const want = name.split('/').pop()!.split(':').pop()!;
  return last === want ? `${m[1]}${encodeURIComponent(cloneName(last, k))}${m[3]}` : purl;
}

function mapIds(v: unknown, k: number): unknown {
  return Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? cloneId(x, k) : x)) : v;
}

/** Clone k of an OSV/GHSA record. */
export function cloneOsv(rec: Json, k: number): Json {
  if (k === 0) return rec;
  const out: Json = { ...rec, id: cloneId(String(rec.id), k) };
  for (const f of ['aliases', 'related', 'upstream']) if (rec[f] !== undefined) out[f] = mapIds(rec[f], k);
  if (Array.isArray(rec.affected)) {
    out.affected = (rec.affected as Json[]).map((a) => {
      const pkg = a.package as Json | undefined;
      if (!pkg || typeof pkg.name !== 'string') return a;
      const name = pkg.name;
      return { ...a, package: { ...pkg, name: cloneName(name, k), ...(typeof pkg.purl === 'string' ? { purl: clonePurl(pkg.purl, name, k) } : {}) } };
    });
  }
  return out;
}

/** Clone k of an NVD CVE item (`{cve: {...}}`). */
export function cloneNvd(item: Json, k: number): Json {
  if (k === 0) return item;
  const cve = item.cve as Json;
  const text = JSON.stringify(cve.configurations ?? []).replace(/"criteria":"cpe:2\.3:([aoh]):((?:[^:\\]|\\.)*):((?:[^:\\]|\\.)*):/g, (_m, part: string, vendor: string, product: string) => `"criteria":"cpe:2.3:${part}:${vendor}:${product}_g${k}:`);
  return { cve: { ...cve, id: cloneId(String(cve.id), k), configurations: JSON.parse(text) as unknown } };
}

async function* jsonFiles(dir: string): AsyncGenerator<string> {
  const entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) yield* jsonFiles(full);
    else if (e.name.endsWith('.json')) yield full;
  }
}

/** Writes files with bounded concurrency. */
class Writer {
  private pending = new Set<Promise<void>>();
  written = 0;
  bytes = 0;
  async write(file: string, text: string): Promise<void> {
    while (this.pending.size >= 64) await Promise.race(this.pending);
    const p = fsp.writeFile(file, text).then(() => {
      this.written++;
      this.bytes += Buffer.byteLength(text);
      this.pending.delete(p);
    });
    this.pending.add(p);
  }
  async flush(): Promise<void> {
    await Promise.all(this.pending);
  }
}

/** Clones `templates` round-robin until `target` records: template i, clone k = floor(n / templates). */
function* plan(templates: number, target: number): Generator<{ i: number; k: number; n: number }> {
  for (let n = 0; n < target; n++) yield { i: n % templates, k: Math.floor(n / templates), n };
}

const BUCKET = 5000;
const bucketDir = (root: string, n: number): string => path.join(root, String(Math.floor(n / BUCKET)).padStart(4, '0'));

async function writeOsvLike(src: string, dest: string, target: number, w: Writer, log: (s: string) => void): Promise<number> {
  const templates: Json[] = [];
  for await (const f of jsonFiles(src)) templates.push(JSON.parse(await fsp.readFile(f, 'utf8')) as Json);
  if (!templates.length) return 0;
  let made = 0;
  for (const { i, k, n } of plan(templates.length, target)) {
    const rec = cloneOsv(templates[i]!, k);
    const dir = bucketDir(dest, n);
    if (n % BUCKET === 0) await fsp.mkdir(dir, { recursive: true });
    await w.write(path.join(dir, `${String(rec.id).replace(/[/:]/g, '_')}.json`), JSON.stringify(rec));
    made++;
  }
  log(`  ${path.relative(repoRoot, dest)}: ${made} records from ${templates.length} templates`);
  return made;
}

async function writeNvd(src: string, dest: string, target: number, w: Writer, log: (s: string) => void): Promise<number> {
  const templates: Json[] = [];
  for await (const f of jsonFiles(src)) {
    const page = JSON.parse(await fsp.readFile(f, 'utf8')) as { vulnerabilities?: Json[] };
    for (const item of page.vulnerabilities ?? []) templates.push(item);
  }
  // one record per CVE id (the real pages hold some twice)
  const seen = new Set<string>();
  const unique = templates.filter((t) => {
    const id = String((t.cve as Json).id);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  await fsp.mkdir(dest, { recursive: true });
  const PAGE = 2000;
  let items: Json[] = [];
  let pageNo = 0;
  const flushPage = async (): Promise<void> => {
    if (!items.length) return;
    const page = { resultsPerPage: items.length, startIndex: pageNo * PAGE, totalResults: target, format: 'NVD_CVE', version: '2.0', timestamp: '2025-12-01T00:00:00.000', vulnerabilities: items };
    await w.write(path.join(dest, `page-${String(pageNo).padStart(4, '0')}.json`), JSON.stringify(page));
    pageNo++;
    items = [];
  };
  for (const { i, k } of plan(unique.length, target)) {
    items.push(cloneNvd(unique[i]!, k));
    if (items.length === PAGE) await flushPage();
  }
  await flushPage();
  log(`  ${path.relative(repoRoot, dest)}: ${target} CVEs in ${pageNo} pages from ${unique.length} templates`);
  return target;
}

export interface CorpusResult {
  dir: string;
  records: number;
  files: number;
  bytes: number;
}

/** Writes the corpus at `scale` into `out` (reused when already complete, unless `force`). */
export async function writeCorpus(out: string, scale = 1, opts: { force?: boolean; log?: (s: string) => void } = {}): Promise<CorpusResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const done = path.join(out, '.complete.json');
  if (!opts.force && fs.existsSync(done)) return JSON.parse(fs.readFileSync(done, 'utf8')) as CorpusResult;
  await fsp.rm(out, { recursive: true, force: true });
  await fsp.mkdir(out, { recursive: true });
  const w = new Writer();
  const n = (x: number): number => Math.max(1, Math.round(x * scale));
  let records = 0;
  log(`writing a feed corpus at scale ${scale} into ${out}`);
  records += await writeNvd(path.join(SHARED_FEEDS, 'nvd'), path.join(out, 'nvd'), n(TARGETS.nvd), w, log);
  records += await writeOsvLike(path.join(SHARED_FEEDS, 'ghsa'), path.join(out, 'ghsa'), n(TARGETS.ghsa), w, log);
  for (const [eco, target] of Object.entries(TARGETS.osv)) {
    records += await writeOsvLike(path.join(SHARED_FEEDS, 'osv', eco), path.join(out, 'osv', eco), n(target), w, log);
  }
  await w.flush();
  const result: CorpusResult = { dir: out, records, files: w.written, bytes: w.bytes };
  fs.writeFileSync(done, JSON.stringify(result));
  log(`corpus: ${records} records in ${w.written} files, ${(w.bytes / 1048576).toFixed(0)} MiB`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const program = new Command('bench:corpus')
    .option('--out <dir>', 'where to write the feeds (default: bench/out/corpus-<scale>, where `npm run bench` looks)')
    .option('--scale <x>', 'fraction of the real world size (1 = full size)', (v) => Number(v), 1)
    .option('--force', 'write it again even when complete', false)
    .parse(process.argv);
  const o = program.opts<{ out?: string; scale: number; force: boolean }>();
  await writeCorpus(path.resolve(o.out ?? path.join(repoRoot, 'bench', 'out', `corpus-${o.scale}`)), o.scale, { force: o.force });
}
