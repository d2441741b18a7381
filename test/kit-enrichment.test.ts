/**
 * KEV and EPSS through the whole kit, on real data: CISA's
 * KEV catalog and FIRST's EPSS scores from ../shared/feeds-extra beside the
 * real records of ../shared/feeds. A full kit carries db/kev.tsv and
 * db/epss.tsv (one row per CVE, the newest score date winning); it imports
 * through verify → unpack → load → activate; scans of real SBOMs show KEV and
 * EPSS on the findings whose CVEs have them, exactly as the source files say;
 * a delta built from a newer EPSS day carries only the changed scores, its
 * activation changes them and a rollback restores them; `--fail-on kev` and
 * `--fail-on-epss` decide the exit code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createGunzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import { buildBundle, type BuildResult } from '../builder/build.ts';
import { activate } from '../functions/activate.ts';
import { load } from '../functions/load.ts';
import { rollback } from '../functions/rollback.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { recordImport } from '../queue/ingest.ts';
import { parseFailPolicy, policyFailures, renderTable } from '../scan/report.ts';
import { scanSbom, type Finding } from '../scan/scan.ts';
import { readSbomFile } from '../scan/sbom.ts';
import { pipelineFixture, putBundle, stageContext, TEST_BUNDLE_EXPIRES, type PipelineFixture } from './pipeline-fixtures.ts';
import { sharedDir, tmpDir } from './helpers/services.ts';
import { contentPath } from '../bundle/member-codec.ts';

const extra = path.join(sharedDir, 'feeds-extra');
const SBOMS = ['juice-shop-v11.1.2-bom.json', 'dropwizard-1.3.15-bom.json', 'keycloak-10.0.2-bom.json', 'laravel-7.12.0-bom.1.4.json'];

let fx: PipelineFixture;
let full0: BuildResult;
let d1: BuildResult;

/** A feeds directory: the real advisory feeds, KEV, and the chosen EPSS files. */
function feedsWith(tag: string, epssFiles: string[]): string {
  const dir = tmpDir(tag);
  for (const f of ['nvd', 'osv', 'ghsa']) fs.symlinkSync(path.join(sharedDir, 'feeds', f), path.join(dir, f));
  fs.symlinkSync(path.join(extra, 'kev'), path.join(dir, 'kev'));
  fs.mkdirSync(path.join(dir, 'epss'));
  for (const f of epssFiles) fs.symlinkSync(path.join(extra, 'epss', f), path.join(dir, 'epss', path.basename(f)));
  return dir;
}

interface KevEntry {
  cveID: string;
  dateAdded: string;
  dueDate: string;
  knownRansomwareCampaignUse: string;
}
const kevCatalog = JSON.parse(fs.readFileSync(path.join(extra, 'kev', 'known_exploited_vulnerabilities.json'), 'utf8')) as { vulnerabilities: KevEntry[] };
const kevById = new Map(kevCatalog.vulnerabilities.map((v) => [v.cveID, v]));

async function epssRows(file: string): Promise<Map<string, { score: number; percentile: number }>> {
  const out = new Map<string, { score: number; percentile: number }>();
  const input = file.endsWith('.gz') ? fs.createReadStream(file).pipe(createGunzip()) : fs.createReadStream(file);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    const [cve, s, p] = line.split(',');
    if (cve?.startsWith('CVE-')) out.set(cve, { score: Number(s), percentile: Number(p) });
  }
  return out;
}

async function importKit(b: BuildResult, key: string): Promise<void> {
  const p = await putBundle(fx, b.out, key);
  await recordImport(fx.pool, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
  const ctx = stageContext(fx);
  for (const stage of [verify, unpack, load, activate]) await stage(p, ctx);
}

async function scanAll(): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const s of SBOMS) out.push(...(await scanSbom(fx.pool, await readSbomFile(path.join(sharedDir, 'sboms', s)))).findings);
  return out;
}

before(async () => {
  fx = await pipelineFixture('kit-enrichment');
  const common = { keyPath: fx.privateKey, sourceDateEpoch: undefined, onWarning: () => undefined, expiresDays: 3650 };
  // day A: two older published EPSS days (2024-10-25, 2025-02-20)
  const dayA = feedsWith('feeds-a', ['subsets/claircore-epss-2024-10-25.csv', 'subsets/vunnel-epss-2025-02-20.csv']);
  full0 = await buildBundle({ ...common, feedsDir: dayA, out: path.join(fx.dir, 'full0.tar.gz'), version: '2026-02-01' });
  // day B: the same plus the 2026-01-30 scores of every feed CVE
  const dayB = feedsWith('feeds-b', ['subsets/claircore-epss-2024-10-25.csv', 'subsets/vunnel-epss-2025-02-20.csv', 'epss_scores-2026-01-30.feeds-subset.csv']);
  d1 = await buildBundle({ ...common, feedsDir: dayB, out: path.join(fx.dir, 'd1.tar.gz'), version: '2026-02-02', base: full0.out, fullOut: path.join(fx.dir, 'full1.tar.gz') });
  void TEST_BUNDLE_EXPIRES;
});

