/**
 * Deep and huge inputs of the builder's feeds and of `stella scan --vex`
 * (deep nesting, huge files), every one generated here, none committed:
 *
 *   - an EPSS `.csv.gz` that inflates 2 MB to 2 GiB: FEED_UNREADABLE naming
 *     the file, after its inflate limit, without the memory; a line without
 *     end: that file skipped with its line, the others kept;
 *   - a CSAF document 50,000 `branches` deep, an OSV record whose
 *     `ecosystem_specific` is 50,000 levels deep, a CSAF document and a KEV
 *     catalog over their size limits: skipped with their reasons while the
 *     real `stella ouk build` goes on; the deep document and an oversized file
 *     given to the real `stella scan --vex`: refused with VEX_INVALID (69)
 *     naming the file, before any service is asked;
 *   - one `product_status` list of 1,000,000 product ids (ajv's uniqueItems
 *     and the old reader took quadratic time: 80,000 ids 19 s, a million over
 *     150 s): read right, by the builder and by --vex, within the test's own
 *     2-minute timeout; duplicates among them still refused;
 *   - product groups named by a thousand flags, and an OpenVEX statement of
 *     1,001 aliases × 1,000 products: bounded, skipped / refused;
 *   - OpenVEX and CycloneDX VEX files of the wrong shape: VEX_INVALID with the
 *     JSON path; a well-formed file that suppresses nothing: a warning;
 *   - a kit member that decompresses past its manifest's content size:
 *     ARCHIVE_CORRUPT.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { buildEnrichment } from '../builder/enrichment.ts';
import { MAX_LINE_CHARS } from '../builder/feeds/epss.ts';
import { inflateLimit } from '../builder/feeds/bounded.ts';
import { readFeeds, type FeedWarning, MAX_CSAF_BYTES } from '../builder/feeds/index.ts';
import { MAX_KEV_BYTES } from '../builder/feeds/kev.ts';
import type { SourceRecord } from '../builder/model.ts';
import { MAX_GROUP_EXPANSION, validateCsaf } from '../bundle/csaf.ts';
import { parseManifest } from '../bundle/manifest.ts';
import { decodeMember } from '../bundle/member-codec.ts';
import { readBundle } from '../bundle/reader.ts';
import { readVexFiles } from '../cli/commands/scan.ts';
import { isOukError, OukError } from '../lib/errors.ts';
import { applyVex, MAX_VEX_BYTES, MAX_VEX_STATEMENTS, parseVex, readVexFile, type VexStatement } from '../scan/vex.ts';
import type { Finding } from '../scan/findings.ts';
import { generateKeyPair } from '../signing/index.ts';
import { childBaseEnv, repoRoot, runStella, sharedDir, tmpDir } from './helpers/services.ts';

let tmp: string;
let keyPath: string;

before(async () => {
  tmp = tmpDir('feeds-vex-bounds');
  const keys = await generateKeyPair();
  keyPath = path.join(tmp, 'cosign.key');
  await writeFile(keyPath, keys.privateKeyPem, { mode: 0o600 });
});

/** A CSAF 2.0 document that passes the schema, with `vulnerabilities` and `product_tree` to fill in. */
function csafDoc(category: 'csaf_vex' | 'csaf_security_advisory', trackingId = 'HOSTILE-1'): Record<string, any> {
  const at = '2026-01-01T00:00:00Z';
  return {
    document: {
      category,
      csaf_version: '2.0',
      title: 'generated',
      lang: 'en',
      publisher: { category: 'vendor', name: 'Generated Corp', namespace: 'https://generated.invalid' },
      tracking: { id: trackingId, status: 'final', version: '1', initial_release_date: at, current_release_date: at, revision_history: [{ date: at, number: '1', summary: 'first' }] },
      notes: [{ category: 'summary', text: 'generated' }],
      references: [{ category: 'self', url: 'https://generated.invalid/x.json', summary: 'self' }],
    },
  };
}

