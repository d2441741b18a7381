/**
 * The sync benchmark (`npm run bench:sync [-- --json]`; not a test, no
 * assertion on time): `stella feeds sync` (publisher/sync/, in-process, the
 * real pacing and retry settings) against the loopback upstreams of the tests
 * (test/helpers/upstream.ts, a real git repository for GHSA) serving ALL of
 * ../shared — NVD 3,000 CVEs, OSV's 8 ecosystems, 2,500 GHSA advisories,
 * CISA's KEV, a whole EPSS day, ENISA's EUVD samples, the CSAF documents of
 * ../shared/feeds-extra/csaf (test/helpers/upstream-csaf.ts: half from a
 * directory provider, half from a ROLIE one, hashed and OpenPGP-signed):
 *
 *  1. a full sync into an empty directory;
 *  2. BENCH_SYNC_CHANGE % (default 1) of every source's records changed
 *     upstream the way each changes (NVD lastModified, OSV modified, GHSA one
 *     commit, a new KEV catalog, a new EPSS day rescoring that share, EUVD's
 *     exploited list, CSAF documents revised), then an incremental sync.
 *
 * BENCH_SYNC_SOURCES (comma-separated) syncs only those sources.
 *
 * Prints per source and in all the wall time and the requests made (every
 * try, as the servers counted them); with --json also writes
 * bench/out/sync.json. NVD is asked with an API key (50 requests a 30 s);
 * EUVD is paced to 5 requests a second, as in production.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { syncSettings } from '../lib/config.ts';
import { parseSources, syncFeeds, type SourceReport } from '../publisher/sync/index.ts';
import { GhsaRepo, sharedGhsa } from '../test/helpers/upstream-git.ts';
import { CsafWorld, makePgpKey, sharedCsafDoc } from '../test/helpers/upstream-csaf.ts';
import { Upstream } from '../test/helpers/upstream.ts';
import { sharedDir, tmpDir } from '../test/helpers/services.ts';

type Json = Record<string, any>; // upstream records, edited in place

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHANGE = Number(process.env.BENCH_SYNC_CHANGE ?? '1') / 100;
const JSON_OUT = process.argv.includes('--json');
/** BENCH_SYNC_SOURCES=csaf,kev: only those sources (default: all). */
const SOURCES = process.env.BENCH_SYNC_SOURCES ? parseSources(process.env.BENCH_SYNC_SOURCES) : undefined;

interface Run {
  seconds: number;
  requests: number;
  sources: Pick<SourceReport, 'source' | 'requests' | 'fetched' | 'added' | 'modified' | 'withdrawn' | 'removed' | 'unchanged' | 'skipped' | 'seconds'>[];
}

function pick<T>(xs: T[], share: number): T[] {
  const n = Math.max(1, Math.ceil(xs.length * share));
  const step = xs.length / n;
  return Array.from({ length: n }, (_, i) => xs[Math.floor(i * step)]!);
}

