/**
 * ENISA's EUVD through the kit: `stella feeds sync --source euvd`
 * against the loopback EUVD (records modelled on ENISA's own answers in
 * ../shared/upstream/euvd, their aliases pointed at CVEs of real GHSA records
 * of ../shared/feeds), then the builder and a scan: an EUVD id naming one CVE
 * becomes an alias of that CVE's advisory, one naming two CVEs does not;
 * ENISA's exploited list is carried beside CISA's KEV (db/euvd_kev.tsv), and
 * findings say which catalog lists them (CISA's first, ENISA's when CISA's
 * does not).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { contentPath } from '../bundle/member-codec.ts';
import { syncSettings } from '../lib/config.ts';
import { syncFeeds } from '../publisher/sync/index.ts';
import { parseFailPolicy, policyFailures, renderTable } from '../scan/report.ts';
import { scanSbom, type ScanResult } from '../scan/scan.ts';
import { parseSbom } from '../scan/sbom.ts';
import { createScanDb, loadFeeds, selectFeeds, type LoadedFeeds, type ScanDb } from './helpers/scan-db.ts';
import { sharedDir } from './helpers/services.ts';
import { Upstream } from './helpers/upstream.ts';

type Json = Record<string, unknown>;

const T = new Date('2026-12-01T00:00:00.000Z');
const euvdSample = (file: string): Json[] => {
  const doc = JSON.parse(fs.readFileSync(path.join(sharedDir, 'upstream/euvd', file), 'utf8')) as Json[] | { items: Json[] };
  return Array.isArray(doc) ? doc : doc.items;
};
const kevCatalog = JSON.parse(fs.readFileSync(path.join(sharedDir, 'feeds-extra/kev/known_exploited_vulnerabilities.json'), 'utf8')) as { vulnerabilities: { cveID: string; dateAdded: string }[] };

// Real GHSA records (npm): electron's CVE-2022-4135 is on CISA's KEV list; color-string's and sequelize's CVEs are not.
const ELECTRON = { ghsa: 'GHSA-995f-9x5r-2rcj', cve: 'CVE-2022-4135', purl: 'pkg:npm/electron@19.1.0' };
const COLOR = { ghsa: 'GHSA-257v-vj4p-3w2h', cve: 'CVE-2021-29060', purl: 'pkg:npm/color-string@1.5.0' };
const SEQUELIZE = { ghsa: 'GHSA-2598-2f59-rmhq', cve: 'CVE-2019-10749', purl: 'pkg:npm/sequelize@3.0.0' };

let world: Upstream;
let sdb: ScanDb;
let loaded: LoadedFeeds;
let result: ScanResult;
const ids = { enisaOnly: '', both: '', alias: '', twoCves: '' };

before(async () => {
  world = await Upstream.start({ now: () => T, osvEcosystems: [] });
  const [exploitedA, exploitedB] = euvdSample('exploitedvulnerabilities-latest.caisarus.json');
  const [lastA, lastB] = euvdSample('lastvulnerabilities.caisarus.json');
  world.euvd.clear();
  // ENISA's records as its API returns them, their aliases pointed at the CVEs above
  const put = (item: Json, aliases: string[]): string => {
    world.euvd.set(item.id as string, { ...item, aliases: `${aliases.join('\n')}\n` });
    return item.id as string;
  };
  ids.enisaOnly = put(exploitedA!, [COLOR.cve, COLOR.ghsa]);
  ids.both = put(exploitedB!, [ELECTRON.cve]);
  ids.alias = put(lastA!, [SEQUELIZE.cve]);
  ids.twoCves = put(lastB!, [SEQUELIZE.cve, COLOR.cve]);
  assert.equal(typeof exploitedA!.exploitedSince, 'string');
  assert.equal(lastA!.exploitedSince, undefined);

  const dir = await selectFeeds({ files: [ELECTRON, COLOR, SEQUELIZE].map((x) => `ghsa/${x.ghsa}.json`) }, 'kit-euvd');
  fs.symlinkSync(path.join(sharedDir, 'feeds-extra/kev'), path.join(dir, 'kev'));
  const sync = await syncFeeds({ out: dir, sources: ['euvd'], settings: syncSettings(world.env()), now: () => T, childEnv: process.env });
  assert.ok(sync.ok, JSON.stringify(sync.reports));

  sdb = await createScanDb('kit-euvd');
  loaded = await loadFeeds(sdb, { dir }, '2026-12-01');
  await loaded.activate();
  const sbom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    components: [ELECTRON, COLOR, SEQUELIZE].map((x) => ({ type: 'library', 'bom-ref': x.purl, name: x.purl.split('/')[1]!.split('@')[0], version: x.purl.split('@')[1], purl: x.purl })),
  };
  result = await scanSbom(sdb.pool, parseSbom(sbom));
});

after(async () => {
  await sdb?.close();
  await world?.close();
});

const finding = (purl: string) => {
  const f = result.findings.find((x) => x.purl?.startsWith(purl.split('@')[0]!) && x.installedVersion === purl.split('@')[1]);
  assert.ok(f, `a finding for ${purl}`);
  return f;
};

test("the kit carries ENISA's exploited list as db/euvd_kev.tsv, one row per CVE, beside CISA's", () => {
  const m = loaded.bundle.manifest;
  const member = (p: string) => m.members.find((x) => contentPath(x) === p);
  assert.equal(member('db/euvd_kev.tsv')?.rows, 2);
  assert.equal(member('db/kev.tsv')?.rows, kevCatalog.vulnerabilities.length);
  const euvd = m.feeds.find((f) => f.name === 'euvd');
  assert.deepEqual([euvd?.records, euvd?.skipped], [2, 0]);
});

test('an EUVD id naming one CVE is an alias of its advisory; one naming two CVEs is not', () => {
  assert.ok(finding(SEQUELIZE.purl).aliases.includes(ids.alias));
  assert.ok(finding(COLOR.purl).aliases.includes(ids.enisaOnly));
  assert.ok(finding(ELECTRON.purl).aliases.includes(ids.both));
  for (const f of result.findings) assert.ok(!f.aliases.includes(ids.twoCves), `${f.advisoryId} does not take ${ids.twoCves}, which names two CVEs`);
});

test('findings say which catalog lists them: CISA first, ENISA when only ENISA does', () => {
  const electron = finding(ELECTRON.purl);
  assert.deepEqual([electron.kev?.catalog, electron.kev?.catalogs, electron.kev?.dateAdded], ['cisa', ['cisa', 'enisa'], kevCatalog.vulnerabilities.find((v) => v.cveID === ELECTRON.cve)!.dateAdded]);
  const color = finding(COLOR.purl);
  const exploited = world.euvd.get(ids.enisaOnly)!;
  assert.deepEqual([color.kev?.catalog, color.kev?.catalogs, color.kev?.euvdId, color.kev?.cve], ['enisa', ['enisa'], ids.enisaOnly, COLOR.cve]);
  assert.equal(color.kev?.dateAdded, new Date(`${String(exploited.exploitedSince).replace(', 12:00:00 AM', '')} UTC`).toISOString().slice(0, 10));
  assert.equal(finding(SEQUELIZE.purl).kev, null);
  const table = renderTable({ ...result, quota: { banner: null } }, { colour: false });
  assert.match(table, /yes,EU/);
  assert.match(table, /1 on CISA's KEV list, 1 on ENISA's exploited list \(EUVD\) only/);
  assert.match(table, /EU = on ENISA's exploited list \(EUVD\)/);
  const failing = policyFailures(result.findings, parseFailPolicy(['kev'], undefined));
  assert.deepEqual(failing.findings.map((f) => f.kev!.catalog).sort(), ['cisa', 'enisa']);
});
