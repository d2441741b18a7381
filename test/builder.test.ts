/**
 * The bundle builder against the real feed records in ../shared/feeds: one full
 * build (made before the 'full build' tests, shared by their assertions),
 * unpacked with the real `tar`, its DB members read back row by row; the merge
 * checked on named CVEs present in several feeds, the alias graph (one
 * advisory per vulnerability) and the duplicate-id rule (the newest copy
 * wins); withdrawn records; malformed and unreadable feeds; the SPDX SBOM
 * against the SPDX 2.3 schema; the signature with openssl; and a second build
 * of the same inputs, byte for byte. The 'bad input' tests build only what
 * they need.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { buildBundle, type BuildResult } from '../builder/build.ts';
import type { FeedWarning } from '../builder/feeds/index.ts';
import type { Advisory } from '../builder/model.ts';
import { FORMAT_VERSION, parseManifest } from '../bundle/manifest.ts';
import { readBundle } from '../bundle/reader.ts';
import { TABLES } from '../bundle/tables.ts';
import { decodeRow } from '../bundle/tsv.ts';
import { OukError } from '../lib/errors.ts';
import { generateKeyPair } from '../signing/index.ts';
import { unpackKit } from './helpers/kit.ts';
import { writeOciImage } from './fixtures/oci-images.ts';
import { contentPath } from '../bundle/member-codec.ts';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(repoRoot, '../shared');
const FEEDS = path.join(shared, 'feeds');
const VERSION = '2026-11-29';
const PASSWORD = 'builder-test-password';

interface AdvisoryRow {
  cells: (string | null)[];
  doc: Advisory;
}

let tmp: string;
let keyPath: string;
let pubPath: string;
let plainKeyPath: string;
let imagePath: string;
let built: BuildResult;
let warnings: FeedWarning[];
let unpacked: string;
/** Named advisories only (the docs are large): id -> row. */
const advisories = new Map<string, AdvisoryRow>();
/** Rows of the other tables for the named advisories: table -> id -> rows. */
const rowsOf = new Map<string, Map<string, (string | null)[][]>>();
/** alias -> advisory ids, over the whole aliases member. */
const aliasIndex = new Map<string, string[]>();
/** Every advisory_id of the advisories member. */
const allIds = new Set<string>();

const NAMED = [
  'CVE-2023-43665', // NVD + GHSA (ghsa/ and osv/PyPI/) + PYSEC + Bitnami
  'CVE-2015-7546', // NVD + GHSA + PYSEC + Debian per-CVE record
  'CVE-2026-56871', // only GO-2026-6170, withdrawn
  'CVE-2026-26995', // NVD Rejected + GO-2026-4512 (not withdrawn)
  'CVE-2003-0598', // NVD only, Rejected
  'GHSA-2pr6-76vf-7546', // a GHSA with no CVE, in ghsa/ and osv/npm/
  'CVE-2025-25193', // netty-common: GHSA-389x in ghsa/ (last_affected) and, newer, in osv/Maven/ (fixed)
  'CVE-2020-26892', // nats-io/jwt: GO-2022-0380 names GHSA-2c64-vj8g-vwrq, which names nothing back
  'CVE-2022-23529', // jsonwebtoken: GHSA-27h2-hvpr-p74q twice, the osv/npm/ copy without aliases
  'CVE-2015-5739', // GO-2021-0159 names three CVEs, each with its NVD record
  'GHSA-7fhm-mqm4-2wp7', // "Withdrawn: ESLint dependencies …": withdrawn in its title only, no `withdrawn` time
  // withdrawn in words as duplicates, no `withdrawn` time:
  'GHSA-3hrr-xwvg-hxvr', // Keycloak, "Duplicate Advisory: …", a duplicate of GHSA-cq42-vhv7-xr7p
  'GHSA-57rh-gr4v-j5f6', // Keycloak, of GHSA-xmmm-jw76-q7vg
  'GHSA-4xx7-2cx3-x473', // Keycloak, of GHSA-xgfv-xpx8-qhcr
  'GHSA-jrmh-v64j-mjm9', // RESTEasy, of GHSA-2c6g-pfx3-w7h8
  'GHSA-rm7j-f5g5-27vv', // JSON-Java, of GHSA-4jq9-2xhw-jpx7 (ghsa/ and osv/Maven/)
  'GHSA-8mwq-mj73-qv68', // sequelize, "Duplicate advisory: …" (ghsa/ and osv/npm/)
  'GHSA-62qf-jcq8-8gxw', // sqlparse (ghsa/ and osv/PyPI/)
  'CVE-2022-40156', // only GHSA-4rv7-wj6m-6c6r (woodstox): a plain title, "## Withdrawn" in its details
];

