/**
 * Regional CSAF 2.0 feeds and VEX, on the real
 * documents of ../shared/feeds-extra/csaf (Red Hat VEX, Siemens, CISA, BSI,
 * Beckhoff, Festo, Nozomi, CPANSA; read by path). The builder reads
 * `csaf/`: documents that fail the CSAF 2.0 schema are skipped with file and
 * reason, a document's vulnerabilities merge by CVE with the other feeds under
 * their publisher, a newer revision replaces an older one, products with a
 * purl or CPE become affected rows, and VEX documents' known_not_affected and
 * fixed statements become the kit's `vex` table. Through the real pipeline, a
 * real Red Hat statement (RHSA-2023:5835: rhc-worker-script 0.5-1.el7_9 is
 * fixed for CVE-2023-39325) suppresses the finding of the real GO-2023-2102
 * record in an SBOM of that product; `--vex` documents (OpenVEX, CycloneDX,
 * CSAF) suppress findings of a real SBOM; suppressed findings leave the count
 * and --fail-on but stay listed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildBundle, type BuildResult } from '../builder/build.ts';
import type { FeedWarning } from '../builder/feeds/index.ts';
import { parseVersionRange } from '../builder/feeds/csaf.ts';
import { activate } from '../functions/activate.ts';
import { load } from '../functions/load.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { withActiveSnapshot } from '../infra/db.ts';
import { recordImport } from '../queue/ingest.ts';
import { parseFailPolicy, policyFailures, renderTable } from '../scan/report.ts';
import { scanSbom } from '../scan/scan.ts';
import { parseSbom, readSbomFile } from '../scan/sbom.ts';
import { parseVex, readVexFile } from '../scan/vex.ts';
import { pipelineFixture, putBundle, stageContext, type PipelineFixture } from './pipeline-fixtures.ts';
import { sharedDir, tmpDir } from './helpers/services.ts';
import { contentPath } from '../bundle/member-codec.ts';

const csafDir = path.join(sharedDir, 'feeds-extra', 'csaf');
let fx: PipelineFixture;
let kit: BuildResult;
const warnings: FeedWarning[] = [];

/** An SBOM of Red Hat's rhc-worker-script 0.5-1.el7_9 (a Go program) with the golang.org/x/net it bundles. */
function rhcWorkerSbom(withSubject: boolean): unknown {
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: withSubject ? { component: { type: 'application', name: 'rhc-worker-script', version: '0.5-1.el7_9', purl: 'pkg:rpm/redhat/rhc-worker-script@0.5-1.el7_9?arch=x86_64' } } : {},
    components: [{ type: 'library', 'bom-ref': 'x-net', name: 'golang.org/x/net', version: 'v0.7.0', purl: 'pkg:golang/golang.org/x/net@v0.7.0' }],
  };
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return withActiveSnapshot(fx.pool, async (client, active) => (await client.query(sql.replaceAll('$S', `"${active.schema}"`))).rows);
}