/** A CSAF VEX document whose product tree is `levels` nested branches (JSON.stringify would itself overflow: written as text). */
function deepCsafText(levels: number): string {
  const doc = csafDoc('csaf_vex');
  doc.product_tree = { branches: ['@@'] };
  doc.vulnerabilities = [{ cve: 'CVE-2026-0001', notes: [{ category: 'description', text: 'x' }], product_status: { known_not_affected: ['P1'] } }];
  const leaf = JSON.stringify({ category: 'product_version', name: '1.0', product: { product_id: 'P1', name: 'p', product_identification_helper: { purl: 'pkg:npm/left-pad@1.0.0' } } });
  return JSON.stringify(doc).replace('"@@"', '{"category":"vendor","name":"v","branches":['.repeat(levels) + leaf + ']}'.repeat(levels));
}

/** A file of `size` bytes that takes no disk (a hole): what only its size should refuse. */
async function sparseFile(file: string, size: number): Promise<void> {
  const fh = await open(file, 'w');
  await fh.truncate(size);
  await fh.close();
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('an EPSS .csv.gz that inflates 2 MB to 2 GiB is refused with FEED_UNREADABLE naming it, at its limit, without the memory', async () => {
  const feeds = path.join(tmp, 'epss-bomb');
  await mkdir(path.join(feeds, 'epss'), { recursive: true });
  // 1 MiB of blank 64 KiB lines gzips to about a kilobyte; 2,048 gzip members in a row are 2 GiB once inflated
  const member = gzipSync(Buffer.from(`${' '.repeat(MAX_LINE_CHARS - 1)}\n`.repeat(16)), { level: 9 });
  const bomb = path.join(feeds, 'epss', 'epss_scores-2026-01-30.csv.gz');
  await writeFile(bomb, Buffer.concat(Array.from({ length: 2048 }, () => member)));
  const size = member.length * 2048;
  assert.ok(size < 4 * 1024 * 1024 && inflateLimit(size) < 512 * 1024 * 1024, `the bomb (${size} bytes) is cut long before its 2 GiB`);
  await copyFile(path.join(sharedDir, 'feeds-extra', 'epss', 'subsets', 'vunnel-epss-2025-02-20.csv'), path.join(feeds, 'epss', 'vunnel-epss-2025-02-20.csv'));

  const rssBefore = process.resourceUsage().maxRSS;
  const work = path.join(tmp, 'epss-bomb-work');
  await mkdir(work);
  await assert.rejects(
    buildEnrichment(feeds, work, () => undefined),
    (e: unknown) => isOukError(e) && e.code === 'FEED_UNREADABLE' && e.message.includes(bomb) && e.message.includes(`inflates to more than ${inflateLimit(size)} bytes`),
  );
  const grownKiB = process.resourceUsage().maxRSS - rssBefore;
  assert.ok(grownKiB < 512 * 1024, `peak memory grew by ${Math.round(grownKiB / 1024)} MiB`);

  // a line without end (1 MiB of zeros): that file is skipped with its line, the other one is read whole
  const endless = path.join(feeds, 'epss', 'epss_scores-2026-01-30.csv.gz');
  await writeFile(endless, gzipSync(Buffer.alloc(1024 * 1024)));
  const warnings: FeedWarning[] = [];
  const work2 = path.join(tmp, 'epss-endless-work');
  await mkdir(work2);
  const built = await buildEnrichment(feeds, work2, (w) => warnings.push(w));
  assert.deepEqual(warnings.map((w) => [w.file, w.reason]), [[endless, `unreadable: line 1: a line is longer than ${MAX_LINE_CHARS} characters`]]);
  assert.deepEqual(built.feeds, [{ name: 'epss', snapshot: '2025-02-20T00:00:00.000Z', records: 5, skipped: 1 }]);
});

test('a CSAF file 50,000 branches deep, a deep OSV record and oversized files are skipped with their reasons; the real `stella ouk build` goes on, and `stella scan --vex` refuses them', async () => {
  const feeds = path.join(tmp, 'deep-feeds');
  for (const d of ['osv/PyPI', 'csaf', 'kev']) await mkdir(path.join(feeds, d), { recursive: true });
  await copyFile(path.join(sharedDir, 'feeds', 'osv', 'PyPI', 'PYSEC-2023-226.json'), path.join(feeds, 'osv', 'PyPI', 'PYSEC-2023-226.json'));
  await copyFile(path.join(sharedDir, 'feeds-extra', 'csaf', 'redhat', 'rhsa-2023_5835.json'), path.join(feeds, 'csaf', 'rhsa-2023_5835.json'));
  const deep = path.join(feeds, 'csaf', 'deep.json');
  await writeFile(deep, deepCsafText(50_000));
  const huge = path.join(feeds, 'csaf', 'huge.json');
  await sparseFile(huge, MAX_CSAF_BYTES + 1);
  // an OSV record whose ecosystem_specific (kept as it is) is 50,000 arrays deep
  const osv = JSON.parse(await readFile(path.join(feeds, 'osv', 'PyPI', 'PYSEC-2023-226.json'), 'utf8')) as { id: string; affected: Record<string, unknown>[] };
  osv.id = 'PYSEC-2099-1';
  osv.affected[0]!.ecosystem_specific = '@@';
  const deepOsv = path.join(feeds, 'osv', 'PyPI', 'PYSEC-2099-1.json');
  await writeFile(deepOsv, JSON.stringify(osv).replace('"@@"', '['.repeat(50_000) + ']'.repeat(50_000)));
  const kev = { catalogVersion: '2026.01.30', dateReleased: '2026-01-30T12:00:00.000Z', vulnerabilities: [{ cveID: 'CVE-2023-39325', vendorProject: 'Go', product: 'net/http', vulnerabilityName: 'x', dateAdded: '2026-01-01', dueDate: '2026-01-22', knownRansomwareCampaignUse: 'Unknown', requiredAction: 'x' }] };
  await writeFile(path.join(feeds, 'kev', 'known_exploited_vulnerabilities.json'), JSON.stringify(kev));
  const hugeKev = path.join(feeds, 'kev', 'zz-huge.json');
  await sparseFile(hugeKev, MAX_KEV_BYTES + 1);

  const out = path.join(tmp, 'deep-out', 'kit.tar.gz');
  const env = childBaseEnv();
  const r = await runStella(['ouk', 'build', '--feeds', feeds, '--key', keyPath, '--out', out, '--version', '2026-02-01'], { cwd: repoRoot, env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`skipped ${escape(deep)}: not a CSAF document this reader takes: it is nested more than 64 levels deep \\(at /product_tree/branches/0/branches/0/branches/0/branches/…\\)`));
  assert.match(r.stderr, new RegExp(`skipped ${escape(huge)}: it is ${MAX_CSAF_BYTES + 1} bytes, over the ${MAX_CSAF_BYTES}-byte \\(64 MiB\\) limit of a CSAF document`));
  assert.match(r.stderr, new RegExp(`skipped ${escape(deepOsv)}: affected\\[0\\]\\.ecosystem_specific: it is nested more than 32 levels deep`));
  assert.match(r.stderr, new RegExp(`skipped ${escape(hugeKev)}: it is ${MAX_KEV_BYTES + 1} bytes, over the ${MAX_KEV_BYTES}-byte \\(64 MiB\\) limit of a KEV catalog`));
  assert.doesNotMatch(r.stderr, /Maximum call stack|error\[/);
  let raw: Buffer | undefined;
  await readBundle(createReadStream(out), { onManifest: (_m, b) => void (raw = b) });
  const byName = Object.fromEntries(parseManifest(raw!).feeds.map((f) => [f.name, [f.records, f.skipped]]));
  assert.deepEqual(byName.osv, [1, 1]);
  assert.deepEqual(byName.csaf, [2, 2], 'the Red Hat document read (its two vulnerabilities), the deep and the huge one skipped');
  assert.deepEqual(byName.kev, [1, 1]);

  // the scan path: the same deep document, and a file over the size limit, refused before any service is asked
  const sbom = path.join(tmp, 'left-pad.cdx.json');
  await writeFile(sbom, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [{ type: 'library', name: 'left-pad', version: '1.0.0', purl: 'pkg:npm/left-pad@1.0.0' }] }));
  const scanDeep = await runStella(['scan', sbom, '--vex', deep], { cwd: tmp, env });
  assert.equal(scanDeep.code, 69, scanDeep.stderr);
  assert.match(scanDeep.stderr, new RegExp(`^error\\[VEX_INVALID\\]: --vex ${escape(deep)}: not a VEX document this scanner takes: it is nested more than 64 levels deep`));
  const bigVex = path.join(tmp, 'big.openvex.json');
  await sparseFile(bigVex, MAX_VEX_BYTES + 1);
  const scanBig = await runStella(['scan', sbom, '--vex', bigVex], { cwd: tmp, env });
  assert.equal(scanBig.code, 69, scanBig.stderr);
  assert.match(scanBig.stderr, new RegExp(`error\\[VEX_INVALID\\]: --vex ${escape(bigVex)}: it is ${MAX_VEX_BYTES + 1} bytes, over the ${MAX_VEX_BYTES}-byte limit`));
});