async function* lines(file: string): AsyncGenerator<string> {
  yield* createInterface({ input: createReadStream(file), crlfDelay: Infinity });
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** What every test uses: a scratch directory, the signing keys and an image file. */
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'stella-builder-test-'));
  const keys = await generateKeyPair(PASSWORD);
  keyPath = path.join(tmp, 'cosign.key');
  pubPath = path.join(tmp, 'cosign.pub');
  await writeFile(keyPath, keys.privateKeyPem, { mode: 0o600 });
  await writeFile(pubPath, keys.publicKeyPem);
  const plain = await generateKeyPair();
  plainKeyPath = path.join(tmp, 'plain.key');
  await writeFile(plainKeyPath, plain.privateKeyPem, { mode: 0o600 });
  // a two-platform OCI layout, 300 kB layers (test/fixtures/oci-images.ts)
  imagePath = `scanner=${(await writeOciImage(path.join(tmp, 'oci-scanner'), { name: 'scanner', padBytes: 150_000 })).dir}`;
});

/** The full build of ../shared/feeds, unpacked, and the rows of the named advisories. */
async function buildFull(): Promise<void> {
  warnings = [];
  built = await buildBundle({
    feedsDir: FEEDS,
    keyPath,
    password: PASSWORD,
    out: path.join(tmp, 'a', `stella-ouk-${VERSION}.tar.gz`),
    version: VERSION,
    images: [imagePath],
    sourceDateEpoch: undefined,
    onWarning: (w) => warnings.push(w),
  });

  unpacked = path.join(tmp, 'x');
  await mkdir(unpacked);
  await unpackKit(built.out, unpacked);

  for await (const line of lines(path.join(unpacked, 'db/advisories.tsv'))) {
    const cells = decodeRow(line);
    allIds.add(cells[0]!);
    if (NAMED.includes(cells[0]!)) advisories.set(cells[0]!, { cells, doc: JSON.parse(cells[10]!) as Advisory });
  }
  for (const t of TABLES.slice(1)) {
    const byId = new Map<string, (string | null)[][]>();
    for await (const line of lines(path.join(unpacked, t.member))) {
      const cells = decodeRow(line);
      if (t.name === 'aliases') aliasIndex.set(cells[1]!, [...(aliasIndex.get(cells[1]!) ?? []), cells[0]!]);
      if (!NAMED.includes(cells[0]!)) continue;
      byId.set(cells[0]!, [...(byId.get(cells[0]!) ?? []), cells]);
    }
    rowsOf.set(t.name, byId);
  }
  // the doc carries no aliases (the aliases table does): put them back for the assertions below
  for (const [id, a] of advisories) a.doc.aliases = (rowsOf.get('aliases')?.get(id) ?? []).map((r) => r[1]!);
}

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function adv(id: string): AdvisoryRow {
  const a = advisories.get(id);
  assert.ok(a, `${id} is in db/advisories.tsv`);
  return a;
}

function rows(table: string, id: string): (string | null)[][] {
  return rowsOf.get(table)?.get(id) ?? [];
}

let fullBuild: Promise<void> | undefined;

