/**
 * Delta bundles, builder side, on the real records in ../shared/feeds.
 *
 * Four feed snapshots are made at test time in a temp directory (symlinks to
 * the shared files, and edited copies where a record changes): s0 is the GHSA
 * feed, every OSV feed and one NVD page (page-003) less a few held-out records;
 * s1..s3 add records, change them (modified time plus a fixed version, or a
 * severity; an NVD CPE bound), withdraw one, remove some. Then
 *
 *   full0 = build(s0)
 *   d1 (+ full1 via --full-out) = build(s1, --base full0)
 *   d2 (+ full2)                = build(s2, --base full1)
 *   d3                          = build(s3, --base full2)
 *   full3                       = build(s3)            (independent full build)
 *
 * and a small applier here (the pipeline's semantics, in memory: in each table,
 * delete every row of the ids in the delta's member of that table ∪
 * db/removed.tsv ∪ its db/cleared.tsv lines for that table, insert the delta's
 * rows, sort) takes full0 through d1, d2, d3: after each step the DB equals the
 * full bundle of that version byte for byte, and after d3 it equals full3, whose
 * db.digest is d3's. Also: the classification of each edit (added, changed,
 * withdrawn = changed, removed), only changed images carried, an empty delta
 * from identical feeds (through the CLI), refusals (version not after the
 * base, a delta as base, another generator), and reproducibility.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { buildBundle, type BuildResult, generatorName } from '../builder/build.ts';
import { checkBaseManifest } from '../builder/delta-base.ts';
import { type Manifest, parseManifest } from '../bundle/manifest.ts';
import { CLEARED_MEMBER, REMOVED_MEMBER, type TableName, TABLES } from '../bundle/tables.ts';
import { decodeRow } from '../bundle/tsv.ts';
import { OukError } from '../lib/errors.ts';
import { generateKeyPair, loadTrustedKeys, verifyBundleFile } from '../signing/index.ts';
import { byteCompare, current, edited, FEEDS, jsonOf, type Json, listJson, materialise, type Snapshot } from './helpers/feed-snapshots.ts';
import { unpackKit } from './helpers/kit.ts';
import { writeOciImage } from './fixtures/oci-images.ts';
import { contentPath } from '../bundle/member-codec.ts';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = path.resolve(repoRoot, '../shared');

const V = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23'] as const;

type Db = Map<TableName, string[]>;

let tmp: string;
let keyPath: string;
let pubPath: string;
const snapshots: Snapshot[] = [];
const dirs: string[] = [];
let full0: BuildResult;
let d1: BuildResult;
let d2: BuildResult;
let d3: BuildResult;
let full3: BuildResult;
const unpacked = new Map<string, string>();
/** A small pair of snapshots (60 GHSA records, a few MAL records) for the cheap cases: reproducibility, the empty delta. */
const tiny = { dirs: [] as string[], full0: undefined as unknown as BuildResult };

/** The records each step touches, picked from the data at test time. */
const pick = {
  mal: [] as string[], // relative paths of MAL-* records: advisories of their own (no CVE alias)
  ghsaFixed: '', // a GHSA (one CVE, one package, a fixed event): its fixed version is changed in s1 and s2
  ghsaSeverity: '', // another GHSA (another CVE): its severity is changed in s1
  nvdChanged: '', // an NVD-only CVE with CPE data in page-003: a CPE bound changes in s2
  nvdRemoved: '', // another NVD-only CVE: dropped from the page in s2
  nvdCleared: '', // a third NVD-only CVE, with CPE data: its configurations are dropped in s3 (it stays, without cpes rows)
};

// ---------------------------------------------------------------- helpers

function idOf(line: string): string {
  return line.slice(0, line.indexOf('\t') === -1 ? line.length : line.indexOf('\t'));
}

/** Member order: advisory_id bytewise, then the row's bytes. */
function rowCompare(a: string, b: string): number {
  return byteCompare(idOf(a), idOf(b)) || byteCompare(a, b);
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), 'a member ends with a newline');
  return text.slice(0, -1).split('\n');
}

