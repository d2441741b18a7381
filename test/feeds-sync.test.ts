/**
 * `stella feeds sync` (issue 23, item 1) against loopback upstreams that speak
 * each real protocol (test/helpers/upstream.ts: NVD API 2.0, OSV's bucket,
 * CISA KEV, FIRST EPSS, ENISA EUVD; a real git repository for GHSA) over the
 * real records of ../shared/feeds and ../shared/feeds-extra, with injected
 * clocks: a first full sync fills the builder's layout with every record;
 * `stella ouk build --feeds DIR` (the real CLI) builds a kit of it; after the
 * upstreams change records (modified, withdrawn, Rejected, moved from
 * unreviewed to reviewed, deleted, a catalog entry added and one dropped) an
 * incremental sync fetches only those (requests counted at the servers);
 * faults (NVD's 503 page, rate-limit answers with its `message` header, a cut
 * connection, a refused key, a page that is not JSON, records that fail their
 * schema) are retried, reported or skipped; a sync killed twice (the real CLI,
 * SIGKILL) resumes without fetching again what it holds; air-gapped, it
 * refuses to start.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { syncSettings } from '../lib/config.ts';
import { failureOf, syncFeeds, type SyncEvent, type SyncResult, type SyncTuning } from '../publisher/sync/index.ts';
import { nvdPath } from '../publisher/sync/nvd.ts';
import { euvdTime } from '../publisher/sync/euvd.ts';
import { timeKey } from '../publisher/sync/times.ts';
import { ghsaPath } from '../publisher/sync/ghsa.ts';
import type { SourceReport } from '../publisher/sync/report.ts';
import { GhsaRepo, sharedGhsa, type GhsaAdvisory } from './helpers/upstream-git.ts';
import { nvd503, Upstream, type LoggedRequest } from './helpers/upstream.ts';
import { childBaseEnv, repoRoot, runStella, sharedDir, tmpDir } from './helpers/services.ts';
import { unpackKit } from './helpers/kit.ts';

type Json = Record<string, any>; // upstream records, edited in place

const DAY = 86_400_000;
/** The world's clock and the sync's: the first sync's day, then later ones. */
const T1 = new Date('2026-12-01T00:00:00.000Z');
const ECOSYSTEMS = ['AlmaLinux', 'Go', 'npm'];

let world: Upstream;
let repo: GhsaRepo;
let worldNow = T1;
/** The advisory GitHub holds unreviewed at first, and reviews between the syncs. */
let moved: GhsaAdvisory;
let unreviewedPath: string;

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { ...world.env(), GHSA_GIT_URL: repo.url, GHSA_UNREVIEWED: 'true', OSV_ECOSYSTEMS: ECOSYSTEMS.join(','), STELLA_SYNC_BACKOFF_MS: '5', STELLA_SYNC_ATTEMPTS: '4', ...extra };
}

async function sync(dir: string, o: { env?: Record<string, string>; sources?: Parameters<typeof syncFeeds>[0]['sources']; events?: SyncEvent[]; pageSize?: number; nvdWindowMs?: number; tuning?: SyncTuning } = {}): Promise<SyncResult> {
  return syncFeeds({
    out: dir,
    settings: syncSettings(env(o.env)),
    ...(o.sources ? { sources: o.sources } : {}),
    now: () => worldNow,
    tuning: { nvdWindowMs: o.nvdWindowMs ?? 300, nvdPageSize: o.pageSize ?? 1000, ...o.tuning },
    onEvent: (e) => o.events?.push(e),
    childEnv: process.env,
  });
}

function report(r: SyncResult, source: SourceReport['source']): SourceReport {
  const x = r.reports.find((y) => y.source === source);
  assert.ok(x, `a report of ${source}`);
  return x;
}

/** The requests the world got after `mark` (an index into its log). */
function since(mark: number, service?: LoggedRequest['service']): LoggedRequest[] {
  return world.log.slice(mark).filter((r) => !service || r.service === service);
}

function countFiles(dir: string, suffix = '.json'): number {
  if (!fs.existsSync(dir)) return 0;
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(suffix) && !f.includes(`${path.sep}.`) && !f.startsWith('.')).length;
}

function readJson(file: string): Json {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
}

const sortedIds = (m: Map<string, unknown>): string[] => [...m.keys()].sort();

before(async () => {
  world = await Upstream.start({ now: () => worldNow, osvEcosystems: ECOSYSTEMS });
  const all = await sharedGhsa();
  moved = all.find((a) => a.id === 'GHSA-22c5-cpvr-cfvq')!;
  unreviewedPath = moved.path.replace('/github-reviewed/', '/unreviewed/');
  repo = await GhsaRepo.create('sync', all.filter((a) => a !== moved));
  // GitHub holds one advisory unreviewed (as advisories/unreviewed/ files are: github_reviewed false)
  const rec = JSON.parse(fs.readFileSync(path.join(sharedDir, 'feeds/ghsa', `${moved.id}.json`), 'utf8')) as Json;
  rec.database_specific = { ...rec.database_specific, github_reviewed: false, github_reviewed_at: null };
  await repo.write(unreviewedPath, JSON.stringify(rec, null, 2));
  await repo.commit(`${moved.id} published unreviewed`);
});

after(async () => {
  await world?.close();
});