async function main(): Promise<void> {
  const world = await Upstream.start();
  const repo = await GhsaRepo.create('bench');
  // CSAF: every document at the top of a provider's folder of feeds-extra/csaf, alternately to each distribution
  const csafRoot = path.join(sharedDir, 'feeds-extra/csaf');
  const csafFiles = fs
    .readdirSync(csafRoot)
    .filter((d) => d !== 'schema' && fs.statSync(path.join(csafRoot, d)).isDirectory())
    .flatMap((d) => fs.readdirSync(path.join(csafRoot, d)).filter((f) => f.endsWith('.json') && !f.includes('provider-metadata')).map((f) => `${d}/${f}`))
    .sort();
  const key = await makePgpKey();
  const csafDocs = csafFiles.map((f) => sharedCsafDoc(f));
  const csafWorld = await CsafWorld.start([
    { name: 'directory', kind: 'directory', docs: csafDocs.filter((_, i) => i % 2 === 0), key },
    { name: 'rolie', kind: 'rolie', docs: csafDocs.filter((_, i) => i % 2 === 1), key },
  ]);
  const dir = path.join(tmpDir('bench-sync'), 'feeds');
  const providers = path.join(path.dirname(dir), 'csaf-providers.txt');
  fs.writeFileSync(providers, csafWorld.providerList());
  const settings = syncSettings({ ...world.env(), GHSA_GIT_URL: repo.url, NVD_API_KEY: 'bench', CSAF_PROVIDERS: providers });
  const run = async (label: string): Promise<Run> => {
    const mark = world.log.length;
    const csafMark = csafWorld.log.length;
    const t0 = process.hrtime.bigint();
    const r = await syncFeeds({ out: dir, settings, childEnv: process.env, ...(SOURCES ? { sources: SOURCES } : {}) });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (!r.ok) throw new Error(`${label}: ${JSON.stringify(r.reports.filter((x) => x.status !== 'ok'))}`);
    const ghsaFetches = r.reports.find((x) => x.source === 'ghsa')?.requests ?? 0; // git fetches: not HTTP
    return {
      seconds,
      requests: world.log.length - mark + ghsaFetches + csafWorld.log.length - csafMark,
      sources: r.reports.map(({ source, requests, fetched, added, modified, withdrawn, removed, unchanged, skipped, seconds: s }) => ({ source, requests, fetched, added, modified, withdrawn, removed, unchanged, skipped, seconds: s })),
    };
  };

  const full = await run('full');

  // BENCH_SYNC_CHANGE % of every source changed upstream
  const at = new Date(Date.now() - 60_000);
  for (const id of pick([...world.nvd.keys()].sort(), CHANGE)) {
    const cve = structuredClone(world.nvd.get(id)!) as Json;
    cve.descriptions[0].value += ' (changed)';
    world.putNvd(cve, at);
  }
  for (const [eco, recs] of world.osv) {
    for (const id of pick([...recs.keys()].sort(), CHANGE)) world.putOsv(eco, { ...(JSON.parse(recs.get(id)!) as Json), summary: 'changed' }, at);
  }
  for (const a of pick((await sharedGhsa()).sort((x, y) => (x.id < y.id ? -1 : 1)), CHANGE)) {
    const rec = JSON.parse(await repo.read(a.path)) as Json;
    rec.summary = `${rec.summary} (changed)`;
    rec.modified = at.toISOString();
    await repo.write(a.path, JSON.stringify(rec, null, 2));
  }
  await repo.commit('changed');
  const kev = JSON.parse(world.kev.toString('utf8')) as Json;
  for (const v of pick(kev.vulnerabilities as Json[], CHANGE)) v.notes = `${v.notes} (changed)`;
  kev.catalogVersion = `${kev.catalogVersion}.1`;
  kev.dateReleased = at.toISOString();
  world.kev = Buffer.from(JSON.stringify(kev));
  world.kevModified = at;
  const epss = gunzipSync(world.epss).toString('utf8').split('\n');
  epss[0] = epss[0]!.replace(/score_date:\d{4}-\d{2}-\d{2}/, 'score_date:2026-01-31');
  const rows = epss.slice(2).filter(Boolean);
  const rescored = new Set(pick(rows, CHANGE));
  world.epss = gzipSync([epss[0], epss[1], ...rows.map((r) => (rescored.has(r) ? r.replace(/,([0-9.e-]+),/, (_, s: string) => `,${Math.min(1, Number(s) * 2)},`) : r))].join('\n') + '\n');
  world.epssModified = at;
  for (const it of pick([...world.euvd.values()].filter((i) => i.exploitedSince), CHANGE)) it.dateUpdated = 'Dec 1, 2026, 12:00:00 AM';
  for (const d of pick(csafDocs, CHANGE)) {
    const doc = JSON.parse(d.body.toString('utf8')) as Json;
    doc.document.title = `${doc.document.title} (revised)`;
    d.body = Buffer.from(JSON.stringify(doc, null, 2));
    d.time = at.toISOString();
  }

  const incremental = await run('incremental');
  await world.close();
  await csafWorld.close();

  const table = (label: string, r: Run): string[] => [
    `${label}: ${r.seconds.toFixed(1)} s, ${r.requests} requests`,
    ...r.sources.map((s) => `  ${s.source.padEnd(5)} ${s.seconds.toFixed(1).padStart(6)} s ${String(s.requests).padStart(5)} requests ${String(s.fetched).padStart(7)} fetched: ${s.added} added, ${s.modified} modified, ${s.withdrawn} withdrawn, ${s.unchanged} unchanged, ${s.skipped} skipped`),
  ];
  process.stdout.write([...table('full sync', full), ...table(`${CHANGE * 100} % incremental`, incremental)].join('\n') + '\n');
  if (JSON_OUT) {
    fs.mkdirSync(path.join(repoRoot, 'bench/out'), { recursive: true });
    fs.writeFileSync(path.join(repoRoot, 'bench/out/sync.json'), `${JSON.stringify({ change: CHANGE, full, incremental }, null, 2)}\n`);
  }
}

await main();