describe('full build from ../shared/feeds', () => {
  // once, before the first of these tests that runs: a run that filters them all out builds nothing
  beforeEach(() => (fullBuild ??= buildFull()));

  test('the manifest lists every member with its size, sha256 and rows; tar -xzf unpacks them all', async () => {
    const raw = await readFile(path.join(unpacked, 'manifest.json'));
    const m = parseManifest(raw);
    assert.equal(m.formatVersion, FORMAT_VERSION);
    assert.equal(m.bundleVersion, VERSION);
    assert.equal(m.kind, 'full');
    assert.equal(m.created, '2026-11-29T00:00:00Z');
    assert.equal(m.expires, '2026-12-30T00:00:00Z');
    assert.match(m.generator, /^stella-ouk \d+\.\d+\.\d+/);
    // the DB members are stored zstd-compressed: the manifest names both the stored bytes and the content
    assert.deepEqual(
      m.members.map((x) => x.path),
      [...TABLES.map((t) => `${t.member}.zst`), 'sbom.spdx.json', ...m.members.filter((x) => x.role === 'image').map((x) => x.path)],
    );
    assert.deepEqual(m.members.filter((x) => x.role === 'image').slice(0, 2).map((x) => x.path), ['images/scanner/oci-layout', 'images/scanner/index.json']);
    assert.equal(m.members.filter((x) => x.role === 'image').length, 2 + 7, 'layout files, the index, 2 manifests, 2 configs, 2 layers');
    for (const member of m.members) {
      const file = path.join(unpacked, member.path);
      assert.equal(await sha256File(file), member.sha256, `${member.path} sha256`);
      assert.equal((await readFile(file)).length, member.size, `${member.path} size`);
      if (member.role === 'db') {
        assert.equal(member.compression, 'zstd');
        const content = path.join(unpacked, contentPath(member));
        assert.deepEqual(member.content, { size: (await readFile(content)).length, sha256: await sha256File(content) }, `${member.path} content`);
      }
    }
    // an OCI layout as it was: every blob's name is its sha256
    for (const x of m.members.filter((y) => y.path.startsWith('images/scanner/blobs/sha256/'))) assert.equal(await sha256File(path.join(unpacked, x.path)), path.basename(x.path));
    assert.deepEqual(m.images?.map((i) => [i.name, i.platforms.length]), [['scanner', 2]]);
    const digest = createHash('sha256');
    for (const t of TABLES) digest.update(`${t.member} ${m.members.find((x) => contentPath(x) === t.member)!.content!.sha256}\n`);
    assert.equal(m.db.digest, digest.digest('hex'));
    assert.equal(m.db.advisories, m.members[0]!.rows);
    // the first tar entry is the manifest
    const { stdout } = await run('tar', ['-tzf', built.out]);
    assert.equal(stdout.split('\n')[0], 'manifest.json');
    // and the streaming reader accepts the whole bundle against it
    const read = await readBundle(createReadStream(built.out));
    assert.equal(read.sha256, built.sha256);
  });

  test('feed counts: every record read, none skipped, snapshot times', async () => {
    const feeds = Object.fromEntries(built.manifest.feeds.map((f) => [f.name, f]));
    assert.deepEqual(Object.keys(feeds), ['nvd', 'osv', 'ghsa']);
    const count = async (dir: string): Promise<number> =>
      (await readdir(path.join(FEEDS, dir), { recursive: true })).filter((f) => String(f).endsWith('.json')).length;
    assert.equal(feeds.osv!.records, await count('osv'));
    assert.equal(feeds.ghsa!.records, await count('ghsa'));
    assert.equal(feeds.nvd!.records, 3000); // three API pages of 1,000 (SOURCES.md)
    for (const f of built.manifest.feeds) assert.equal(f.skipped, 0, `${f.name} skipped`);
    assert.deepEqual(warnings, []);
    assert.equal(feeds.nvd!.snapshot, '2026-03-15T00:00:00.000Z'); // the pages' timestamp
    assert.ok(feeds.osv!.snapshot && feeds.osv!.snapshot > '2026-01-01', 'newest OSV modified');
  });

  test('rows: COPY columns per tables.ts, sorted by advisory_id; the doc carries only what no other column or table does', async () => {
    for (const t of TABLES) {
      let prev: string | null = null;
      let n = 0;
      for await (const line of lines(path.join(unpacked, t.member))) {
        const cells = decodeRow(line);
        assert.equal(cells.length, t.columns.length, `${t.member} row ${n} has ${t.columns.length} columns`);
        const id = cells[0]!;
        if (prev !== null) {
          const c = Buffer.compare(Buffer.from(prev), Buffer.from(id));
          assert.ok(t.name === 'advisories' ? c < 0 : c <= 0, `${t.member} sorted at ${id}`);
        }
        if (t.name === 'advisories') {
          assert.match(cells[9]!, /^[0-9a-f]{64}$/, `content_hash of ${id}`);
          // affected, cpes, aliases, summary and the times live in their own tables and columns: carried once
          assert.deepEqual(Object.keys(JSON.parse(cells[10]!) as object), ['cwes', 'databaseSeverity', 'details', 'references', 'related', 'severity', 'sources', 'upstream'], `doc of ${id}`);
        }
        prev = id;
        n++;
      }
      assert.equal(n, built.rows[t.name], `${t.member} rows`);
    }
  });

  test('CVE-2023-43665: NVD, GHSA, OSV (GHSA copy, PYSEC, Bitnami) become one advisory; the newer GHSA copy wins', () => {
    const { cells, doc } = adv('CVE-2023-43665');
    assert.equal(cells[8], 'nvd,osv');
    assert.deepEqual(
      doc.sources.map((s) => `${s.feed}:${s.id}`),
      ['nvd:CVE-2023-43665', 'osv:BIT-django-2023-43665', 'osv:GHSA-h8gc-pgj2-vjm3', 'osv:PYSEC-2023-226'],
    );
    // GHSA-h8gc-pgj2-vjm3 is in ghsa/ (modified 2024-11-18) and osv/PyPI/ (2024-11-20): the osv/ copy wins, naming the one it replaced
    assert.deepEqual(doc.sources.find((s) => s.id === 'GHSA-h8gc-pgj2-vjm3')!.superseded, [{ feed: 'ghsa', modified: '2024-11-18T16:26:32.000Z' }]);
    assert.deepEqual(doc.aliases, ['BIT-django-2023-43665', 'GHSA-h8gc-pgj2-vjm3', 'PYSEC-2023-226']);
    assert.deepEqual(rows('aliases', 'CVE-2023-43665').map((r) => r[1]), doc.aliases);
    assert.deepEqual(aliasIndex.get('GHSA-h8gc-pgj2-vjm3'), ['CVE-2023-43665']);
    assert.equal(cells[1], 'Django Denial-of-service in django.utils.text.Truncator'); // GHSA's title
    // headline: NVD's primary v3.1 wins over GHSA's own v3.1 (AC:H, 5.9)
    assert.deepEqual(cells.slice(2, 5), ['HIGH', '7.5', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H']);
    const sev = doc.severity.map((s) => `${s.source} ${s.type} ${s.score} ${s.vector}`);
    assert.ok(sev.includes('osv CVSS_V3 5.9 CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H'), 'GHSA v3 score computed from its vector');
    assert.ok(sev.includes('osv CVSS_V4 8.7 CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N'), 'GHSA v4 score computed');
    assert.ok(!sev.some((x) => x.startsWith('ghsa ')), 'nothing from the superseded ghsa/ copy');
    assert.ok(doc.severity.some((s) => s.source === 'nvd' && s.primary && s.assigner === 'nvd@nist.gov' && s.score === 7.5));
    assert.deepEqual(doc.cwes, ['CWE-400', 'CWE-1284']);
    assert.equal(cells[5], '2023-11-03T05:15:00.000Z'); // earliest published (PYSEC)
    assert.equal(cells[6], '2025-11-06T13:25:46.476Z'); // latest modified (Bitnami)
    assert.equal(cells[7], null);
    const urls = doc.references.map((r) => r.url);
    assert.equal(new Set(urls).size, urls.length, 'references deduped by URL');
    assert.ok(urls.includes('https://www.djangoproject.com/weblog/2023/oct/04/security-releases/'));

    const affected = rows('affected', 'CVE-2023-43665');
    assert.deepEqual(affected.map((r) => `${r[1]}|${r[2]}|${r[3]}`), ['Bitnami|django|pkg:bitnami/django', 'PyPI|django|pkg:pypi/django']);
    const pypi = affected[1]!;
    const ranges = JSON.parse(pypi[4]!) as { type: string; events: Record<string, string>[] }[];
    // GHSA's three ranges and PYSEC's single range, each kept once
    assert.equal(ranges.length, 4);
    assert.deepEqual(ranges[2], { type: 'ECOSYSTEM', events: [{ introduced: '4.2a1' }, { fixed: '4.2.6' }] });
    assert.deepEqual(ranges[3]!.events, [{ introduced: '3.2' }, { fixed: '3.2.22' }, { introduced: '4.1' }, { fixed: '4.1.12' }, { introduced: '4.2' }, { fixed: '4.2.6' }]);
    const versions = JSON.parse(pypi[5]!) as string[];
    assert.ok(versions.includes('4.2.5') && versions.includes('3.2.21'), 'explicit versions from the OSV copies');
    assert.equal(new Set(versions).size, versions.length);

    const cpes = rows('cpes', 'CVE-2023-43665').map((r) => r.slice(1).join('|'));
    assert.deepEqual(cpes, [
      'a|djangoproject|django|cpe:2.3:a:djangoproject:django:*:*:*:*:*:*:*:*|t|3.2|||3.2.22',
      'a|djangoproject|django|cpe:2.3:a:djangoproject:django:*:*:*:*:*:*:*:*|t|4.1|||4.1.12',
      'a|djangoproject|django|cpe:2.3:a:djangoproject:django:*:*:*:*:*:*:*:*|t|4.2|||4.2.6',
      'o|fedoraproject|fedora|cpe:2.3:o:fedoraproject:fedora:39:*:*:*:*:*:*:*|t||||',
    ]);
  });

  test('CVE-2015-7546: GHSA, PYSEC and the Debian per-CVE record join NVD; v2 kept beside v3', () => {
    const { cells, doc } = adv('CVE-2015-7546');
    assert.equal(cells[8], 'nvd,osv');
    // NVD's CVE-2015-7546 and Debian's osv/ record of the same id are two records, not two copies: both stay
    assert.deepEqual(
      doc.sources.map((s) => `${s.feed}:${s.id}`),
      ['nvd:CVE-2015-7546', 'osv:CVE-2015-7546', 'osv:GHSA-8c4w-v65p-jvcv', 'osv:PYSEC-2016-20'],
    );
    assert.deepEqual(doc.cwes, ['CWE-522']);
    assert.ok(doc.severity.some((s) => s.source === 'nvd' && s.type === 'CVSS_V2' && s.score === 6));
    assert.equal(cells[2], 'HIGH');
    const pkgs = rows('affected', 'CVE-2015-7546').map((r) => `${r[1]}|${r[2]}`);
    assert.ok(pkgs.includes('Debian:12|keystone'));
    assert.ok(pkgs.includes('PyPI|keystonemiddleware'));
    assert.ok(rows('cpes', 'CVE-2015-7546').length > 0);
  });

  test('a GHSA without a CVE keeps one of its ghsa/ and osv/ copies (same modified: the ghsa/ one) under its own id', () => {
    const { cells, doc } = adv('GHSA-2pr6-76vf-7546');
    assert.deepEqual(doc.sources.map((s) => `${s.feed}:${s.id}`), ['ghsa:GHSA-2pr6-76vf-7546']);
    assert.deepEqual(doc.sources[0]!.superseded, [{ feed: 'osv', modified: '2021-08-04T21:32:56.000Z' }]);
    assert.deepEqual(doc.aliases, []);
    assert.equal(cells[8], 'ghsa');
    assert.deepEqual(rows('affected', 'GHSA-2pr6-76vf-7546').map((r) => `${r[1]}|${r[2]}`), ['npm|js-yaml']);
  });

  test('netty-common CVE-2025-25193: the newest copy of GHSA-389x-839f-4rhx wins as a whole (fixed 4.1.118, not the stale last_affected)', () => {
    const { cells, doc } = adv('CVE-2025-25193');
    assert.deepEqual(doc.aliases, ['GHSA-389x-839f-4rhx']);
    assert.deepEqual(doc.sources.map((s) => `${s.feed}:${s.id}`), ['osv:GHSA-389x-839f-4rhx']);
    assert.deepEqual(doc.sources[0]!.superseded, [{ feed: 'ghsa', modified: '2025-02-11T17:22:39.000Z' }]);
    assert.equal(cells[8], 'osv');
    const affected = rows('affected', 'CVE-2025-25193');
    assert.deepEqual(affected.map((r) => `${r[1]}|${r[2]}`), ['Maven|io.netty:netty-common']);
    assert.deepEqual(JSON.parse(affected[0]![4]!), [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '4.1.118' }] }]);
  });

  test('nats-io/jwt CVE-2020-26892: an alias named on one side only still joins (GO-2022-0380 -> GHSA-2c64-vj8g-vwrq)', () => {
    const { doc } = adv('CVE-2020-26892');
    assert.deepEqual(doc.aliases, ['GHSA-2c64-vj8g-vwrq', 'GHSA-4w5x-x539-ppf5', 'GO-2022-0380']);
    assert.deepEqual(doc.sources.map((s) => `${s.feed}:${s.id}`), ['ghsa:GHSA-2c64-vj8g-vwrq', 'ghsa:GHSA-4w5x-x539-ppf5', 'osv:GO-2022-0380']);
    for (const id of doc.aliases) assert.deepEqual(aliasIndex.get(id), ['CVE-2020-26892'], `${id} belongs to CVE-2020-26892 alone`);
    assert.ok(!allIds.has('GHSA-2c64-vj8g-vwrq') && !allIds.has('GO-2022-0380'), 'no advisory of their own');
  });

  test('jsonwebtoken CVE-2022-23529: the same GHSA twice, one copy without aliases, is one advisory', () => {
    const { doc } = adv('CVE-2022-23529');
    assert.deepEqual(doc.aliases, ['GHSA-27h2-hvpr-p74q']);
    assert.deepEqual(aliasIndex.get('GHSA-27h2-hvpr-p74q'), ['CVE-2022-23529']);
    assert.ok(!allIds.has('GHSA-27h2-hvpr-p74q'));
    assert.deepEqual(doc.sources.map((s) => `${s.feed}:${s.id}`), ['ghsa:GHSA-27h2-hvpr-p74q'], 'same modified: the ghsa/ copy, which names the CVE');
  });

  test('a record naming several CVEs joins them: GO-2021-0159 makes CVE-2015-5739/5740/5741 one advisory under the oldest CVE', () => {
    const { cells, doc } = adv('CVE-2015-5739');
    assert.deepEqual(doc.aliases, ['CVE-2015-5740', 'CVE-2015-5741', 'GO-2021-0159']);
    assert.deepEqual(doc.sources.map((s) => `${s.feed}:${s.id}`), ['nvd:CVE-2015-5739', 'nvd:CVE-2015-5740', 'nvd:CVE-2015-5741', 'osv:GO-2021-0159']);
    assert.equal(cells[8], 'nvd,osv');
    assert.ok(!allIds.has('CVE-2015-5740') && !allIds.has('CVE-2015-5741'));
    assert.ok(rows('cpes', 'CVE-2015-5739').length > 0, 'the NVD records keep their CPEs');
  });

  test('the alias graph is a partition: every alias belongs to exactly one advisory and is no advisory itself', () => {
    const shared = [...aliasIndex].filter(([, ids]) => ids.length !== 1);
    assert.deepEqual(shared, []);
    const both = [...aliasIndex.keys()].filter((a) => allIds.has(a));
    assert.deepEqual(both, []);
    assert.ok(aliasIndex.size > 3000, `${aliasIndex.size} aliases`);
  });

  test('withdrawn records are kept and marked; an advisory is withdrawn only when every source is', () => {
    const go = adv('CVE-2026-56871');
    assert.equal(go.cells[7], '2026-08-18T20:22:49.000Z');
    assert.deepEqual(go.doc.sources.map((s) => `${s.feed}:${s.id}`), ['osv:GO-2026-6170']);
    assert.equal(go.doc.sources[0]!.published, null, "Go's zero time 0001-01-01 is no date");
    assert.ok(rows('affected', 'CVE-2026-56871').length > 0, 'its affected packages are kept');

    const rejected = adv('CVE-2003-0598');
    const nvdSource = rejected.doc.sources[0]!;
    assert.equal(nvdSource.status, 'Rejected');
    assert.equal(rejected.cells[7], nvdSource.modified);

    const mixed = adv('CVE-2026-26995');
    assert.equal(mixed.cells[7], null, 'GO-2026-4512 still stands');

    // GitHub withdrew it in words only ("Withdrawn: …", no `withdrawn` time): withdrawn at its modified time.
    const titled = adv('GHSA-7fhm-mqm4-2wp7');
    assert.equal(titled.cells[7], '2020-04-03T21:54:52.000Z');
    assert.ok(mixed.doc.sources.find((s) => s.feed === 'nvd')!.withdrawn, 'the NVD source is marked');
  });

  test('duplicates GitHub withdrew in words only are withdrawn at the modified time of their newest copy, with their sources marked', async () => {
    const copiesOf = async (id: string): Promise<{ file: string; modified: string }[]> => {
      const out: { file: string; modified: string }[] = [];
      const files = [`ghsa/${id}.json`, ...(await readdir(path.join(FEEDS, 'osv'))).map((eco) => `osv/${eco}/${id}.json`)];
      for (const f of files.filter((x) => existsSync(path.join(FEEDS, x)))) {
        const raw = JSON.parse(await readFile(path.join(FEEDS, f), 'utf8')) as { modified: string; withdrawn?: string };
        assert.equal(raw.withdrawn, undefined, `${f}: no withdrawn field`);
        out.push({ file: f, modified: new Date(raw.modified).toISOString() });
      }
      return out;
    };
    const cases: [advisory: string, record: string][] = [
      ['GHSA-3hrr-xwvg-hxvr', 'GHSA-3hrr-xwvg-hxvr'],
      ['GHSA-57rh-gr4v-j5f6', 'GHSA-57rh-gr4v-j5f6'],
      ['GHSA-4xx7-2cx3-x473', 'GHSA-4xx7-2cx3-x473'],
      ['GHSA-jrmh-v64j-mjm9', 'GHSA-jrmh-v64j-mjm9'],
      ['GHSA-rm7j-f5g5-27vv', 'GHSA-rm7j-f5g5-27vv'],
      ['GHSA-8mwq-mj73-qv68', 'GHSA-8mwq-mj73-qv68'],
      ['GHSA-62qf-jcq8-8gxw', 'GHSA-62qf-jcq8-8gxw'],
      ['CVE-2022-40156', 'GHSA-4rv7-wj6m-6c6r'],
    ];
    for (const [advisoryId, recordId] of cases) {
      const copies = await copiesOf(recordId);
      assert.ok(copies.length > 0, `${recordId} is in ../shared/feeds`);
      const newest = copies.map((c) => c.modified).sort().at(-1)!;
      const a = adv(advisoryId);
      assert.equal(a.cells[7], newest, `${advisoryId}: withdrawn at ${recordId}'s modified time`);
      const source = a.doc.sources.find((x) => x.id === recordId)!;
      assert.equal(source.withdrawn, newest, `${advisoryId}: the source ${recordId} is marked`);
      assert.ok(a.doc.sources.every((x) => x.withdrawn !== null), `${advisoryId}: every source withdrawn`);
    }
  });

  test('sbom.spdx.json validates against the SPDX 2.3 schema and lists every member with its SHA256', async () => {
    const schema = JSON.parse(await readFile(path.join(shared, 'conformance/spdx-2.3.schema.json'), 'utf8')) as { $schema: string };
    assert.match(schema.$schema, /draft-07/);
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    const sbom = JSON.parse(await readFile(path.join(unpacked, 'sbom.spdx.json'), 'utf8')) as {
      spdxVersion: string;
      creationInfo: { created: string };
      documentNamespace: string;
      files: { fileName: string; licenseConcluded: string; checksums: { algorithm: string; checksumValue: string }[] }[];
      packages: { licenseDeclared: string; licenseConcluded: string }[];
      relationships: { relationshipType: string }[];
    };
    assert.ok(validate(sbom), JSON.stringify(validate.errors));
    // the kit is part of Stella Ops: AGPL-3.0-or-later, inherited by every component
    assert.deepEqual([sbom.packages[0]!.licenseDeclared, sbom.packages[0]!.licenseConcluded], ['AGPL-3.0-or-later', 'AGPL-3.0-or-later']);
    assert.ok(sbom.files.every((f) => f.licenseConcluded === 'AGPL-3.0-or-later'));
    assert.equal(sbom.spdxVersion, 'SPDX-2.3');
    assert.equal(sbom.creationInfo.created, built.manifest.created);
    const expected = built.manifest.members.filter((m) => m.role === 'db' || m.role === 'image');
    assert.deepEqual(sbom.files.map((f) => f.fileName), expected.map((m) => `./${m.path}`));
    for (const [i, f] of sbom.files.entries()) {
      assert.equal(f.checksums.find((c) => c.algorithm === 'SHA256')?.checksumValue, expected[i]!.sha256);
    }
    // the files, and one package per image named by its index digest
    const images = built.manifest.images ?? [];
    assert.equal(sbom.relationships.filter((r) => r.relationshipType === 'CONTAINS').length, expected.length + images.length);
    const pkgs = sbom.packages as unknown as Array<{ name: string; checksums?: Array<{ checksumValue: string }>; comment?: string }>;
    for (const img of images) {
      const pkg = pkgs.find((x) => x.name === img.name);
      assert.equal(pkg?.checksums?.[0]?.checksumValue, img.indexDigest.slice('sha256:'.length));
      for (const p of img.platforms) assert.ok(pkg?.comment?.includes(`${p.os}/${p.architecture} ${p.digest}`));
    }
    assert.ok(sbom.documentNamespace.endsWith(createHash('sha256').update(expected.map((m) => `${m.path} ${m.sha256}\n`).join('')).digest('hex')));
  });

  test('openssl verifies FILE.sig against the public key', async () => {
    const der = path.join(tmp, 'sig.der');
    await writeFile(der, Buffer.from((await readFile(built.sigPath, 'utf8')).trim(), 'base64'));
    const { stdout } = await run('openssl', ['dgst', '-sha256', '-verify', pubPath, '-signature', der, built.out]);
    assert.match(stdout, /Verified OK/);
    const sigstore = JSON.parse(await readFile(built.sigstorePath!, 'utf8')) as { mediaType: string };
    assert.equal(sigstore.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  });

  test('reproducible: a second build of the same inputs and version is byte-identical', async () => {
    const again = await buildBundle({
      feedsDir: FEEDS,
      keyPath: plainKeyPath, // the key signs the file; it is not in the tarball
      out: path.join(tmp, 'b', `stella-ouk-${VERSION}.tar.gz`),
      version: VERSION,
      images: [imagePath],
      sourceDateEpoch: undefined,
      onWarning: () => undefined,
    });
    assert.equal(again.sha256, built.sha256);
    assert.ok((await readFile(again.out)).equals(await readFile(built.out)));
  });
});