describe('a first full sync, a kit from it, then an incremental sync', () => {
  const dir = () => path.join(base, 'feeds');
  let base: string;
  let first: SyncResult;

  before(async () => {
    base = tmpDir('feeds-sync');
    const mark = world.log.length;
    first = await sync(dir());
    assert.ok(first.ok, JSON.stringify(first.reports.filter((r) => r.status !== 'ok')));
    assert.ok(since(mark).length > 0);
  });

  test('NVD: every CVE paged by startIndex, one file a CVE, in the layout the builder reads', () => {
    const nvd = report(first, 'nvd');
    assert.equal(nvd.requests, Math.ceil(world.nvd.size / 1000), 'one request a page of 1,000, no date window on a first run');
    assert.deepEqual([nvd.fetched, nvd.added, nvd.skipped], [world.nvd.size, world.nvd.size, 0]);
    const asked = world.requests('nvd').slice(0, nvd.requests).map((r) => new URLSearchParams(r.query));
    assert.deepEqual(asked.map((q) => q.get('startIndex')), ['0', '1000', '2000']);
    assert.ok(asked.every((q) => q.get('resultsPerPage') === '1000' && !q.has('lastModStartDate')));
    assert.equal(countFiles(path.join(dir(), 'nvd')), world.nvd.size);
    const id = sortedIds(world.nvd)[7]!;
    assert.deepEqual(readJson(path.join(dir(), 'nvd', nvdPath(id))), { cve: world.nvd.get(id) });
    // the watermark: the server's page timestamp, an hour back
    assert.equal(nvd.watermark, new Date(T1.getTime() - 3_600_000).toISOString());
  });

  test('OSV: all.zip per ecosystem with the head of modified_id.csv as the watermark; ids with ":" kept', () => {
    const osv = report(first, 'osv');
    const total = ECOSYSTEMS.reduce((n, e) => n + world.osv.get(e)!.size, 0);
    assert.deepEqual([osv.fetched, osv.added, osv.skipped], [total, total, 0]);
    assert.equal(osv.requests, ECOSYSTEMS.length * 2, 'per ecosystem: modified_id.csv (its head) and all.zip');
    for (const eco of ECOSYSTEMS) {
      assert.equal(countFiles(path.join(dir(), 'osv', eco)), world.osv.get(eco)!.size, eco);
      const newest = [...world.osv.get(eco)!.values()].map((t) => (JSON.parse(t) as Json).modified as string).sort().at(-1)!;
      assert.equal(Date.parse((osv.watermark as Record<string, string>)[eco]!), Date.parse(newest), `${eco}'s watermark is its newest record`);
    }
    const alma = sortedIds(world.osv.get('AlmaLinux')!).find((i) => i.includes(':'))!;
    assert.equal(fs.readFileSync(path.join(dir(), 'osv/AlmaLinux', `${alma}.json`), 'utf8'), world.osv.get('AlmaLinux')!.get(alma));
    assert.equal(fs.readdirSync(path.join(dir(), '.sync/osv')).length, 0, 'the archives are deleted once read');
  });

  test('GHSA: the repository fetched once with git, every advisory one file named by its id', async () => {
    const ghsa = report(first, 'ghsa');
    const advisories = (await sharedGhsa()).length;
    assert.deepEqual([ghsa.requests, ghsa.fetched, ghsa.added, ghsa.skipped], [1, advisories, advisories, 0]);
    assert.equal(countFiles(path.join(dir(), 'ghsa')), advisories);
    assert.equal(ghsa.watermark, (await repo.git(['rev-parse', 'HEAD'])).trim());
    assert.equal(readJson(path.join(dir(), 'ghsa', ghsaPath(moved.id))).database_specific.github_reviewed, false);
  });

  test('KEV, EPSS and EUVD: the files as published, EUVD normalised; state.json holds every watermark', () => {
    const kev = report(first, 'kev');
    assert.deepEqual([kev.requests, kev.fetched, kev.added, kev.watermark], [1, 1404, 1404, '2025.08.25']);
    assert.ok(fs.readFileSync(path.join(dir(), 'kev/known_exploited_vulnerabilities.json')).equals(world.kev));
    const epss = report(first, 'epss');
    assert.deepEqual([epss.requests, epss.fetched, epss.added, epss.watermark], [1, 313_089, 313_089, '2026-01-30']);
    assert.deepEqual(fs.readdirSync(path.join(dir(), 'epss')), ['epss_scores-2026-01-30.csv.gz']);
    assert.ok(fs.readFileSync(path.join(dir(), 'epss/epss_scores-2026-01-30.csv.gz')).equals(world.epss));
    const euvd = report(first, 'euvd');
    const exploited = [...world.euvd.values()].filter((i) => typeof i.exploitedSince === 'string');
    const file = readJson(path.join(dir(), 'euvd/exploited.json'));
    assert.deepEqual(file.items.map((i: Json) => i.id), exploited.map((i) => i.id).sort());
    const one = file.items.find((i: Json) => i.id === 'EUVD-2026-38110');
    assert.deepEqual([one.exploitedSince, one.aliases], ['2026-07-06', ['GHSA-8fwr-8fxr-8v2p', 'CVE-2026-48908']]);
    const aliases = readJson(path.join(dir(), 'euvd/aliases.json')).records as Record<string, Json>;
    assert.deepEqual(Object.keys(aliases).sort(), sortedIds(world.euvd), 'every EUVD id, walked by yearly date windows');
    assert.deepEqual(aliases['EUVD-2025-11154'], { aliases: ['CVE-2025-3675'], updated: '2025-04-16T07:00:16.000Z' });
    assert.equal(euvd.watermark, '2026-12-01');
    const state = readJson(path.join(dir(), '.sync/state.json'));
    for (const s of ['nvd', 'osv', 'ghsa', 'kev', 'epss', 'euvd']) {
      assert.ok(state.sources[s].watermark, `${s} has a watermark`);
      assert.equal(state.sources[s].cursor, null, `${s} finished`);
      assert.equal(state.sources[s].lastSuccess, T1.toISOString());
    }
    assert.ok(!fs.existsSync(path.join(dir(), '.sync/lock')), 'the lock is released');
  });

  test('stella ouk build --feeds DIR (the real CLI) builds a kit of the synced directory', async () => {
    const work = tmpDir('feeds-sync-kit');
    const cliEnv = childBaseEnv();
    const keygen = await runStella(['ouk', 'keygen', '--out-dir', path.join(work, 'keys')], { cwd: work, env: cliEnv });
    assert.equal(keygen.code, 0, keygen.stderr);
    const out = path.join(work, 'stella-ouk-2026-12-01.tar.gz');
    const build = await runStella(['ouk', 'build', '--feeds', dir(), '--key', path.join(work, 'keys/cosign.key'), '--out', out, '--version', '2026-12-01'], { cwd: work, env: cliEnv });
    assert.equal(build.code, 0, build.stderr);
    assert.doesNotMatch(build.stderr, /warning: skipped/, 'the builder accepts every record the sync wrote');
    const manifest = readJson(path.join(await unpackKit(out, tmpDir('feeds-sync-unpacked')), 'manifest.json'));
    const feeds = Object.fromEntries((manifest.feeds as Json[]).map((f) => [f.name, f]));
    const exploitedCves = new Set(readJson(path.join(dir(), 'euvd/exploited.json')).items.flatMap((i: Json) => i.aliases.filter((a: string) => a.startsWith('CVE-'))));
    assert.deepEqual(
      Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, [(f as Json).records, (f as Json).skipped]])),
      {
        nvd: [world.nvd.size, 0],
        osv: [report(first, 'osv').added, 0],
        ghsa: [report(first, 'ghsa').added, 0],
        kev: [1404, 0],
        epss: [313_089, 0],
        euvd: [exploitedCves.size, 0],
      },
    );
    assert.ok((manifest.members as Json[]).some((m) => String(m.path).startsWith('db/euvd_kev.tsv')), 'ENISA\'s exploited list is carried beside CISA\'s');
  });

  test('after the upstreams change, an incremental sync fetches only what changed', async () => {
    const T2 = new Date(T1.getTime() + 2 * DAY);
    const changedAt = new Date(T1.getTime() + DAY);
    // NVD: one CVE edited, one Rejected
    const [a, b] = sortedIds(world.nvd).filter((id) => world.nvd.get(id)!.vulnStatus !== 'Rejected');
    const edited = structuredClone(world.nvd.get(a!)!) as Json;
    edited.descriptions[0].value += ' (edited upstream)';
    world.putNvd(edited, changedAt);
    world.putNvd({ ...world.nvd.get(b!)!, vulnStatus: 'Rejected' }, changedAt);
    // OSV: a Go record edited, an npm record withdrawn
    const goId = sortedIds(world.osv.get('Go')!)[3]!;
    const npmId = sortedIds(world.osv.get('npm')!).find((i) => !(JSON.parse(world.osv.get('npm')!.get(i)!) as Json).withdrawn)!;
    world.putOsv('Go', { ...(JSON.parse(world.osv.get('Go')!.get(goId)!) as Json), summary: 'edited upstream' }, changedAt);
    world.putOsv('npm', { ...(JSON.parse(world.osv.get('npm')!.get(npmId)!) as Json), withdrawn: changedAt.toISOString() }, changedAt);
    // GHSA: one advisory edited, the unreviewed one reviewed (moved), one deleted
    const all = (await sharedGhsa()).filter((x) => x.id !== moved.id);
    const [editedGhsa, deletedGhsa] = [all[10]!, all[11]!];
    const ed = JSON.parse(await repo.read(editedGhsa.path)) as Json;
    ed.summary = `${ed.summary} (edited upstream)`;
    ed.modified = changedAt.toISOString();
    await repo.write(editedGhsa.path, JSON.stringify(ed, null, 2));
    await repo.move(unreviewedPath, moved.path);
    await repo.write(moved.path, fs.readFileSync(path.join(sharedDir, 'feeds/ghsa', `${moved.id}.json`), 'utf8'));
    await repo.remove(deletedGhsa.path);
    await repo.commit('review, edit, delete');
    // KEV: CISA drops one entry and adds another
    const catalog = JSON.parse(world.kev.toString('utf8')) as Json;
    const dropped = catalog.vulnerabilities.shift().cveID as string;
    catalog.vulnerabilities.push({ ...catalog.vulnerabilities[0], cveID: 'CVE-2024-38355', dateAdded: '2026-12-02', dueDate: '2026-12-23' });
    catalog.catalogVersion = '2026.12.02';
    catalog.dateReleased = '2026-12-02T15:00:00.0000Z';
    world.kev = Buffer.from(JSON.stringify(catalog));
    world.kevModified = new Date(T1.getTime() + 1.5 * DAY);
    // EUVD: ENISA adds one record to its exploited list
    const newlyExploited = [...world.euvd.values()].find((i) => typeof i.exploitedSince !== 'string')!;
    newlyExploited.exploitedSince = 'Dec 1, 2026, 12:00:00 AM';
    worldNow = T2;

    const mark = world.log.length;
    const r = await sync(dir());
    assert.ok(r.ok, JSON.stringify(r.reports.filter((x) => x.status !== 'ok')));

    const nvd = report(r, 'nvd');
    const nvdAsked = since(mark, 'nvd').map((x) => new URLSearchParams(x.query));
    assert.equal(nvdAsked.length, 1, 'one window, one page');
    assert.equal(nvdAsked[0]!.get('lastModStartDate'), new Date(T1.getTime() - 3_600_000).toISOString().slice(0, 23) + '+00:00');
    assert.equal(nvdAsked[0]!.get('lastModEndDate'), T2.toISOString().slice(0, 23) + '+00:00');
    assert.deepEqual([nvd.fetched, nvd.modified, nvd.withdrawn, nvd.added], [2, 1, 1, 0]);
    assert.equal(countFiles(path.join(dir(), 'nvd')), world.nvd.size, 'an update replaces the CVE\'s file: no second copy');
    assert.match(readJson(path.join(dir(), 'nvd', nvdPath(a!))).cve.descriptions[0].value, /\(edited upstream\)$/);
    assert.equal(readJson(path.join(dir(), 'nvd', nvdPath(b!))).cve.vulnStatus, 'Rejected');

    const osv = report(r, 'osv');
    const osvAsked = since(mark, 'osv').map((x) => x.path).sort();
    assert.deepEqual(osvAsked, [`/osv/Go/${goId}.json`, '/osv/Go/modified_id.csv', '/osv/AlmaLinux/modified_id.csv', `/osv/npm/${npmId}.json`, '/osv/npm/modified_id.csv'].sort());
    assert.deepEqual([osv.fetched, osv.modified, osv.withdrawn, osv.added], [2, 1, 1, 0]);
    assert.equal(readJson(path.join(dir(), 'osv/npm', `${npmId}.json`)).withdrawn, changedAt.toISOString());

    const ghsa = report(r, 'ghsa');
    assert.deepEqual([ghsa.requests, ghsa.fetched, ghsa.modified, ghsa.removed, ghsa.added], [1, 2, 2, 1, 0]);
    assert.equal(readJson(path.join(dir(), 'ghsa', ghsaPath(moved.id))).database_specific.github_reviewed, true, 'reviewed: the same record, now GitHub-reviewed');
    assert.ok(!fs.existsSync(path.join(dir(), 'ghsa', ghsaPath(deletedGhsa.id))));
    assert.equal(countFiles(path.join(dir(), 'ghsa')), all.length + 1 - 1);

    const kev = report(r, 'kev');
    assert.deepEqual([kev.requests, kev.added, kev.withdrawn, kev.modified, kev.watermark], [1, 1, 1, 0, '2026.12.02']);
    assert.ok(!JSON.stringify(readJson(path.join(dir(), 'kev/known_exploited_vulnerabilities.json'))).includes(`"${dropped}"`));
    const epss = report(r, 'epss');
    assert.deepEqual([epss.requests, epss.fetched, since(mark, 'epss')[0]!.status], [1, 0, 304], 'an unchanged EPSS file costs one request and no body');
    const euvd = report(r, 'euvd');
    assert.deepEqual([euvd.requests, euvd.added, euvd.watermark], [2, 1, '2026-12-03'], 'the exploited list and one window from the day before the watermark');
    assert.ok(readJson(path.join(dir(), 'euvd/exploited.json')).items.some((i: Json) => i.id === newlyExploited.id && i.exploitedSince === '2026-12-01'));

    // nothing changed since: every source asks once and writes nothing
    worldNow = new Date(T2.getTime() + 3_600_000);
    const mark2 = world.log.length;
    const again = await sync(dir());
    assert.ok(again.ok);
    for (const x of again.reports) assert.deepEqual([x.source, x.added, x.modified, x.withdrawn, x.removed], [x.source, 0, 0, 0, 0]);
    assert.equal(since(mark2, 'kev')[0]!.status, 304);
    assert.deepEqual(
      Object.fromEntries(again.reports.map((x) => [x.source, x.requests])),
      { nvd: 1, osv: ECOSYSTEMS.length, ghsa: 1, kev: 1, epss: 1, csaf: 0, euvd: 2 },
    );
  });
});