function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function unpack(bundle: BuildResult): Promise<string> {
  const known = unpacked.get(bundle.out);
  if (known) return known;
  const dir = path.join(tmp, 'x', path.basename(bundle.out, '.tar.gz'));
  await mkdir(dir, { recursive: true });
  await unpackKit(bundle.out, dir);
  unpacked.set(bundle.out, dir);
  return dir;
}

async function member(bundle: BuildResult, p: string): Promise<string> {
  return readFile(path.join(await unpack(bundle), p), 'utf8');
}

async function readDb(bundle: BuildResult): Promise<Db> {
  const db: Db = new Map();
  for (const t of TABLES) db.set(t.name, splitLines(await member(bundle, t.member)));
  return db;
}

/** The test's delta applier: the documented semantics, in memory. */
async function applyDelta(db: Db, delta: BuildResult): Promise<Db> {
  assert.equal(delta.manifest.kind, 'delta');
  const removed = splitLines(await member(delta, REMOVED_MEMBER));
  const cleared = splitLines(await member(delta, CLEARED_MEMBER)).map((l) => l.split('\t') as [string, string]);
  const out: Db = new Map();
  for (const t of TABLES) {
    const rows = splitLines(await member(delta, t.member));
    const touched = new Set([...removed, ...rows.map(idOf), ...cleared.filter(([table]) => table === t.name).map(([, id]) => id)]);
    const kept = db.get(t.name)!.filter((line) => !touched.has(idOf(line)));
    out.set(t.name, [...kept, ...rows].sort(rowCompare));
  }
  return out;
}

function digestOf(db: Db): string {
  const h = createHash('sha256');
  for (const t of TABLES) h.update(`${t.member} ${sha256(joinLines(db.get(t.name)!))}\n`);
  return h.digest('hex');
}

async function assertDbEquals(db: Db, full: BuildResult, what: string): Promise<void> {
  for (const t of TABLES) {
    const want = await member(full, t.member);
    const got = joinLines(db.get(t.name)!);
    if (got !== want) {
      // a readable first difference rather than two megabyte strings
      const a = db.get(t.name)!;
      const b = splitLines(want);
      const i = a.findIndex((line, k) => line !== b[k]);
      assert.fail(`${what}: ${t.member} differs (applied ${a.length} rows, full ${b.length}); first difference at row ${i}: ${idOf(a[i] ?? b[i] ?? '')}`);
    }
  }
  assert.equal(digestOf(db), full.manifest.db.digest, `${what}: digest of the applied DB`);
}

function ids(text: string): string[] {
  return splitLines(text).map(idOf);
}

interface OsvEvent {
  introduced?: string;
  fixed?: string;
}
interface OsvRecord extends Json {
  aliases?: string[];
  modified: string;
  affected?: { ranges?: { events: OsvEvent[] }[] }[];
  database_specific?: { severity?: string };
  severity?: { type: string; score: string }[];
}

function isOsv(x: Json): x is OsvRecord {
  return typeof x.modified === 'string';
}

/**
 * Six MAL-* records (advisories of their own: no CVE alias) and two GHSA records
 * of different CVEs; the severity one also has its copy in osv/, so its advisory
 * outlives the removal of ghsa/'s file in s3.
 */
async function pickRecords(): Promise<void> {
  const osv = await listJson('osv');
  const inOsv = new Set(osv.map((f) => path.basename(f)));
  pick.mal = osv.filter((f) => path.basename(f).startsWith('MAL-')).slice(0, 6);
  assert.equal(pick.mal.length, 6, 'six MAL-* records in osv/');

  const usedCves = new Set<string>();
  for (const rel of await listJson('ghsa')) {
    const r = await jsonOf(rel);
    if (!isOsv(r)) continue;
    const cves = (r.aliases ?? []).filter((a) => a.startsWith('CVE-'));
    if (cves.length !== 1 || usedCves.has(cves[0]!)) continue;
    const events = (r.affected ?? []).flatMap((a) => (a.ranges ?? []).flatMap((x) => x.events));
    if (!pick.ghsaFixed && r.affected?.length === 1 && events.some((e) => e.fixed)) {
      pick.ghsaFixed = rel;
      usedCves.add(cves[0]!);
    } else if (!pick.ghsaSeverity && inOsv.has(path.basename(rel)) && r.database_specific?.severity === 'MODERATE' && (r.severity ?? []).some((s) => s.type === 'CVSS_V3')) {
      pick.ghsaSeverity = rel;
      usedCves.add(cves[0]!);
    }
    if (pick.ghsaFixed && pick.ghsaSeverity) break;
  }
  assert.ok(pick.ghsaFixed && pick.ghsaSeverity, 'two GHSA records to edit');
}