after(async () => {
  await fx?.close();
});

test('a full kit carries KEV and EPSS as their own members, one row per CVE', () => {
  const m = full0.manifest;
  const member = (p: string) => m.members.find((x) => contentPath(x) === p);
  assert.equal(member('db/kev.tsv')?.rows, kevCatalog.vulnerabilities.length);
  assert.equal(member('db/kev.tsv')?.role, 'db');
  // claircore's 29 rows and vunnel's 5 overlap in CVE-1999-0005: 33 CVEs
  assert.equal(member('db/epss.tsv')?.rows, 33);
  const feeds = Object.fromEntries(m.feeds.map((f) => [f.name, f]));
  assert.equal(feeds.kev?.records, 1404);
  assert.equal(feeds.kev?.snapshot, '2025-08-25T17:04:19.979Z');
  assert.equal(feeds.epss?.snapshot, '2025-02-20T00:00:00.000Z');
});

test('a delta carries only the EPSS scores that changed, and no KEV rows', async () => {
  const m = d1.manifest;
  const rows = (p: string) => m.members.find((x) => contentPath(x) === p)?.rows;
  assert.equal(rows('db/kev.tsv'), 0);
  assert.equal(rows('db/kev.removed.tsv'), 0);
  assert.equal(rows('db/epss.removed.tsv'), 0);
  const dayB = await epssRows(path.join(extra, 'epss', 'epss_scores-2026-01-30.feeds-subset.csv'));
  // every CVE of day B is new or rescored (the older days' CVEs are all in it)
  assert.equal(rows('db/epss.tsv'), dayB.size);
  assert.equal(d1.full!.manifest.db.digest, m.db.digest, 'the delta yields the DB of the full kit of its version');
});

test('scans of real SBOMs show KEV and EPSS on the findings whose CVEs have them; a delta rescores, a rollback restores', async () => {
  await importKit(full0, 'stella-ouk-2026-02-01.tar.gz');
  const before = await scanAll();
  const withKev = before.filter((f) => f.kev);
  assert.ok(withKev.length > 0, 'some findings of the real SBOMs are known exploited');
  for (const f of withKev) {
    const src = kevById.get(f.kev!.cve)!;
    assert.ok([f.advisoryId, ...f.aliases].includes(f.kev!.cve));
    assert.deepEqual([f.kev!.dateAdded, f.kev!.dueDate, f.kev!.knownRansomwareCampaignUse], [src.dateAdded, src.dueDate, src.knownRansomwareCampaignUse]);
  }
  for (const f of before) {
    const cves = [f.advisoryId, ...f.aliases].filter((i) => kevById.has(i));
    assert.equal(Boolean(f.kev), cves.length > 0, `${f.advisoryId}: kev iff one of its CVEs is in the catalog`);
  }

  await importKit(d1, 'stella-ouk-2026-02-02.tar.gz');
  const dayB = await epssRows(path.join(extra, 'epss', 'epss_scores-2026-01-30.feeds-subset.csv'));
  const after = await scanAll();
  const scored = after.filter((f) => f.epss);
  assert.ok(scored.length > after.length / 2, 'most findings have an EPSS score of 2026-01-30');
  for (const f of scored) {
    assert.equal(f.epss!.date, '2026-01-30');
    const src = dayB.get(f.epss!.cve)!;
    assert.ok(Math.abs(src.score - f.epss!.score) < 1e-6 && Math.abs(src.percentile - f.epss!.percentile) < 1e-6, `${f.epss!.cve} as FIRST scored it`);
  }
  const table = renderTable({ ...(await scanSbom(fx.pool, await readSbomFile(path.join(sharedDir, 'sboms', SBOMS[1]!)))), quota: { banner: null } }, { colour: false });
  assert.match(table, /SEVERITY\s+CVSS\s+KEV\s+EPSS\s+PACKAGE/);
  assert.match(table, /\d+\.\d+% \(p\d+\)/);
  // policy: --fail-on kev and --fail-on-epss
  assert.equal(policyFailures(after, parseFailPolicy(['kev'], undefined)).findings.length, after.filter((f) => f.kev).length);
  const hot = policyFailures(after, parseFailPolicy([], '0.5'));
  assert.deepEqual(hot.findings.map((f) => f.advisoryId).sort(), after.filter((f) => f.epss && f.epss.score >= 0.5).map((f) => f.advisoryId).sort());
  assert.throws(() => parseFailPolicy([], '2'), /--fail-on-epss 2/);

  await rollback(fx.pool, fx.logger);
  const back = await scanAll();
  assert.deepEqual(
    back.map((f) => [f.advisoryId, f.component, f.epss?.score ?? null, f.kev?.cve ?? null]),
    before.map((f) => [f.advisoryId, f.component, f.epss?.score ?? null, f.kev?.cve ?? null]),
  );
});