describe('faults: retried, reported, skipped', () => {
  test("NVD's 503 page, a rate-limit 403 with its message header and a cut connection are retried; the notices carry NVD's reason", async () => {
    const dir = tmpDir('sync-retries');
    world.faults.push(nvd503(2, (pq) => pq.includes('startIndex=0')));
    world.faults.push({ service: 'nvd', times: 1, status: 403, headers: { message: 'Request rate limit exceeded, wait and retry.' }, match: (pq) => pq.includes('startIndex=0') });
    world.faults.push({ service: 'nvd', times: 1, cutAfter: 5000, match: (pq) => pq.includes('startIndex=1000') });
    const events: SyncEvent[] = [];
    const mark = world.log.length;
    const r = await sync(dir, { sources: ['nvd'], events });
    assert.ok(r.ok, JSON.stringify(r.reports));
    const nvd = report(r, 'nvd');
    assert.equal(nvd.requests, 3 + 4);
    assert.equal(since(mark, 'nvd').length, 7);
    assert.equal(nvd.added, world.nvd.size);
    const notices = events.flatMap((e) => (e.kind === 'retry' ? [e.notice] : []));
    assert.deepEqual(notices.map((n) => n.status ?? 'cut'), [503, 503, 403, 'cut']);
    assert.match(notices[0]!.message!, /503 Service Unavailable.*No server is available/);
    assert.equal(notices[2]!.message, 'Request rate limit exceeded, wait and retry.');
    assert.ok(notices.every((n) => n.delayMs > 0), 'with a backoff');
  });

  test("pacing keeps to NVD's published limit: 5 requests a rolling window without a key, none refused", async () => {
    const dir = tmpDir('sync-pacing');
    // the server counts a little shorter a window than the client paces to: loopback jitter is not a fault
    world.nvdRateLimit = { limit: 5, windowMs: 350, message: 'rate limit' };
    try {
      const mark = world.log.length;
      const r = await sync(dir, { sources: ['nvd'], pageSize: 200, nvdWindowMs: 400 });
      assert.ok(r.ok, JSON.stringify(r.reports));
      const asked = since(mark, 'nvd');
      assert.equal(asked.length, Math.ceil(world.nvd.size / 200));
      assert.deepEqual(asked.filter((x) => x.status !== 200), [], 'no request over the limit');
    } finally {
      world.nvdRateLimit = null;
    }
  });

  test('a refused key, an upstream down for good, and an answer that is not JSON end the source with their code; the others sync', async () => {
    world.nvdApiKey = 'the-right-key';
    try {
      const dir = tmpDir('sync-refused');
      const r = await sync(dir, { sources: ['nvd', 'kev'], env: { NVD_API_KEY: 'a-wrong-key' } });
      assert.equal(r.ok, false);
      const nvd = report(r, 'nvd');
      assert.equal(nvd.error?.code, 'UPSTREAM_REJECTED');
      assert.match(nvd.error!.message, /HTTP 404 \(message: Invalid apiKey\.\)/);
      assert.equal(world.requests('nvd').at(-1)!.apiKey, 'a-wrong-key', 'the key goes in the apiKey header');
      assert.equal(report(r, 'kev').status, 'ok');
      assert.equal(failureOf(r)?.code, 'UPSTREAM_REJECTED');
      const state = readJson(path.join(dir, '.sync/state.json'));
      assert.deepEqual([state.sources.nvd.watermark, state.sources.nvd.lastError.code], [null, 'UPSTREAM_REJECTED']);
    } finally {
      world.nvdApiKey = null;
    }
    const down = tmpDir('sync-down');
    world.faults.push(nvd503(4));
    const r2 = await sync(down, { sources: ['nvd'] });
    assert.equal(report(r2, 'nvd').error?.code, 'UPSTREAM_UNAVAILABLE');
    assert.match(report(r2, 'nvd').error!.message, /after 4 tries \(last: HTTP 503, message: .*No server is available/);
    assert.equal(countFiles(path.join(down, 'nvd')), 0);
    world.faults.push({ service: 'nvd', times: 1, status: 200, body: '<html><body>Maintenance</body></html>', headers: { 'content-type': 'text/html' } });
    const r3 = await sync(tmpDir('sync-html'), { sources: ['nvd'] });
    assert.equal(report(r3, 'nvd').error?.code, 'UPSTREAM_INVALID');
    assert.match(report(r3, 'nvd').error!.message, /not JSON.*Maintenance/);
  });

  test('NVD lowering resultsPerPage (its 404 message) is followed; records that fail their schema are skipped and listed, never written', async () => {
    const dir = tmpDir('sync-skips');
    world.faults.push({ service: 'nvd', times: 1, status: 404, headers: { message: 'resultsPerPage parameter cannot exceed 500.' } });
    const goodNvd = sortedIds(world.nvd)[0]!;
    const badCve = { ...world.nvd.get(goodNvd)!, id: 'CVE-2026-0000001', metrics: 'not an object' };
    world.putNvd(badCve, new Date(T1.getTime() - DAY));
    const goId = sortedIds(world.osv.get('Go')!)[0]!;
    const badOsv = { ...(JSON.parse(world.osv.get('Go')!.get(goId)!) as Json), id: 'GO-2099-0001', affected: [{ package: { ecosystem: 'Go', name: 'x' }, ranges: [{ type: 'BOGUS', events: [] }] }] };
    world.putOsv('Go', badOsv, new Date(T1.getTime() - DAY));
    try {
      const events: SyncEvent[] = [];
      const r = await sync(dir, { sources: ['nvd', 'osv'], env: { OSV_ECOSYSTEMS: 'Go' }, events, pageSize: 2000 });
      assert.ok(r.ok, JSON.stringify(r.reports));
      const nvd = report(r, 'nvd');
      assert.deepEqual(nvd.skippedRecords, [{ id: 'CVE-2026-0000001', reason: 'cve.metrics is a string, not an object' }]);
      assert.equal(nvd.added, world.nvd.size - 1);
      assert.ok(!fs.existsSync(path.join(dir, 'nvd', nvdPath('CVE-2026-0000001'))));
      assert.ok(nvd.notes.some((n) => /allows 500 results a page/.test(n)));
      assert.ok(world.requests('nvd').slice(-Math.ceil(world.nvd.size / 500)).every((x) => x.query.includes('resultsPerPage=500')));
      const osv = report(r, 'osv');
      assert.deepEqual(osv.skippedRecords, [{ id: 'Go/GO-2099-0001', reason: 'affected[0].ranges[0].type "BOGUS" is not SEMVER, ECOSYSTEM or GIT' }]);
      assert.ok(!fs.existsSync(path.join(dir, 'osv/Go/GO-2099-0001.json')));
    } finally {
      world.nvd.delete('CVE-2026-0000001');
      world.removeOsv('Go', 'GO-2099-0001');
    }
  });

  test('an all.zip cut mid-body is continued with a Range request, not downloaded again', async () => {
    const dir = tmpDir('sync-range');
    const part = path.join(dir, '.sync/osv/Go.all.zip.part');
    // 20,000 bytes sent; once the client has them on disk, the connection is cut
    world.faults.push({
      service: 'osv',
      times: 1,
      holdAfter: 20_000,
      match: (pq) => pq.endsWith('/Go/all.zip'),
      onHold: (cut) => {
        const poll = (): void => (fs.existsSync(part) && fs.statSync(part).size === 20_000 ? cut() : void setTimeout(poll, 10));
        poll();
      },
    });
    const mark = world.log.length;
    const r = await sync(dir, { sources: ['osv'], env: { OSV_ECOSYSTEMS: 'Go' } });
    assert.ok(r.ok, JSON.stringify(r.reports));
    const zips = since(mark, 'osv').filter((x) => x.path === '/osv/Go/all.zip');
    assert.deepEqual(zips.map((x) => [x.status, x.range]), [[200, null], [206, 'bytes=20000-']]);
    assert.equal(report(r, 'osv').added, world.osv.get('Go')!.size);
  });

  test('GHSA: a repository git cannot fetch is UPSTREAM_UNAVAILABLE after the tries', async () => {
    const r = await sync(tmpDir('sync-nogit'), { sources: ['ghsa'], env: { GHSA_GIT_URL: `file://${tmpDir('no-repo')}/missing.git`, STELLA_SYNC_ATTEMPTS: '2' } });
    const ghsa = report(r, 'ghsa');
    assert.deepEqual([ghsa.status, ghsa.error?.code, ghsa.requests], ['failed', 'UPSTREAM_UNAVAILABLE', 2]);
    assert.match(ghsa.error!.message, /missing\.git/);
  });
});

describe('protocol details, on the real samples of ../shared/upstream', () => {
  test("OSV's RFC 3339 times of every width compare in their file's order; EUVD's display dates read as UTC", () => {
    for (const f of ['modified_id.top-level.head3.csv', 'modified_id.per-ecosystem.2lines.csv']) {
      const keys = fs.readFileSync(path.join(sharedDir, 'upstream/osv', f), 'utf8').trim().split('\n').map((l) => timeKey(l.split(',')[0]));
      assert.ok(keys.every((k) => k !== null), f);
      for (let i = 1; i < keys.length; i++) assert.ok(keys[i - 1]! > keys[i]!, `${f}: newest first, line ${i + 1}`);
    }
    assert.ok(timeKey('2026-04-30T15:32:51.46441Z')! > timeKey('2026-04-30T15:32:51.4644Z')!, 'more digits, later: not a string comparison of the raw text');
    assert.equal(timeKey('2026-04-30T15:32:51Z'), timeKey('2026-04-30T15:32:51.000000000Z'));
    const dates: unknown[] = [];
    for (const f of fs.readdirSync(path.join(sharedDir, 'upstream/euvd')).filter((n) => n.endsWith('.json'))) {
      JSON.stringify(JSON.parse(fs.readFileSync(path.join(sharedDir, 'upstream/euvd', f), 'utf8')), (k, v: unknown) => {
        if (['datePublished', 'dateUpdated', 'exploitedSince', 'dataProcessed'].includes(k)) dates.push(v);
        return v;
      });
    }
    assert.ok(dates.length > 20);
    for (const d of dates) assert.equal(euvdTime(d), new Date(`${String(d).replace(/, (\d{4}),/, ' $1')} UTC`).toISOString(), String(d));
    assert.equal(euvdTime('Apr 16, 2025, 7:00:16 AM'), '2025-04-16T07:00:16.000Z');
    assert.equal(euvdTime('Jul 9, 2026, 12:57:48 PM'), '2026-07-09T12:57:48.000Z');
    assert.equal(euvdTime('Jul 9, 2026, 12:07:48 AM'), '2026-07-09T00:07:48.000Z');
  });

  test("EPSS: vunnel's broken days are refused (the day held stays), its good one with a +0000 date is taken; an older day is not written", async () => {
    const dir = tmpDir('sync-epss');
    const saved = world.epss;
    const serve = (file: string): void => {
      world.epss = gzipSync(fs.readFileSync(path.join(sharedDir, 'upstream/epss', file)));
      world.epssModified = new Date(world.epssModified.getTime() + 1000);
    };
    try {
      serve('vunnel-example-1.csv');
      const ok = report(await sync(dir, { sources: ['epss'] }), 'epss');
      assert.deepEqual([ok.status, ok.fetched, ok.watermark], ['ok', 5, '2025-02-20']);
      for (const [file, why] of [['vunnel-invalid-header.csv', /header is not "cve,epss,percentile"/], ['vunnel-missing-date.csv', /no score_date/]] as const) {
        serve(file);
        const bad = report(await sync(dir, { sources: ['epss'] }), 'epss');
        assert.equal(bad.error?.code, 'UPSTREAM_INVALID', file);
        assert.match(bad.error!.message, why);
        assert.deepEqual(fs.readdirSync(path.join(dir, 'epss')), ['epss_scores-2025-02-20.csv.gz'], 'the day held is kept');
      }
      world.epss = saved;
      world.epssModified = new Date(world.epssModified.getTime() + 1000);
      const newer = report(await sync(dir, { sources: ['epss'] }), 'epss');
      // vunnel's day held CVE-1999-0001..0005: the new day adds every other CVE and rescores or keeps those five
      assert.deepEqual([newer.watermark, newer.added, newer.modified + newer.unchanged, newer.withdrawn], ['2026-01-30', 313_089 - 5, 5, 0]);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'epss')), ['epss_scores-2026-01-30.csv.gz'], 'the new day replaces the old');
      serve('vunnel-example-1.csv');
      const older = report(await sync(dir, { sources: ['epss'] }), 'epss');
      assert.ok(older.notes.some((n) => /older than the 2026-01-30 held/.test(n)));
      assert.deepEqual(fs.readdirSync(path.join(dir, 'epss')), ['epss_scores-2026-01-30.csv.gz']);
    } finally {
      world.epss = saved;
    }
  });

  test("KEV: vunnel's trimmed real catalog (count 1273, 3 entries) is taken as it is", async () => {
    const saved = world.kev;
    try {
      world.kev = fs.readFileSync(path.join(sharedDir, 'upstream/kev/known_exploited_vulnerabilities.vunnel-fixture.json'));
      const kev = report(await sync(tmpDir('sync-kev'), { sources: ['kev'] }), 'kev');
      assert.deepEqual([kev.status, kev.fetched, kev.added, kev.watermark], ['ok', 3, 3, '2025.02.19']);
    } finally {
      world.kev = saved;
    }
  });

  test('NVD: a watermark 300 days old is caught up in windows of at most 120 days, back to back', async () => {
    const dir = tmpDir('sync-windows');
    const saved = worldNow;
    try {
      assert.ok((await sync(dir, { sources: ['nvd'] })).ok);
      const wm = readJson(path.join(dir, '.sync/state.json')).sources.nvd.watermark as string;
      worldNow = new Date(saved.getTime() + 300 * DAY);
      const mark = world.log.length;
      const r = await sync(dir, { sources: ['nvd'] });
      assert.ok(r.ok, JSON.stringify(r.reports));
      const windows = since(mark, 'nvd').map((x) => new URLSearchParams(x.query)).map((q) => [q.get('lastModStartDate'), q.get('lastModEndDate')]);
      const at = (ms: number): string => `${new Date(ms).toISOString().slice(0, 23)}+00:00`;
      const w = Date.parse(wm);
      assert.deepEqual(windows, [
        [at(w), at(w + 120 * DAY)],
        [at(w + 120 * DAY), at(w + 240 * DAY)],
        [at(w + 240 * DAY), at(worldNow.getTime())],
      ]);
    } finally {
      worldNow = saved;
    }
  });

  test('EUVD: a date window holding more results than the cap is split until each fits; every id is found', async () => {
    const dir = tmpDir('sync-euvd-split');
    const mark = world.log.length;
    const r = await sync(dir, { sources: ['euvd'], tuning: { euvdWindowCap: 1, euvdPageSize: 1 } });
    assert.ok(r.ok, JSON.stringify(r.reports));
    assert.deepEqual(Object.keys(readJson(path.join(dir, 'euvd/aliases.json')).records).sort(), sortedIds(world.euvd));
    const windows = since(mark, 'euvd').map((x) => new URLSearchParams(x.query)).filter((q) => q.has('fromDate'));
    const days = (q: URLSearchParams): number => (Date.parse(q.get('toDate')!) - Date.parse(q.get('fromDate')!)) / DAY;
    assert.ok(windows.some((q) => days(q) < 360), 'some windows were split');
    // a window is paged only when it fits the cap (one result) or is a single day
    for (const q of windows.filter((x) => x.get('page') !== '0')) assert.ok(days(q) === 0, `${q.toString()} is paged`);
  });

  test('an all.zip entry larger than a record may be is skipped and listed; the others are written', async () => {
    const big = { ...(JSON.parse(world.osv.get('Go')!.values().next().value!) as Json), id: 'GO-2099-9999', details: 'x'.repeat(17 * 1024 * 1024) };
    world.putOsv('Go', big, new Date(T1.getTime() - DAY));
    try {
      const r = await sync(tmpDir('sync-big'), { sources: ['osv'], env: { OSV_ECOSYSTEMS: 'Go' } });
      const osv = report(r, 'osv');
      assert.equal(osv.status, 'ok');
      assert.deepEqual(osv.skippedRecords.map((x) => x.id), ['Go/GO-2099-9999']);
      assert.match(osv.skippedRecords[0]!.reason, /more than a record may have \(16777216\)/);
      assert.equal(osv.added, world.osv.get('Go')!.size - 1);
    } finally {
      world.removeOsv('Go', 'GO-2099-9999');
    }
  });
});