// ---------------------------------------------------------------- set-up

/** What every test uses: a scratch directory, a signing key and the records the snapshots edit. */
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'stella-delta-build-test-'));
  const keys = await generateKeyPair();
  keyPath = path.join(tmp, 'cosign.key');
  pubPath = path.join(tmp, 'cosign.pub');
  await writeFile(keyPath, keys.privateKeyPem, { mode: 0o600 });
  await writeFile(pubPath, keys.publicKeyPem);
  await pickRecords();
});

/** The snapshots s0..s3 and the chain full0, d1 (+ full1), d2 (+ full2), d3 and full3 built from them. */
async function buildChain(): Promise<void> {
  const [m0, m1, m2, m3, m4, m5] = pick.mal as [string, string, string, string, string, string];
  // s0: a third of GHSA and of every OSV feed (every third file, and every record
  // the snapshots edit, with its copies in other feeds), NVD page-003; MAL m0,
  // m1, m2, m5 held out. A third keeps five builds of the chain quick and still
  // merges thousands of real records across feeds.
  const edits = new Set([...pick.mal, pick.ghsaFixed, pick.ghsaSeverity].map((rel) => path.basename(rel)));
  const third = (rels: string[]) => rels.filter((rel, i) => i % 3 === 0 || edits.has(path.basename(rel)));
  const s0: Snapshot = new Map();
  for (const rel of [...third(await listJson('ghsa')), ...third(await listJson('osv')), 'nvd/page-003.json']) s0.set(rel, { link: path.join(FEEDS, rel) });
  for (const rel of [m0, m1, m2, m5]) s0.delete(rel);

  // s1: add m0, m1; withdraw m3; remove m4; change a fixed version and a severity
  const s1: Snapshot = new Map(s0);
  for (const rel of [m0, m1]) s1.set(rel, { link: path.join(FEEDS, rel) });
  const w = await current(s1, m3);
  edited(s1, m3, { ...w, modified: '2026-11-21T01:00:00Z', withdrawn: '2026-11-21T01:00:00Z' });
  s1.delete(m4);
  const fixed = (await current(s1, pick.ghsaFixed)) as OsvRecord;
  for (const e of fixed.affected!.flatMap((a) => (a.ranges ?? []).flatMap((r) => r.events))) if (e.fixed) e.fixed = `${e.fixed}.1`;
  edited(s1, pick.ghsaFixed, { ...fixed, modified: '2026-11-21T02:00:00Z' });
  const sev = (await current(s1, pick.ghsaSeverity)) as OsvRecord;
  edited(s1, pick.ghsaSeverity, {
    ...sev,
    modified: '2026-11-21T03:00:00Z',
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
    database_specific: { ...sev.database_specific, severity: 'CRITICAL' },
  });

  snapshots.push(s0, s1);
  dirs.push(path.join(tmp, 'feeds-s0'), path.join(tmp, 'feeds-s1'));
  for (let i = 0; i < 2; i++) await materialise(snapshots[i]!, dirs[i]!);

  // two-platform OCI layouts (test/fixtures/oci-images.ts): agent rebuilt (seed 2) for d1, zastava new in d1
  const imgA = `scanner=${(await writeOciImage(path.join(tmp, 'img-0', 'scanner'), { name: 'scanner' })).dir}`;
  const imgB = `agent=${(await writeOciImage(path.join(tmp, 'img-0', 'agent'), { name: 'agent' })).dir}`;
  const imgB1 = `agent=${(await writeOciImage(path.join(tmp, 'img-1', 'agent'), { name: 'agent', seed: 2 })).dir}`;
  const imgC = `zastava=${(await writeOciImage(path.join(tmp, 'img-1', 'zastava'), { name: 'zastava' })).dir}`;

  const build = (i: number, feeds: string, name: string, extra: { base?: BuildResult; fullOut?: string; images?: string[] } = {}) =>
    buildBundle({
      feedsDir: feeds,
      keyPath,
      out: path.join(tmp, 'out', `${name}.tar.gz`),
      version: V[i],
      base: extra.base?.out,
      fullOut: extra.fullOut,
      images: extra.images,
      onWarning: (w) => assert.fail(`feed warning: ${w.file}: ${w.reason}`),
    });

  full0 = await build(0, dirs[0]!, 'full0', { images: [imgA, imgB] });
  d1 = await build(1, dirs[1]!, 'd1', { base: full0, fullOut: path.join(tmp, 'out', 'full1.tar.gz'), images: [imgA, imgB1, imgC] });

  // NVD-only CVEs of the base (sources = "nvd"), one with CPE rows, for s2's NVD edits
  const base = await readDb(full0);
  const withCpes = new Set(base.get('cpes')!.map(idOf));
  const nvdOnly = base.get('advisories')!.map((l) => decodeRow(l)).filter((c) => c[8] === 'nvd').map((c) => c[0]!);
  pick.nvdChanged = nvdOnly.find((id) => withCpes.has(id))!;
  pick.nvdRemoved = nvdOnly.find((id) => id !== pick.nvdChanged)!;
  pick.nvdCleared = nvdOnly.find((id) => withCpes.has(id) && id !== pick.nvdChanged && id !== pick.nvdRemoved)!;
  assert.ok(pick.nvdChanged && pick.nvdRemoved && pick.nvdCleared, 'three NVD-only CVEs in page-003');

  // s2: add m2, re-add m4 (removed in s1); change the fixed version again; NVD: a CPE bound changes, a CVE is dropped
  const s2: Snapshot = new Map(s1);
  for (const rel of [m2, m4]) s2.set(rel, { link: path.join(FEEDS, rel) });
  const fixed2 = (await current(s2, pick.ghsaFixed)) as OsvRecord;
  for (const e of fixed2.affected!.flatMap((a) => (a.ranges ?? []).flatMap((r) => r.events))) if (e.fixed) e.fixed = `${e.fixed}.2`;
  edited(s2, pick.ghsaFixed, { ...fixed2, modified: '2026-11-22T02:00:00Z' });
  const page = await current(s2, 'nvd/page-003.json');
  type NvdItem = { cve: { id: string; lastModified: string; configurations?: { nodes: { cpeMatch: Record<string, unknown>[] }[] }[] } };
  const items = page.vulnerabilities as NvdItem[];
  const changed = items.find((v) => v.cve.id === pick.nvdChanged)!;
  changed.cve.lastModified = '2026-11-22T04:00:00.000';
  const match = changed.cve.configurations![0]!.nodes[0]!.cpeMatch[0]!;
  delete match.versionEndIncluding;
  match.versionEndExcluding = '99.0.0';
  page.vulnerabilities = items.filter((v) => v.cve.id !== pick.nvdRemoved);
  edited(s2, 'nvd/page-003.json', page);

  // s3: add m5; m3 no longer withdrawn; the severity-edited GHSA is gone from ghsa/ (the CVE stays through its other records)
  const s3: Snapshot = new Map(s2);
  s3.set(m5, { link: path.join(FEEDS, m5) });
  const w3 = await current(s3, m3);
  delete w3.withdrawn;
  edited(s3, m3, { ...w3, modified: '2026-11-23T01:00:00Z' });
  s3.delete(pick.ghsaSeverity);
  // NVD drops the configurations of one CVE: it stays, with no cpes rows
  const page3 = await current(s3, 'nvd/page-003.json');
  const bare = (page3.vulnerabilities as NvdItem[]).find((v) => v.cve.id === pick.nvdCleared)!;
  bare.cve.lastModified = '2026-11-23T04:00:00.000';
  delete bare.cve.configurations;
  edited(s3, 'nvd/page-003.json', page3);

  snapshots.push(s2, s3);
  dirs.push(path.join(tmp, 'feeds-s2'), path.join(tmp, 'feeds-s3'));
  for (let i = 2; i < 4; i++) await materialise(snapshots[i]!, dirs[i]!);

  d2 = await build(2, dirs[2]!, 'd2', { base: d1.full!, fullOut: path.join(tmp, 'out', 'full2.tar.gz') });
  d3 = await build(3, dirs[3]!, 'd3', { base: d2.full! });
  full3 = await build(3, dirs[3]!, 'full3');
}

