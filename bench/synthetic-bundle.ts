/**
 * Synthetic OUK bundles for tests and the import benchmark: any number of
 * advisories, shaped like the rows the builder makes from ../shared/feeds (an
 * NVD CVE merged with its OSV/GHSA records: summary, CVSS, aliases, affected
 * packages with OSV ranges, NVD CPE matches, the merged doc as canonical JSON),
 * deterministic for a given seed, written in the real bundle format
 * (bundle/writer.ts) and signed (signing/write.ts).
 *
 * Rows are generated as streams into member files under a temporary directory
 * (memory stays flat at any size), then tarred.
 *
 *   writeSyntheticBundle('/tmp/b.tar.gz', { version: '2026-11-28', advisories: 300_000 }, keyPath)
 *   writeSyntheticBundle(out, { version: '2026-11-29', advisories: 300_000, delta: { base, changed, added, removed } }, keyPath)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { FORMAT_VERSION, canonicalJson, type Manifest, type ManifestMember } from '../bundle/manifest.ts';
import { REMOVED_MEMBER, SBOM_MEMBER, TABLES, type TableName } from '../bundle/tables.ts';
import { encodeRow, type Cell } from '../bundle/tsv.ts';
import { versionEpoch } from '../bundle/version.ts';
import { writeBundle, type MemberSource } from '../bundle/writer.ts';
import { writeSignatureFiles } from '../signing/index.ts';

export interface DeltaSpec {
  /** The base DB: advisories 0..advisories-1 generated with `seed`. */
  base: { version: string; advisories: number; seed?: number; /** default: the digest of the synthetic full DB (advisories, seed) */ dbDigest?: string };
  /** Indices (< base.advisories) whose content changes (generated with this bundle's seed). */
  changed: number[];
  /** How many new advisories are appended after the base's. */
  added: number;
  /** Indices (< base.advisories) withdrawn from the DB. */
  removed: number[];
}

export interface SyntheticOptions {
  version: string;
  /** Full bundle: advisories 0..n-1. Ignored for a delta (the base's count is used). */
  advisories: number;
  /** Varies the content; a delta's changed advisories use this seed. Default 1. */
  seed?: number;
  created?: string;
  /** Default: created + 30 days. */
  expires?: string;
  delta?: DeltaSpec;
  /** Extra non-DB member (e.g. a fake image archive) of this many bytes. */
  imageBytes?: number;
}

export interface SyntheticBundle {
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  /** Rows per table of the full DB this bundle yields once applied. */
  counts: Record<TableName, number>;
}

// ---- deterministic content --------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fixed-width ids sort the same as their index: `CVE-2000-00000` … `CVE-2025-99999`. */
export function advisoryId(i: number): string {
  return `CVE-${2000 + Math.floor(i / 100_000)}-${String(i % 100_000).padStart(5, '0')}`;
}