test('one product_status list of 1,000,000 product ids is read right by the builder and by --vex, in linear time', { timeout: 120_000 }, async () => {
  const n = 1_000_000;
  const ids = Array.from({ length: n }, (_, i) => `PID-${i}`);
  // three of the million are products with a purl (first, middle, last); the others are named nowhere else
  const named = [0, n / 2, n - 1];
  const tree = { full_product_names: named.map((i) => ({ product_id: `PID-${i}`, name: `p${i}`, product_identification_helper: { purl: `pkg:npm/pkg-${i}@1.0.${i}` } })) };
  const feeds = path.join(tmp, 'million');
  await mkdir(path.join(feeds, 'csaf'), { recursive: true });
  await writeFile(path.join(feeds, 'csaf', 'advisory.json'), JSON.stringify({ ...csafDoc('csaf_security_advisory', 'BIG-1'), product_tree: tree, vulnerabilities: [{ cve: 'CVE-2026-1000', product_status: { known_affected: ids } }] }));
  const vexFile = path.join(tmp, 'million.csaf-vex.json');
  await writeFile(vexFile, JSON.stringify({ ...csafDoc('csaf_vex', 'BIG-VEX-1'), product_tree: tree, vulnerabilities: [{ cve: 'CVE-2026-1001', product_status: { known_not_affected: ids } }] }));

  const records: SourceRecord[] = [];
  const warnings: FeedWarning[] = [];
  await readFeeds(feeds, { sink: (r) => void records.push(r), onWarning: (w) => warnings.push(w) });
  assert.deepEqual(warnings, []);
  assert.deepEqual(
    records.map((r) => [r.source.id, r.affected.map((a) => [a.name, a.versions])]),
    [['CVE-2026-1000', named.map((i) => [`pkg-${i}`, [`1.0.${i}`]])]],
  );
  const fromVex = await readVexFile(vexFile);
  assert.deepEqual(
    fromVex.map((s) => [s.vulnerability, s.purl, s.status]),
    named.map((i) => ['CVE-2026-1001', `pkg:npm/pkg-${i}@1.0.${i}`, 'not_affected']),
  );
  // uniqueItems still holds, checked in one pass (the 80,000 ids, one twice)
  const twice = { ...csafDoc('csaf_security_advisory'), product_tree: tree, vulnerabilities: [{ cve: 'CVE-2026-1002', product_status: { known_affected: [...ids.slice(0, 80_000), 'PID-17'] } }] };
  assert.equal(validateCsaf(twice), 'does not match the CSAF 2.0 schema: /vulnerabilities/0/product_status/known_affected must NOT have duplicate items (items ## 17 and 80000 are identical)');
});