async function tinySnapshots(): Promise<void> {
  const ghsa = (await listJson('ghsa')).slice(0, 60);
  const [m0, m1, m2, m3] = pick.mal as [string, string, string, string];
  const t0: Snapshot = new Map([...ghsa, m0, m1, m2].map((rel) => [rel, { link: path.join(FEEDS, rel) }]));
  const t1: Snapshot = new Map(t0);
  t1.delete(m0);
  t1.set(m3, { link: path.join(FEEDS, m3) });
  const r = await current(t1, ghsa[0]!);
  edited(t1, ghsa[0]!, { ...r, modified: '2026-11-21T05:00:00Z', summary: 'edited at test time' });
  tiny.dirs = [path.join(tmp, 'tiny-t0'), path.join(tmp, 'tiny-t1')];
  await materialise(t0, tiny.dirs[0]!);
  await materialise(t1, tiny.dirs[1]!);
  tiny.full0 = await buildBundle({ feedsDir: tiny.dirs[0]!, keyPath, out: path.join(tmp, 'tiny', 'full0.tar.gz'), version: V[0] });
}

/** The tiny delta t0 -> t1 into its own directory. */
function buildTiny(dir: string): Promise<BuildResult> {
  return buildBundle({ feedsDir: tiny.dirs[1]!, keyPath, out: path.join(tmp, dir, 'd.tar.gz'), version: V[1], base: tiny.full0.out });
}

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The advisory an id belongs to in a bundle's DB (itself, or through the aliases member). */
async function advisoryOf(bundle: BuildResult, id: string): Promise<string> {
  const db = await readDb(bundle);
  if (db.get('advisories')!.some((l) => idOf(l) === id)) return id;
  const hit = db.get('aliases')!.map((l) => decodeRow(l)).find((c) => c[1] === id);
  assert.ok(hit, `${id} is an advisory or an alias`);
  return hit[0]!;
}