before(async () => {
  fx = await pipelineFixture('kit-csaf-vex');
  const feeds = tmpDir('csaf-feeds');
  fs.mkdirSync(path.join(feeds, 'osv', 'Go'), { recursive: true });
  fs.mkdirSync(path.join(feeds, 'ghsa'));
  fs.symlinkSync(path.join(sharedDir, 'feeds', 'osv', 'Go', 'GO-2023-2102.json'), path.join(feeds, 'osv', 'Go', 'GO-2023-2102.json'));
  fs.symlinkSync(path.join(sharedDir, 'feeds', 'ghsa', 'GHSA-7g45-4rm6-3mm3.json'), path.join(feeds, 'ghsa', 'GHSA-7g45-4rm6-3mm3.json'));
  fs.symlinkSync(csafDir, path.join(feeds, 'csaf'));
  kit = await buildBundle({ feedsDir: feeds, keyPath: fx.privateKey, out: path.join(fx.dir, 'kit.tar.gz'), version: '2026-02-01', expiresDays: 3650, onWarning: (w) => warnings.push(w) });
  const p = await putBundle(fx, kit.out, 'stella-ouk-2026-02-01.tar.gz');
  await recordImport(fx.pool, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
  const ctx = stageContext(fx);
  for (const stage of [verify, unpack, load, activate]) await stage(p, ctx);
});

after(async () => {
  await fx?.close();
});

test('documents failing the CSAF 2.0 schema are skipped with file and reason; provider metadata and schemas are passed over', () => {
  const csaf = kit.manifest.feeds.find((f) => f.name === 'csaf')!;
  const skipped = warnings.filter((w) => w.feed === 'csaf');
  assert.deepEqual(skipped.map((w) => path.basename(w.file)).sort(), ['cpansa-email-mime-2024-4140.json', 'cpansa-mozilla-ca-2024-39689.json']);
  for (const w of skipped) assert.match(w.reason, /CSAF 2\.0 schema: \/document\/tracking\/current_release_date must match format "date-time"/);
  assert.equal(csaf.skipped, 2);
  assert.ok(csaf.records > 150, `${csaf.records} vulnerabilities read`);
  assert.ok(kit.manifest.members.some((m) => contentPath(m) === 'db/vex.tsv'), 'the kit carries its VEX statements');
});

test('vulnerabilities merge by CVE under their publisher; a newer revision replaces an older one', async () => {
  const [go] = await rows(`SELECT doc::jsonb AS doc FROM $S.advisories WHERE advisory_id = 'CVE-2023-39325'`);
  const sources = (go!.doc as { sources: { feed: string; id: string; publisher?: string; document?: string }[] }).sources;
  assert.deepEqual(
    sources.map((s) => [s.feed, s.id, s.publisher ?? null, s.document ?? null]),
    [
      ['csaf', 'CVE-2023-39325', 'Red Hat Product Security', 'RHSA-2023:5835'],
      ['osv', 'GO-2023-2102', null, null],
    ],
  );
  const [ssa] = await rows(`SELECT doc::jsonb AS doc FROM $S.advisories WHERE advisory_id = 'CVE-2024-46887'`);
  const s = (ssa!.doc as { sources: { document?: string; modified: string; superseded?: { feed: string; modified: string }[] }[] }).sources;
  assert.equal(s.length, 1);
  assert.equal(s[0]!.document, 'SSA-054046');
  assert.equal(s[0]!.modified, '2025-10-14T00:00:00.000Z', 'revision 8 wins');
  assert.deepEqual(s[0]!.superseded, [{ feed: 'csaf', modified: '2025-04-08T00:00:00.000Z' }]);
});

test('products with a CPE become cpes rows: exact versions, and ranges as bounds', async () => {
  const beckhoff = await rows(`SELECT criteria FROM $S.cpes WHERE advisory_id = 'CVE-2025-41726' ORDER BY criteria`);
  assert.deepEqual(
    beckhoff.map((r) => r.criteria),
    ['cpe:2.3:a:beckhoff:MDP.dll:1.2.4.0:*:*:*:*:*:arm32:*', 'cpe:2.3:a:beckhoff:MDP.dll:1.2.4.0:*:*:*:*:*:x86:*', 'cpe:2.3:a:beckhoff:ipc_diagnostics_package:2.4.5:*:*:*:*:Windows:*:*'],
  );
  // BSI: IGEL "OS < 11.10.100" with cpe:/o:igel:os:11.10.100 is every version before 11.10.100, not 11.10.100;
  // its "Debian Linux" (cpe:/o:debian:debian_linux:-, no version) is not mapped: it would mark every version
  const bsi = await rows(`SELECT criteria, version_end_excluding FROM $S.cpes WHERE advisory_id = 'CVE-2023-5178' ORDER BY criteria`);
  assert.deepEqual(bsi, [{ criteria: 'cpe:2.3:o:igel:os:*:*:*:*:*:*:*:*', version_end_excluding: '11.10.100' }]);
  // CISA: Versa Director "<22.1.4_2024-11-11_Hot_Fix": the bound keeps the hot-fix, the criteria's update is open
  const versa = await rows(`SELECT criteria, version_end_excluding FROM $S.cpes WHERE advisory_id = 'CVE-2024-42450'`);
  assert.deepEqual(versa, [{ criteria: 'cpe:2.3:a:versa-networks:versa_director:*:*:*:*:*:*:*:*', version_end_excluding: '22.1.4_2024-11-11_Hot_Fix' }]);
  assert.deepEqual(parseVersionRange('vers:semver/>=1.0|<2.5.3'), [{ op: '>=', version: '1.0' }, { op: '<', version: '2.5.3' }]);
  assert.equal(parseVersionRange('vers:generic/<1|>=2|<3'), null, 'two intervals are not mapped');
});

test("a real Red Hat VEX statement in the kit suppresses its finding; suppressed findings leave the count and --fail-on", async () => {
  const open = await scanSbom(fx.pool, parseSbom(rhcWorkerSbom(false)));
  assert.deepEqual(open.findings.map((f) => f.advisoryId), ['CVE-2023-39325'], 'golang.org/x/net v0.7.0 is affected (GO-2023-2102)');

  const r = await scanSbom(fx.pool, parseSbom(rhcWorkerSbom(true)));
  assert.equal(r.findings.length, 0);
  assert.equal(r.summary.findings, 0);
  assert.equal(r.summary.suppressed, 1);
  assert.deepEqual(r.suppressed[0]!.vex, { status: 'fixed', justification: null, impact: null, source: 'kit: Red Hat Product Security RHSA-2023:5835' });
  assert.equal(policyFailures(r.findings, parseFailPolicy(['UNKNOWN'], undefined)).findings.length, 0, '--fail-on ignores it');
  const table = renderTable({ ...r, quota: { banner: null } }, { colour: false });
  assert.match(table, /1 finding suppressed by VEX statements/);
  assert.match(renderTable({ ...r, quota: { banner: null } }, { colour: false, showSuppressed: true }), /fixed .*CVE-2023-39325.*RHSA-2023:5835/);

  // the same Red Hat document given with --vex says the same
  const vex = await readVexFile(path.join(csafDir, 'redhat', 'rhsa-2023_5835.json'));
  const withFile = await scanSbom(fx.pool, parseSbom(rhcWorkerSbom(true)), { vex });
  assert.match(withFile.suppressed[0]!.vex!.source, /rhsa-2023_5835\.json \(Red Hat Product Security RHSA-2023:5835\)$/);
});

test('--vex: OpenVEX and CycloneDX VEX statements suppress findings of a real SBOM, by purl or bom-ref', async () => {
  const dw = await readSbomFile(path.join(sharedDir, 'sboms', 'dropwizard-1.3.15-bom.json'));
  const base = await scanSbom(fx.pool, dw);
  const guava = base.findings.find((f) => f.advisoryId === 'CVE-2023-2976');
  assert.ok(guava, 'dropwizard bundles guava 24.1.1-jre (GHSA-7g45-4rm6-3mm3)');
  const openVex = parseVex(
    {
      '@context': 'https://openvex.dev/ns/v0.2.0',
      '@id': 'https://example.invalid/vex/1',
      author: 'site security team',
      timestamp: '2026-02-01T00:00:00Z',
      version: 1,
      statements: [{ vulnerability: { name: 'CVE-2023-2976' }, products: [{ '@id': 'pkg:maven/com.google.guava/guava' }], status: 'not_affected', justification: 'vulnerable_code_not_in_execute_path' }],
    },
    'site.openvex.json',
  );
  const r1 = await scanSbom(fx.pool, dw, { vex: openVex });
  assert.equal(r1.findings.length, base.findings.length - 1);
  assert.deepEqual(r1.suppressed.map((f) => [f.advisoryId, f.vex!.status, f.vex!.justification]), [['CVE-2023-2976', 'not_affected', 'vulnerable_code_not_in_execute_path']]);
  const cdx = parseVex(
    {
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      version: 1,
      vulnerabilities: [{ id: 'GHSA-7g45-4rm6-3mm3', analysis: { state: 'resolved' }, affects: [{ ref: guava.component }] }],
    },
    'site.cdx.json',
  );
  const r2 = await scanSbom(fx.pool, dw, { vex: cdx });
  assert.deepEqual(r2.suppressed.map((f) => [f.advisoryId, f.vex!.status]), [['CVE-2023-2976', 'fixed']]);
  // a versioned purl for another version does not match
  const other = parseVex({ '@context': 'https://openvex.dev/ns/v0.2.0', statements: [{ vulnerability: { name: 'CVE-2023-2976' }, products: [{ '@id': 'pkg:maven/com.google.guava/guava@32.0.0-jre' }], status: 'not_affected' }] }, 'x');
  assert.equal((await scanSbom(fx.pool, dw, { vex: other })).suppressed.length, 0);
});

test('the CSAF schema the product ships is the OASIS one, byte for byte', () => {
  for (const f of ['csaf_json_schema.json', 'cvss-v2.0.json', 'cvss-v3.0.json', 'cvss-v3.1.json']) {
    assert.ok(fs.readFileSync(new URL(`../bundle/csaf-schema/${f}`, import.meta.url)).equals(fs.readFileSync(path.join(csafDir, 'schema', f))), f);
  }
});