test('product groups named by a thousand flags are bounded: the builder skips the document, --vex refuses it', async () => {
  const members = Array.from({ length: 1000 }, (_, i) => `PID-${i}`);
  const doc = {
    ...csafDoc('csaf_vex', 'GROUPS-1'),
    product_tree: {
      full_product_names: [{ product_id: 'PID-0', name: 'p0', product_identification_helper: { purl: 'pkg:npm/left-pad@1.0.0' } }],
      product_groups: [{ group_id: 'G-ALL', product_ids: members }],
    },
    vulnerabilities: [
      {
        cve: 'CVE-2026-2000',
        product_status: { known_not_affected: ['PID-0'] },
        // 1,001 flags, each with its own label (items must be unique), all naming the same group: 1,001,000 product ids
        flags: Array.from({ length: 1001 }, (_, i) => ({ label: 'component_not_present', date: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`, group_ids: ['G-ALL'], product_ids: [`PID-${i % 1000}`] })),
      },
    ],
  };
  assert.equal(validateCsaf(doc), null, 'a valid document');
  const feeds = path.join(tmp, 'groups');
  await mkdir(path.join(feeds, 'csaf'), { recursive: true });
  const file = path.join(feeds, 'csaf', 'groups.json');
  await writeFile(file, JSON.stringify(doc));
  const warnings: FeedWarning[] = [];
  await assert.rejects(readFeeds(feeds, { sink: () => undefined, onWarning: (w) => warnings.push(w) }), (e: unknown) => isOukError(e) && e.code === 'FEED_UNREADABLE');
  const why = `its flags and threats name product groups holding more than ${MAX_GROUP_EXPANSION} product ids in all: not a document this reader takes`;
  assert.deepEqual(warnings.map((w) => [w.file, w.reason]), [[file, why]]);
  await assert.rejects(readVexFile(file), (e: unknown) => isOukError(e) && e.code === 'VEX_INVALID' && e.message === `--vex ${file}: ${why}`);
});

test('--vex: too many statements, or a document of the wrong shape, is VEX_INVALID naming the file and where; one that suppresses nothing is a warning', async () => {
  const openVex = (statements: unknown): unknown => ({ '@context': 'https://openvex.dev/ns/v0.2.0', '@id': 'https://example.invalid/vex/1', author: 'a', timestamp: '2026-01-01T00:00:00Z', version: 1, statements });
  const cdx = (vulnerabilities: unknown): unknown => ({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, ...(vulnerabilities === undefined ? {} : { vulnerabilities }) });
  const refused = (doc: unknown, message: RegExp, label: string): void => {
    assert.throws(
      () => parseVex(doc, 'site.json'),
      (e: unknown) => e instanceof OukError && e.code === 'VEX_INVALID' && e.exitCode === 69 && message.test(e.message),
      label,
    );
  };
  // one statement with 1,001 ids and 1,000 products: 1,001,000 statements from a 40 KB file
  const many = openVex([
    {
      vulnerability: { name: 'CVE-2026-3000', aliases: Array.from({ length: 1000 }, (_, i) => `GHSA-${i}`) },
      products: Array.from({ length: 1000 }, (_, i) => ({ '@id': `pkg:npm/p${i}` })),
      status: 'not_affected',
      justification: 'component_not_present',
    },
  ]);
  refused(many, new RegExp(`^--vex site\\.json: it makes more than ${MAX_VEX_STATEMENTS} statements`), 'aliases × products');

  const cases: [unknown, RegExp][] = [
    [openVex(undefined), /an OpenVEX document needs a "statements" array \(it is missing\)/],
    [openVex({}), /"statements" array \(it is an object\)/],
    [openVex(['x']), /statements\[0\] is a string, not a statement object/],
    [openVex([{ vulnerability: { name: 'CVE-1' }, products: ['pkg:npm/a'], status: 'not-affected' }]), /statements\[0\]\.status "not-affected" is not a status: OpenVEX's are not_affected, affected, fixed, under_investigation/],
    [openVex([{ products: ['pkg:npm/a'], status: 'fixed' }]), /statements\[0\] names no vulnerability/],
    [openVex([{ vulnerability: { name: 'CVE-1' }, status: 'not_affected' }]), /statements\[0\] says not_affected but lists no products/],
    [openVex([{ vulnerability: { name: 'CVE-1' }, products: 'pkg:npm/a', status: 'fixed' }]), /statements\[0\]\.products is a string, not an array/],
    [openVex([{ vulnerability: { name: 'CVE-1' }, products: [7], status: 'fixed' }]), /statements\[0\]\.products\[0\] is a number/],
    [cdx(undefined), /a CycloneDX document without a "vulnerabilities" array \(it is missing\) is an SBOM, not a VEX/],
    [cdx([{ id: 'CVE-1', analysis: { state: 'not affected' }, affects: [{ ref: 'a' }] }]), /vulnerabilities\[0\]\.analysis\.state "not affected" is not a state/],
    [cdx([{ id: 'CVE-1', analysis: { state: 'resolved' } }]), /vulnerabilities\[0\] says resolved but affects nothing/],
    [cdx([{ analysis: { state: 'not_affected' }, affects: [{ ref: 'a' }] }]), /vulnerabilities\[0\] says not_affected but has no id/],
    [cdx([{ id: 'CVE-1', analysis: { state: 'not_affected' }, affects: [{ bomref: 'a' }] }]), /vulnerabilities\[0\]\.affects\[0\] has no ref/],
    [cdx([{ id: 'CVE-1', analysis: 'not_affected' }]), /vulnerabilities\[0\]\.analysis is a string, not an object/],
    [{ spdxVersion: 'SPDX-2.3' }, /neither OpenVEX \(@context openvex\), CycloneDX \(bomFormat\) nor CSAF/],
    [[], /not a JSON object \(an array\)/],
  ];
  for (const [doc, why] of cases) refused(doc, new RegExp(`^--vex site\\.json: .*${why.source}`), why.source);

  // well-formed files that suppress nothing: applied, with a warning each (the CLI prints them on stderr)
  const dir = path.join(tmp, 'vex-warn');
  await mkdir(dir);
  const affectedOnly = path.join(dir, 'affected.openvex.json');
  await writeFile(affectedOnly, JSON.stringify(openVex([{ vulnerability: { name: 'CVE-1' }, products: ['pkg:npm/a'], status: 'affected', action_statement: 'upgrade' }])));
  const hashesOnly = path.join(dir, 'hashes.openvex.json');
  await writeFile(hashesOnly, JSON.stringify(openVex([{ vulnerability: { name: 'CVE-1' }, products: [{ hashes: { 'sha-256': 'ab' } }], status: 'not_affected', justification: 'component_not_present' }])));
  const sbomNotVex = path.join(dir, 'vulns-unanalysed.cdx.json');
  await writeFile(sbomNotVex, JSON.stringify(cdx([{ id: 'CVE-1', affects: [{ ref: 'a' }] }])));
  const good = path.join(dir, 'good.cdx.json');
  await writeFile(good, JSON.stringify(cdx([{ id: 'CVE-1', analysis: { state: 'false_positive' }, affects: [{ ref: 'a' }] }])));
  const warnings: string[] = [];
  const statements = await readVexFiles([affectedOnly, hashesOnly, sbomNotVex, good], warnings);
  assert.deepEqual(warnings, [
    `--vex ${affectedOnly} suppresses nothing: none of its 1 statements says not_affected or fixed`,
    `--vex ${hashesOnly} suppresses nothing: its 1 not_affected/fixed statement(s) name products only by what the scanner does not match (a purl, a CPE or a bom-ref is needed)`,
    `--vex ${sbomNotVex} suppresses nothing: none of its 1 vulnerabilities has a not_affected, false_positive or resolved analysis`,
  ]);
  assert.deepEqual(statements.map((s) => [s.vulnerability, s.bomRef, s.status, s.justification]), [['CVE-1', 'a', 'not_affected', 'false_positive']]);

  // the scan's statements together are bounded too: the second file gets what the first left
  const half = (k: number): unknown => openVex([{ vulnerability: { name: `CVE-${k}` }, products: Array.from({ length: MAX_VEX_STATEMENTS / 2 + 1 }, (_, i) => `pkg:npm/p${i}`), status: 'fixed' }]);
  const first = path.join(dir, 'half-1.openvex.json');
  const second = path.join(dir, 'half-2.openvex.json');
  await writeFile(first, JSON.stringify(half(1)));
  await writeFile(second, JSON.stringify(half(2)));
  await assert.rejects(readVexFiles([first, second], []), (e: unknown) => isOukError(e) && e.code === 'VEX_INVALID' && e.message.startsWith(`--vex ${second}: it makes more than ${MAX_VEX_STATEMENTS / 2 - 1} statements`));
});

test('applyVex (indexed by vulnerability and product): the first matching statement wins, by purl, CPE, bom-ref or the SBOM subject', () => {
  const st = (over: Partial<VexStatement>): VexStatement => ({ vulnerability: 'CVE-1', purl: null, cpe: null, bomRef: null, status: 'not_affected', justification: null, impact: null, source: 's', ...over });
  const finding = (component: string, purl: string, id = 'CVE-1', aliases: string[] = []): Finding => ({ advisoryId: id, aliases, component, purl }) as unknown as Finding;
  const components = new Map([
    ['a', { ref: 'a', purl: 'pkg:npm/a@1.0.0', cpe: 'cpe:2.3:a:acme:a:1.0.0:*:*:*:*:*:*:*' }],
    ['b', { ref: 'b', purl: 'pkg:npm/b@2.0.0', cpe: null }],
    ['c', { ref: 'c', purl: 'pkg:npm/c@3.0.0', cpe: null }],
  ]);
  const statements = [
    st({ purl: 'pkg:npm/a@9.9.9', source: 'other version' }),
    st({ cpe: 'cpe:2.3:a:acme:a:*:*:*:*:*:*:*:*', status: 'fixed', source: 'cpe' }),
    st({ purl: 'pkg:npm/A', source: 'purl, any version' }),
    st({ vulnerability: 'GHSA-1', bomRef: 'b', source: 'bom-ref by alias' }),
    st({ vulnerability: 'CVE-2', purl: 'pkg:oci/product', source: 'subject' }),
  ];
  const r = applyVex(
    [finding('a', 'pkg:npm/a@1.0.0'), finding('b', 'pkg:npm/b@2.0.0', 'CVE-1', ['GHSA-1']), finding('c', 'pkg:npm/c@3.0.0'), finding('c', 'pkg:npm/c@3.0.0', 'CVE-2')],
    statements,
    components,
    { purl: 'pkg:oci/product@sha256:ab', cpe: null },
  );
  assert.deepEqual(r.suppressed.map((f) => [f.component, f.advisoryId, f.vex.source, f.vex.status]), [
    ['a', 'CVE-1', 'cpe', 'fixed'],
    ['b', 'CVE-1', 'bom-ref by alias', 'not_affected'],
    ['c', 'CVE-2', 'subject', 'not_affected'],
  ]);
  assert.deepEqual(r.findings.map((f) => [f.component, f.advisoryId]), [['c', 'CVE-1']]);
});

test('a kit member that decompresses past its manifest content size is ARCHIVE_CORRUPT (the zstd child is stopped)', async () => {
  const content = Buffer.alloc(8 * 1024 * 1024, 'a');
  const stored = execFileSync('zstd', ['-q', '-c'], { input: content, maxBuffer: 64 * 1024 * 1024 });
  const member = { path: 'db/advisories.tsv.zst', compression: 'zstd' as const, content: { size: 1024 * 1024, sha256: '0'.repeat(64) } };
  const drain = async (s: Readable): Promise<number> => {
    let n = 0;
    for await (const c of s) n += (c as Buffer).length;
    return n;
  };
  await assert.rejects(drain(decodeMember(member, Readable.from([stored]))), (e: unknown) => isOukError(e) && e.code === 'ARCHIVE_CORRUPT' && /decompresses to more than the 1048576 bytes its manifest says/.test(e.message));
  assert.equal(await drain(decodeMember({ ...member, content: { ...member.content, size: content.length } }, Readable.from([stored]))), content.length, 'at its size it decompresses whole');
});