const WORDS = (
  'buffer overflow in the parser allows remote attackers to execute arbitrary code via a crafted request ' +
  'improper input validation denial of service memory corruption heap use after free cross site scripting ' +
  'path traversal when extracting archives leads to arbitrary file write server side request forgery in the ' +
  'http client integer overflow null pointer dereference authentication bypass privilege escalation through ' +
  'symlink race condition in temporary file handling sql injection in the query builder prototype pollution'
).split(' ');
const ECOSYSTEMS = ['npm', 'PyPI', 'Maven', 'Go', 'Debian:12', 'Alpine:v3.19', 'crates.io', 'NuGet', 'RubyGems', 'AlmaLinux:9'];
const VENDORS = ['apache', 'openssl', 'linux', 'microsoft', 'google', 'oracle', 'redhat', 'mozilla', 'cisco', 'gitlab'];
const SEVERITIES: Array<[string, number, string]> = [
  ['CRITICAL', 9.8, 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'],
  ['HIGH', 7.5, 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H'],
  ['MEDIUM', 6.1, 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N'],
  ['LOW', 3.3, 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N'],
];

function sentence(rnd: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rnd() * WORDS.length)]);
  const s = out.join(' ');
  return s[0].toUpperCase() + s.slice(1) + '.';
}

function version3(rnd: () => number): string {
  return `${Math.floor(rnd() * 10)}.${Math.floor(rnd() * 20)}.${Math.floor(rnd() * 30)}`;
}

type Rows = Record<TableName, string[]>;

/** Every row of advisory `i` (content from `seed`), already encoded and sorted per table. */
export function advisoryRows(i: number, seed: number): Rows {
  const rnd = mulberry32((i + 1) * 2654435761 + seed * 97);
  const id = advisoryId(i);
  const ghsa = `GHSA-${(i * 7919 + seed).toString(36).padStart(4, '0').slice(-4)}-${(i * 104729).toString(36).padStart(4, '0').slice(-4)}-${(i * 1299709 + seed).toString(36).padStart(4, '0').slice(-4)}`;
  const [severity, score, vector] = SEVERITIES[Math.floor(rnd() * SEVERITIES.length)];
  const published = new Date(Date.UTC(2000 + Math.floor(i / 100_000), Math.floor(rnd() * 12), 1 + Math.floor(rnd() * 28))).toISOString();
  const modified = new Date(Date.parse(published) + Math.floor(rnd() * 400) * 86400_000 + seed * 1000).toISOString();
  const summary = sentence(rnd, 8 + Math.floor(rnd() * 10));
  const details = sentence(rnd, 40 + Math.floor(rnd() * 80));
  const nAffected = 1 + Math.floor(rnd() * 3);
  const affected = [];
  for (let k = 0; k < nAffected; k++) {
    const ecosystem = ECOSYSTEMS[Math.floor(rnd() * ECOSYSTEMS.length)];
    const name = `${WORDS[Math.floor(rnd() * WORDS.length)]}-${WORDS[Math.floor(rnd() * WORDS.length)]}${k}`;
    const introduced = rnd() < 0.5 ? '0' : version3(rnd);
    const fixed = version3(rnd);
    affected.push({
      ecosystem,
      name,
      purl: ecosystem === 'npm' ? `pkg:npm/${name}` : ecosystem === 'PyPI' ? `pkg:pypi/${name}` : undefined,
      ranges: [{ type: ecosystem.includes(':') ? 'ECOSYSTEM' : 'SEMVER', events: [{ introduced }, { fixed }] }],
      versions: rnd() < 0.3 ? [version3(rnd), version3(rnd)] : [],
    });
  }
  const vendor = VENDORS[Math.floor(rnd() * VENDORS.length)];
  const product = `${WORDS[Math.floor(rnd() * WORDS.length)]}_${i % 97}`;
  const nCpes = Math.floor(rnd() * 3);
  const cpes = [];
  for (let k = 0; k < nCpes; k++) {
    cpes.push({ criteria: `cpe:2.3:a:${vendor}:${product}:*:*:*:*:*:*:*:*`, start: k === 0 ? null : version3(rnd), end: version3(rnd) });
  }
  const references = [];
  for (let k = 0, n = 3 + Math.floor(rnd() * 6); k < n; k++) {
    references.push({ type: k === 0 ? 'ADVISORY' : k === 1 ? 'FIX' : 'WEB', url: `https://example.org/${vendor}/${product}/issues/${Math.floor(rnd() * 100000)}` });
  }
  const doc = canonicalJson({
    id,
    aliases: [ghsa],
    summary,
    details,
    severity: [{ type: 'CVSS_V3', vector, score, source: 'nvd', assigner: 'nvd@nist.gov', primary: true }],
    databaseSeverity: [{ source: 'ghsa', id: ghsa, severity }],
    affected: affected.map((a) => ({ ...a, purl: a.purl })),
    references,
    published,
    modified,
    withdrawn: null,
    sources: [
      { feed: 'nvd', id, modified, published, withdrawn: null, status: 'Analyzed' },
      { feed: 'ghsa', id: ghsa, modified, published, withdrawn: null },
    ],
  });
  const contentHash = createHash('sha256').update(doc).digest('hex');
  const line = (cells: Cell[]): string => encodeRow(cells);
  return {
    advisories: [line([id, summary, severity, score, vector, published, modified, null, 'ghsa,nvd', contentHash, doc])],
    aliases: [line([id, ghsa])],
    affected: affected
      .map((a) => line([id, a.ecosystem, a.name, a.purl ?? null, JSON.stringify(a.ranges), JSON.stringify(a.versions), null]))
      .sort(),
    cpes: cpes
      .map((c) => line([id, 'a', vendor, product, c.criteria, true, c.start, null, null, c.end]))
      .sort(),
  };
}

// ---- member files -----------------------------------------------------------

class MemberFile {
  readonly hash = createHash('sha256');
  size = 0;
  rows = 0;
  private readonly out: fs.WriteStream;
  constructor(readonly file: string) {
    this.out = fs.createWriteStream(file, { highWaterMark: 1 << 20 });
  }
  async write(line: string): Promise<void> {
    const b = Buffer.from(line, 'utf8');
    this.hash.update(b);
    this.size += b.length;
    this.rows++;
    if (!this.out.write(b)) await once(this.out, 'drain');
  }
  async close(): Promise<{ sha256: string; size: number; rows: number }> {
    this.out.end();
    await once(this.out, 'finish');
    return { sha256: this.hash.digest('hex'), size: this.size, rows: this.rows };
  }
}

/** Hash-only sink (for the digest of a DB a delta yields). */
class MemberHash {
  readonly hash = createHash('sha256');
  rows = 0;
  write(line: string): void {
    this.hash.update(line);
    this.rows++;
  }
}

/** The DB digest: sha256 of "<member path> <sha256>\n" lines of the full DB's members, in TABLES order. */
export function dbDigest(members: Record<string, string>): string {
  const h = createHash('sha256');
  for (const t of TABLES) h.update(`${t.member} ${members[t.member]}\n`);
  return h.digest('hex');
}

/** Which seed advisory `i` has in the DB a delta yields, or null when removed. */
function seedAfter(i: number, baseSeed: number, seed: number, d: DeltaSpec, changed: Set<number>, removed: Set<number>): number | null {
  if (removed.has(i)) return null;
  if (i >= d.base.advisories) return seed;
  return changed.has(i) ? seed : baseSeed;
}

export async function writeSyntheticBundle(out: string, opts: SyntheticOptions, privateKeyPath?: string): Promise<SyntheticBundle> {
  const seed = opts.seed ?? 1;
  const created = opts.created ?? versionEpoch(opts.version).toISOString();
  const expires = opts.expires ?? new Date(Date.parse(created) + 30 * 86400_000).toISOString();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stella-synth-'));
  try {
    const files = Object.fromEntries(TABLES.map((t) => [t.name, new MemberFile(path.join(dir, t.name + '.tsv'))])) as Record<TableName, MemberFile>;
    const d = opts.delta;
    let total: number;
    let counts: Record<TableName, number>;
    let digest: string;
    let removedFile: MemberFile | null = null;
    let changes: { added: number; changed: number; removed: number } | undefined;

    if (!d) {
      total = opts.advisories;
      for (let i = 0; i < total; i++) {
        const rows = advisoryRows(i, seed);
        for (const t of TABLES) for (const line of rows[t.name]) await files[t.name].write(line);
      }
      const sums: Record<string, string> = {};
      counts = {} as Record<TableName, number>;
      for (const t of TABLES) {
        const r = await files[t.name].close();
        sums[t.member] = r.sha256;
        counts[t.name] = r.rows;
        (files[t.name] as MemberFile & { result?: typeof r }).result = r;
      }
      digest = dbDigest(sums);
    } else {
      const baseSeed = d.base.seed ?? 1;
      const changed = new Set(d.changed);
      const removed = new Set(d.removed);
      total = d.base.advisories + d.added - removed.size;
      changes = { added: d.added, changed: changed.size, removed: removed.size };
      // The delta's own rows: changed and added advisories, in id order.
      const touched = [...new Set([...d.changed, ...Array.from({ length: d.added }, (_, k) => d.base.advisories + k)])].filter((i) => !removed.has(i)).sort((a, b) => a - b);
      for (const i of touched) {
        const rows = advisoryRows(i, seed);
        for (const t of TABLES) for (const line of rows[t.name]) await files[t.name].write(line);
      }
      removedFile = new MemberFile(path.join(dir, 'removed.tsv'));
      for (const i of [...removed].sort((a, b) => a - b)) await removedFile.write(`${advisoryId(i)}\n`);
      // The digest of the DB it yields: hash the full result without writing it.
      const hashes = Object.fromEntries(TABLES.map((t) => [t.name, new MemberHash()])) as Record<TableName, MemberHash>;
      for (let i = 0; i < d.base.advisories + d.added; i++) {
        const s = seedAfter(i, baseSeed, seed, d, changed, removed);
        if (s === null) continue;
        const rows = advisoryRows(i, s);
        for (const t of TABLES) for (const line of rows[t.name]) hashes[t.name].write(line);
      }
      const sums: Record<string, string> = {};
      counts = {} as Record<TableName, number>;
      for (const t of TABLES) {
        sums[t.member] = hashes[t.name].hash.digest('hex');
        counts[t.name] = hashes[t.name].rows;
        (files[t.name] as MemberFile & { result?: unknown }).result = await files[t.name].close();
      }
      digest = dbDigest(sums);
    }

    const members: ManifestMember[] = [];
    const sources: MemberSource[] = [];
    const addFile = (p: string, file: string, r: { sha256: string; size: number; rows?: number }, role: ManifestMember['role']): void => {
      members.push({ path: p, size: r.size, sha256: r.sha256, role, ...(r.rows !== undefined ? { rows: r.rows } : {}) });
      sources.push({ path: p, size: r.size, open: () => fs.createReadStream(file, { highWaterMark: 1 << 20 }) });
    };
    for (const t of TABLES) {
      const r = (files[t.name] as MemberFile & { result: { sha256: string; size: number; rows: number } }).result;
      addFile(t.member, files[t.name].file, r, 'db');
    }
    if (removedFile) addFile(REMOVED_MEMBER, removedFile.file, await removedFile.close(), 'removed');
    if (opts.imageBytes) {
      const img = path.join(dir, 'image.tar');
      const buf = Buffer.alloc(opts.imageBytes, 7);
      await fsp.writeFile(img, buf);
      addFile('images/scanner-amd64.tar', img, { sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length }, 'image');
    }
    const sbom = Buffer.from(
      canonicalJson({
        spdxVersion: 'SPDX-2.3',
        dataLicense: 'CC0-1.0',
        SPDXID: 'SPDXRef-DOCUMENT',
        name: `stella-ouk-${opts.version}`,
        documentNamespace: `https://stella-ouk.invalid/spdx/${opts.version}/${digest}`,
        creationInfo: { created, creators: ['Tool: stella-ouk-synthetic'] },
        files: members.map((m, k) => ({ fileName: `./${m.path}`, SPDXID: `SPDXRef-File-${k}`, checksums: [{ algorithm: 'SHA256', checksumValue: m.sha256 }] })),
      }, 2) + '\n',
    );
    const sbomFile = path.join(dir, 'sbom.json');
    await fsp.writeFile(sbomFile, sbom);
    addFile(SBOM_MEMBER, sbomFile, { sha256: createHash('sha256').update(sbom).digest('hex'), size: sbom.length }, 'sbom');

    const feeds = [
      { name: 'ghsa', snapshot: created, records: total, skipped: 0 },
      { name: 'nvd', snapshot: created, records: total, skipped: 0 },
      { name: 'osv', snapshot: created, records: 0, skipped: 0 },
    ];
    const manifest: Manifest = {
      formatVersion: FORMAT_VERSION,
      bundleVersion: opts.version,
      kind: d ? 'delta' : 'full',
      ...(d ? { base: { version: d.base.version, dbDigest: baseDigestOf(d) } } : {}),
      created,
      expires,
      generator: 'stella-ouk synthetic (bench/synthetic-bundle.ts)',
      feeds,
      db: { digest, advisories: total, ...(changes ? { changes } : {}) },
      members,
    };
    const outStream = fs.createWriteStream(out);
    const written = await writeBundle(outStream, manifest, sources);
    if (privateKeyPath) await writeSignatureFiles(out, privateKeyPath);
    return { path: out, sha256: written.sha256, size: written.size, manifest, counts };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const baseDigests = new Map<string, string>();

/** The DB digest of a full synthetic DB (advisories 0..n-1 with a seed), computed by hashing its rows. */
export function syntheticDbDigest(advisories: number, seed = 1): string {
  const key = `${advisories}:${seed}`;
  const hit = baseDigests.get(key);
  if (hit) return hit;
  const hashes = Object.fromEntries(TABLES.map((t) => [t.name, createHash('sha256')]));
  for (let i = 0; i < advisories; i++) {
    const rows = advisoryRows(i, seed);
    for (const t of TABLES) for (const line of rows[t.name]) hashes[t.name].update(line);
  }
  const digest = dbDigest(Object.fromEntries(TABLES.map((t) => [t.member, hashes[t.name].digest('hex')])));
  baseDigests.set(key, digest);
  return digest;
}

function baseDigestOf(d: DeltaSpec): string {
  return d.base.dbDigest ?? syntheticDbDigest(d.base.advisories, d.base.seed ?? 1);
}