describe('the real CLI', () => {
  test('a sync killed twice (SIGKILL) resumes from its cursor: no page, no archive byte fetched again', async () => {
    const dir = tmpDir('sync-killed');
    const cliEnv = childBaseEnv({ ...env({ OSV_ECOSYSTEMS: 'Bitnami,Go' }), STELLA_SYNC_BACKOFF_MS: '5' });
    world.osv.set('Bitnami', new Map());
    for (const f of fs.readdirSync(path.join(sharedDir, 'feeds/osv/Bitnami'))) {
      const rec = readJson(path.join(sharedDir, 'feeds/osv/Bitnami', f));
      world.osv.get('Bitnami')!.set(rec.id, JSON.stringify(rec));
    }
    /** Runs the CLI until the world holds a response (then SIGKILL), or to its end. */
    const run = (args: string[], holdWhen?: () => Promise<void>): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(repoRoot, 'bin/stella.js'), 'feeds', 'sync', '--out', dir, ...args], { cwd: dir, env: cliEnv });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
        if (holdWhen) holdWhen().then(() => child.kill('SIGKILL'), reject);
      });
    const held = (fault: Parameters<typeof world.faults.push>[0], ready: () => boolean): (() => Promise<void>) => () =>
      new Promise<void>((resolve) => {
        fault.onHold = () => {
          const poll = (): void => (ready() ? resolve() : void setTimeout(poll, 20));
          poll();
        };
        world.faults.push(fault);
      });

    // 1. killed while NVD sends its second page: the first is written, the cursor saved
    const page2 = { service: 'nvd' as const, times: 1, holdAfter: 1000, match: (pq: string) => pq.includes('startIndex=2000') };
    const stateFile = path.join(dir, '.sync/state.json');
    const cursorAt = (n: number) => () => fs.existsSync(stateFile) && readJson(stateFile).sources.nvd?.cursor?.startIndex === n;
    const m1 = world.log.length;
    const run1 = await run(['--source', 'nvd,osv'], held(page2, cursorAt(2000)));
    assert.equal(run1.signal, 'SIGKILL');
    assert.deepEqual(since(m1, 'nvd').map((x) => new URLSearchParams(x.query).get('startIndex')), ['0', '2000']);
    assert.equal(countFiles(path.join(dir, 'nvd')), 2000);
    assert.ok(fs.existsSync(path.join(dir, '.sync/lock')), 'the killed sync left its lock');

    // 2. the next run continues at startIndex 2000, then is killed while Go's all.zip is half sent
    const zipPart = path.join(dir, '.sync/osv/Go.all.zip.part');
    const half = { service: 'osv' as const, times: 1, holdAfter: 30_000, match: (pq: string) => pq.endsWith('/Go/all.zip') };
    const m2 = world.log.length;
    const run2 = await run(['--source', 'nvd,osv'], held(half, () => fs.existsSync(zipPart) && fs.statSync(zipPart).size === 30_000));
    assert.equal(run2.signal, 'SIGKILL');
    assert.deepEqual(since(m2, 'nvd').map((x) => new URLSearchParams(x.query).get('startIndex')), ['2000'], 'the held page is not asked for again');
    assert.deepEqual(since(m2, 'osv').map((x) => x.path), ['/osv/Bitnami/modified_id.csv', '/osv/Bitnami/all.zip', '/osv/Go/modified_id.csv', '/osv/Go/all.zip']);

    // 3. the last run takes the stale lock over, asks Go's archive from byte 30,000 and ends
    const m3 = world.log.length;
    const run3 = await run(['--source', 'nvd,osv', '--json']);
    assert.equal(run3.code, 0, run3.stderr);
    // NVD's walk is done: from here on it asks only lastModified windows (up to this machine's now)
    assert.ok(since(m3, 'nvd').every((x) => new URLSearchParams(x.query).has('lastModStartDate')));
    assert.deepEqual(since(m3, 'osv').map((x) => [x.path, x.status, x.range]), [
      ['/osv/Bitnami/modified_id.csv', 200, null],
      ['/osv/Go/all.zip', 206, 'bytes=30000-'],
    ], 'Bitnami is incremental; Go continues its archive');
    const out = JSON.parse(run3.stdout) as { ok: boolean; sources: SourceReport[] };
    assert.equal(out.ok, true);
    const osv = out.sources.find((s) => s.source === 'osv')!;
    assert.deepEqual(Object.keys(osv).sort(), ['added', 'fetched', 'modified', 'notes', 'removed', 'requests', 'seconds', 'skipped', 'skippedRecords', 'source', 'status', 'unchanged', 'watermark', 'withdrawn']);
    assert.deepEqual([osv.requests, osv.added], [2, world.osv.get('Go')!.size]);
    assert.ok(osv.notes.some((n) => /Go\/all\.zip continued from byte 30000/.test(n)));
    assert.equal(countFiles(path.join(dir, 'nvd')), world.nvd.size);
    assert.equal(countFiles(path.join(dir, 'osv/Go')), world.osv.get('Go')!.size);
    assert.equal(countFiles(path.join(dir, 'osv/Bitnami')), world.osv.get('Bitnami')!.size);
    assert.ok(!fs.existsSync(path.join(dir, '.sync/lock')));
    world.osv.delete('Bitnami');
  });

  test('air-gapped (STELLA_AIRGAP=true) it refuses to start (AIRGAP_VIOLATION, not one request, nothing written); a bad --source is USAGE; a failing source exits with its code after the others synced', async () => {
    const dir = path.join(tmpDir('sync-airgap'), 'feeds');
    const mark = world.log.length;
    const r = await runStella(['feeds', 'sync', '--out', dir], { cwd: path.dirname(dir), env: childBaseEnv({ ...env(), STELLA_AIRGAP: 'true' }) });
    assert.equal(r.code, 56, r.stderr);
    assert.match(r.stderr, /^error\[AIRGAP_VIOLATION\]: stella feeds sync .* belongs on the connected \(publishing\) side/);
    assert.equal(world.log.length, mark);
    assert.ok(!fs.existsSync(dir));
    const bad = await runStella(['feeds', 'sync', '--out', dir, '--source', 'nvd,cnnvd'], { cwd: path.dirname(dir), env: childBaseEnv(env()) });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--source nvd,cnnvd: give one or more of nvd, osv, ghsa, kev, epss, csaf, euvd/);
    // a source that fails: its summary line, one error line, its code as the exit status; the others synced
    const failed = await runStella(['feeds', 'sync', '--out', dir, '--source', 'kev,epss'], { cwd: path.dirname(dir), env: childBaseEnv(env({ KEV_URL: `${world.base}/kev/no-such-file.json` })) });
    assert.equal(failed.code, 112, failed.stderr);
    assert.match(failed.stdout, /kev {2}FAILED .*\n +error\[UPSTREAM_REJECTED\]: CISA's KEV catalog refused the catalog: HTTP 404/);
    assert.match(failed.stdout, /epss ok {5}1 requests, 313089 fetched/);
    assert.match(failed.stderr, /^error\[UPSTREAM_REJECTED\]: kev: .*check KEV_URL\n$/);
  });
});