describe('bad input', () => {
  async function feedsDir(name: string): Promise<string> {
    const dir = path.join(tmp, name);
    for (const f of ['nvd', 'osv/PyPI', 'ghsa']) await mkdir(path.join(dir, f), { recursive: true });
    return dir;
  }

  test('malformed records are reported with file and reason, skipped and counted; the build goes on', async () => {
    const dir = await feedsDir('feeds-malformed');
    await copyFile(path.join(FEEDS, 'nvd/page-003.json'), path.join(dir, 'nvd/page-003.json'));
    // a page cut short: the records before the cut are kept
    const page = await readFile(path.join(FEEDS, 'nvd/page-002.json'));
    await writeFile(path.join(dir, 'nvd/page-002-truncated.json'), page.subarray(0, 400_000));
    for (const f of ['PYSEC-2023-226.json', 'GHSA-h8gc-pgj2-vjm3.json']) await copyFile(path.join(FEEDS, 'osv/PyPI', f), path.join(dir, 'osv/PyPI', f));
    await writeFile(path.join(dir, 'osv/PyPI/broken.json'), '{"id": "PYSEC-0000-0", "affected": [');
    const noId = JSON.parse(await readFile(path.join(FEEDS, 'osv/PyPI/PYSEC-2023-226.json'), 'utf8')) as Record<string, unknown>;
    delete noId.id;
    await writeFile(path.join(dir, 'osv/PyPI/no-id.json'), JSON.stringify(noId));
    await copyFile(path.join(FEEDS, 'ghsa/GHSA-h8gc-pgj2-vjm3.json'), path.join(dir, 'ghsa/GHSA-h8gc-pgj2-vjm3.json'));

    const out = path.join(tmp, 'malformed', 'bundle.tar.gz');
    const r = await run(process.execPath, ['bin/stella.js', 'ouk', 'build', '--feeds', dir, '--key', plainKeyPath, '--out', out, '--version', VERSION], {
      cwd: repoRoot,
      env: { ...process.env, STELLA_KEY_PASSWORD: '', SOURCE_DATE_EPOCH: '' },
    });
    const err = r.stderr;
    assert.match(err, new RegExp(`skipped ${escape(path.join(dir, 'osv/PyPI/broken.json'))}: not valid JSON`));
    assert.match(err, new RegExp(`skipped ${escape(path.join(dir, 'osv/PyPI/no-id.json'))}: missing "id"`));
    assert.match(err, new RegExp(`skipped ${escape(path.join(dir, 'nvd/page-002-truncated.json'))}: not valid JSON \\(truncated\\?\\).*record\\(s\\) before the fault were kept`));
    assert.match(r.stdout, /built bundle\.tar\.gz/);
    const feeds = Object.fromEntries(JSON.parse(JSON.stringify(parseManifest(await manifestOf(out)).feeds)).map((f: { name: string }) => [f.name, f]));
    assert.equal(feeds.osv.skipped, 2);
    assert.equal(feeds.osv.records, 2);
    assert.equal(feeds.nvd.skipped, 1);
    assert.ok(feeds.nvd.records > 1000, 'page 3 and the head of the truncated page');
    assert.equal(feeds.ghsa.skipped, 0);
  });

  test('a feed none of whose files can be read fails the build with FEED_UNREADABLE and leaves no output', async () => {
    const dir = await feedsDir('feeds-unreadable');
    await copyFile(path.join(FEEDS, 'osv/PyPI/PYSEC-2023-226.json'), path.join(dir, 'osv/PyPI/PYSEC-2023-226.json'));
    await writeFile(path.join(dir, 'ghsa/a.json'), 'not json at all');
    await writeFile(path.join(dir, 'ghsa/b.json'), '{"summary": "no id"}');
    const out = path.join(tmp, 'unreadable', 'bundle.tar.gz');
    await assert.rejects(
      buildBundle({ feedsDir: dir, keyPath: plainKeyPath, out, version: VERSION, onWarning: () => undefined }),
      (e: unknown) => e instanceof OukError && e.code === 'FEED_UNREADABLE' && /ghsa/.test(e.message),
    );
    assert.deepEqual(await readdir(path.dirname(out)), []);
  });

  test('the CLI exits with the error class code; a --base not older than --version and a bad --version are refused', async () => {
    const dir = await feedsDir('feeds-empty-cli');
    await writeFile(path.join(dir, 'ghsa/a.json'), '[');
    const out = path.join(tmp, 'cli-fail', 'bundle.tar.gz');
    const r = await run(process.execPath, ['bin/stella.js', 'ouk', 'build', '--feeds', dir, '--key', plainKeyPath, '--out', out], { cwd: repoRoot }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(r, 'the build failed');
    assert.equal(r.code, 40);
    assert.match(r.stderr, /error\[FEED_UNREADABLE\]/);
    assert.equal(existsSync(out), false);
    const small = await feedsDir('feeds-small-base');
    await copyFile(path.join(FEEDS, 'osv/PyPI/PYSEC-2023-226.json'), path.join(small, 'osv/PyPI/PYSEC-2023-226.json'));
    const base = await buildBundle({ feedsDir: small, keyPath: plainKeyPath, out: path.join(tmp, 'small-base', 'base.tar.gz'), version: VERSION, onWarning: () => undefined });
    await assert.rejects(
      buildBundle({ feedsDir: small, keyPath: plainKeyPath, out, base: base.out, version: VERSION }),
      (e: unknown) => e instanceof OukError && e.code === 'USAGE' && /is not after the base's version/.test(e.message),
    );
    await assert.rejects(
      buildBundle({ feedsDir: FEEDS, keyPath: plainKeyPath, out, version: '2026-13-01' }),
      (e: unknown) => e instanceof OukError && e.code === 'USAGE' && /--version 2026-13-01/.test(e.message),
    );
    await assert.rejects(
      buildBundle({ feedsDir: path.join(tmp, 'nowhere'), keyPath: plainKeyPath, out }),
      (e: unknown) => e instanceof OukError && e.code === 'INPUT_NOT_FOUND',
    );
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function manifestOf(file: string): Promise<Buffer> {
  let raw: Buffer | undefined;
  await readBundle(createReadStream(file), {
    onManifest: (_m, r) => {
      raw = r;
    },
  });
  return raw!;
}