const recordId = (rel: string): string => path.basename(rel, '.json');

// ---------------------------------------------------------------- tests

/** Each set-up runs once, before the first test that needs it: a filtered run builds only what its tests use. */
let chainBuilt: Promise<void> | undefined;
let tinyBuilt: Promise<void> | undefined;

describe('delta bundles built from real feed snapshots', () => {
  beforeEach(() => (chainBuilt ??= buildChain()));

  test('the chain full0 -> d1 -> d2 -> d3, applied, equals the full bundle of the newest feeds row for row', async () => {
    let db = await readDb(full0);
    assert.equal(digestOf(db), full0.manifest.db.digest);
    const steps: [BuildResult, BuildResult, string][] = [
      [d1, d1.full!, 'after d1 (= full1)'],
      [d2, d2.full!, 'after d2 (= full2)'],
      [d3, full3, 'after d3 (= full3, built on its own)'],
    ];
    let prev = full0;
    for (const [delta, full, what] of steps) {
      assert.deepEqual(delta.manifest.base, { version: prev.manifest.bundleVersion, dbDigest: prev.manifest.db.digest }, `${what}: base`);
      db = await applyDelta(db, delta);
      await assertDbEquals(db, full, what);
      assert.equal(delta.manifest.db.digest, full.manifest.db.digest, `${what}: db.digest`);
      assert.equal(delta.manifest.db.advisories, full.manifest.db.advisories, `${what}: db.advisories`);
      assert.equal(delta.manifest.db.advisories, db.get('advisories')!.length);
      prev = full;
    }
    assert.equal(digestOf(db), d3.manifest.db.digest);
    assert.equal(full3.manifest.db.digest, d3.manifest.db.digest);
    // a delta is much smaller than the DB it yields
    for (const d of [d1, d2, d3]) assert.ok(d.size * 10 < full3.size, `${path.basename(d.out)} is ${d.size} bytes, full3 ${full3.size}`);
  });

  test('d1 classifies each edit: added, changed (a withdrawn one too), removed', async () => {
    const [m0, m1, , m3, m4] = pick.mal.map(recordId);
    const fixedAdv = await advisoryOf(full0, recordId(pick.ghsaFixed));
    const sevAdv = await advisoryOf(full0, recordId(pick.ghsaSeverity));
    const m = d1.manifest;
    assert.equal(m.kind, 'delta');
    assert.deepEqual(m.db.changes, { added: 2, changed: 3, removed: 1 });
    assert.deepEqual(ids(await member(d1, 'db/advisories.tsv')), [m0!, m1!, m3!, fixedAdv, sevAdv].sort(byteCompare));
    assert.equal(await member(d1, REMOVED_MEMBER), `${m4}\n`);
    // the withdrawn advisory is changed, not removed: it stays, marked
    const row = decodeRow(splitLines(await member(d1, 'db/advisories.tsv')).find((l) => idOf(l) === m3)!);
    assert.equal(row[7], '2026-11-21T01:00:00.000Z', 'withdrawn column');
    assert.match(row[10]!, /^\{"cwes"/, 'the doc carries the details; withdrawn lives in its column only');
    // in each table, the full1 rows of each touched advisory whose rows there differ from full0's; none of another advisory
    const touched = new Set(ids(await member(d1, 'db/advisories.tsv')));
    const [db0, full1] = [await readDb(full0), await readDb(d1.full!)];
    const rowsOf = (db: Db, t: TableName, id: string): string => db.get(t)!.filter((l) => idOf(l) === id).join('\n');
    for (const t of TABLES) {
      const differs = new Set([...touched].filter((id) => rowsOf(db0, t.name, id) !== rowsOf(full1, t.name, id)));
      const got = splitLines(await member(d1, t.member));
      assert.deepEqual(got, full1.get(t.name)!.filter((l) => differs.has(idOf(l))), `${t.member} of d1`);
      assert.equal(m.members.find((x) => contentPath(x) === t.member)!.rows, got.length);
    }
    assert.ok(splitLines(await member(d1, 'db/affected.tsv')).some((l) => idOf(l) === fixedAdv), 'the changed fixed version comes with its affected rows');
    assert.ok(!splitLines(await member(d1, 'db/affected.tsv')).some((l) => idOf(l) === m3), 'a withdrawal leaves the affected rows out');
    assert.ok(rowsOf(full1, 'affected', m3!) !== '', 'which the withdrawn advisory keeps');
    assert.equal(await member(d1, CLEARED_MEMBER), '', 'no advisory of d1 loses all its rows in a table');
    // member order: tables, removed list, cleared list, SBOM, images (each one's layout files, images by name)
    const head = [...TABLES.map((t) => `db ${t.member}.zst`), `removed ${REMOVED_MEMBER}.zst`, `removed ${CLEARED_MEMBER}.zst`, 'sbom sbom.spdx.json'];
    assert.deepEqual(m.members.slice(0, head.length).map((x) => `${x.role} ${x.path}`), head);
    const rest = m.members.slice(head.length);
    assert.ok(rest.every((x) => x.role === 'image'));
    assert.deepEqual([...new Set(rest.map((x) => x.path.split('/')[1]))], ['agent', 'zastava']);
    assert.deepEqual(rest.slice(0, 2).map((x) => x.path), ['images/agent/oci-layout', 'images/agent/index.json']);
  });

  test('d2 and d3: re-added, changed twice, NVD CPE change and removal, un-withdrawn', async () => {
    const [, , m2, m3, m4, m5] = pick.mal.map(recordId);
    const fixedAdv = await advisoryOf(full0, recordId(pick.ghsaFixed));
    const sevAdv = await advisoryOf(full0, recordId(pick.ghsaSeverity));
    assert.deepEqual(d2.manifest.db.changes, { added: 2, changed: 2, removed: 1 });
    assert.deepEqual(ids(await member(d2, 'db/advisories.tsv')), [m2!, m4!, fixedAdv, pick.nvdChanged].sort(byteCompare));
    assert.equal(await member(d2, REMOVED_MEMBER), `${pick.nvdRemoved}\n`);
    const cpes = splitLines(await member(d2, 'db/cpes.tsv')).map((l) => decodeRow(l));
    assert.ok(cpes.length > 0 && cpes.every((c) => c[0] === pick.nvdChanged));
    assert.ok(cpes.some((c) => c[9] === '99.0.0'), 'the new versionEndExcluding');

    assert.deepEqual(d3.manifest.db.changes, { added: 1, changed: 3, removed: 0 });
    assert.deepEqual(ids(await member(d3, 'db/advisories.tsv')), [m5!, m3!, sevAdv, pick.nvdCleared].sort(byteCompare));
    assert.equal(await member(d3, CLEARED_MEMBER), `cpes\t${pick.nvdCleared}\n`, 'the CVE whose configurations NVD dropped loses its cpes rows');
    assert.ok(!splitLines(await member(d3, 'db/cpes.tsv')).some((l) => idOf(l) === pick.nvdCleared));
    const row = decodeRow(splitLines(await member(d3, 'db/advisories.tsv')).find((l) => idOf(l) === m3)!);
    assert.equal(row[7], null, 'no longer withdrawn');
    assert.equal(await member(d3, REMOVED_MEMBER), '');
  });

  test('only new or changed images are carried; the --full-out bundle carries them all', () => {
    const images = (m: Manifest) => (m.images ?? []).map((x) => x.name);
    const imageDirs = (m: Manifest) => [...new Set(m.members.filter((x) => x.role === 'image').map((x) => x.path.split('/')[1]))];
    assert.deepEqual(images(full0.manifest), ['agent', 'scanner']);
    // scanner has the same index as in full0: left out; agent was rebuilt (another index); zastava is new
    assert.deepEqual(images(d1.manifest), ['agent', 'zastava']);
    assert.deepEqual(imageDirs(d1.manifest), ['agent', 'zastava']);
    assert.notEqual(d1.manifest.images![0]!.indexDigest, full0.manifest.images![0]!.indexDigest);
    assert.deepEqual(images(d1.full!.manifest), ['agent', 'scanner', 'zastava']);
    assert.equal(d1.full!.manifest.kind, 'full');
    assert.equal(d1.full!.manifest.bundleVersion, d1.manifest.bundleVersion);
  });

  test('a delta verifies like any bundle: signature, manifest, every member', async () => {
    const keys = await loadTrustedKeys([pubPath]);
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(JSON.parse(await readFile(path.join(SHARED, 'conformance/spdx-2.3.schema.json'), 'utf8')) as object);
    for (const d of [d1, d2, d3]) {
      const v = await verifyBundleFile(d.out, { keys });
      assert.equal(v.manifest.kind, 'delta');
      assert.equal(v.sha256, d.sha256);
      parseManifest(await member(d, 'manifest.json'));
      const sbom = JSON.parse(await member(d, 'sbom.spdx.json')) as { files: { fileName: string }[] };
      assert.ok(validate(sbom), `the SBOM of ${path.basename(d.out)} is SPDX 2.3: ${ajv.errorsText(validate.errors)}`);
      assert.deepEqual(
        sbom.files.map((f) => f.fileName),
        d.manifest.members.filter((x) => x.role !== 'sbom').map((x) => `./${x.path}`),
        'the SBOM lists every member but itself, db/removed.tsv included',
      );
    }
  });

  test('refused: a version not after the base, a delta as the base, a base from another generator', async () => {
    const out = path.join(tmp, 'refused', 'x.tar.gz');
    for (const version of [V[3], V[2]]) {
      await assert.rejects(
        buildBundle({ feedsDir: dirs[3]!, keyPath, out, version, base: full3.out }),
        (e: unknown) => e instanceof OukError && e.code === 'USAGE' && e.message.includes(`--version ${version} is not after the base's version 2026-11-23`) && e.message.includes('2026-11-23.1'),
      );
    }
    await assert.rejects(
      buildBundle({ feedsDir: dirs[3]!, keyPath, out, version: '2026-11-30', base: d3.out }),
      (e: unknown) => e instanceof OukError && e.code === 'USAGE' && /is a delta bundle \(2026-11-23, against 2026-11-22\)/.test(e.message) && /full bundle of version 2026-11-23/.test(e.message),
    );
    await assert.rejects(
      buildBundle({ feedsDir: dirs[3]!, keyPath, out, fullOut: path.join(tmp, 'refused', 'f.tar.gz') }),
      (e: unknown) => e instanceof OukError && e.code === 'USAGE' && /--full-out goes with --base/.test(e.message),
    );
    await assert.rejects(
      buildBundle({ feedsDir: dirs[3]!, keyPath, out, version: '2026-11-30', base: path.join(tmp, 'nope.tar.gz') }),
      (e: unknown) => e instanceof OukError && e.code === 'INPUT_NOT_FOUND',
    );
    assert.equal(existsSync(path.dirname(out)) ? (await readdir(path.dirname(out))).length : 0, 0, 'a refused build leaves nothing');
    assert.throws(
      () => checkBaseManifest('old.tar.gz', { ...full3.manifest, generator: 'stella-ouk 0.0.9' }, { version: '2026-11-30', generator: generatorName() }),
      (e: unknown) => e instanceof OukError && e.code === 'USAGE' && /built by stella-ouk 0\.0\.9/.test(e.message),
    );
    assert.throws(
      () => checkBaseManifest('odd.tar.gz', { ...full3.manifest, db: { ...full3.manifest.db, digest: '0'.repeat(64) } }, { version: '2026-11-30', generator: generatorName() }),
      (e: unknown) => e instanceof OukError && e.code === 'MANIFEST_INVALID',
    );
  });
});

describe('small deltas (60 GHSA records, a few MAL records)', () => {
  beforeEach(() => (tinyBuilt ??= tinySnapshots()));

  test('the same inputs give the same delta, byte for byte', async () => {
    const [a, b] = await Promise.all(['again-1', 'again-2'].map((d) => buildTiny(d)));
    assert.ok(a!.manifest.db.changes!.added + a!.manifest.db.changes!.changed + a!.manifest.db.changes!.removed > 0, 'not an empty delta');
    assert.equal(a!.sha256, b!.sha256);
    assert.deepEqual(await readFile(a!.out), await readFile(b!.out));
  });

  test('identical feeds give an empty delta, and the CLI says so', async () => {
    const out = path.join(tmp, 'cli', 'empty.tar.gz');
    const { stdout } = await run(
      process.execPath,
      ['bin/stella.js', 'ouk', 'build', '--feeds', tiny.dirs[0]!, '--key', keyPath, '--out', out, '--base', tiny.full0.out, '--version', '2026-11-24'],
      { cwd: repoRoot },
    );
    assert.match(stdout, /delta is empty: the feeds have not changed since 2026-11-20/);
    const dir = path.join(tmp, 'cli', 'x');
    await mkdir(dir);
    await unpackKit(out, dir);
    const m = parseManifest(await readFile(path.join(dir, 'manifest.json')));
    const base = tiny.full0.manifest;
    assert.equal(m.kind, 'delta');
    assert.deepEqual(m.db.changes, { added: 0, changed: 0, removed: 0 });
    assert.deepEqual(m.base, { version: '2026-11-20', dbDigest: base.db.digest });
    assert.equal(m.db.digest, base.db.digest);
    assert.equal(m.db.advisories, base.db.advisories);
    for (const p of [...TABLES.map((t) => t.member), REMOVED_MEMBER, CLEARED_MEMBER]) {
      assert.equal((await readFile(path.join(dir, p))).length, 0, `${p} is empty`);
      assert.equal(m.members.find((x) => contentPath(x) === p)!.rows, 0);
    }
  });
});
