/**
 * `stella ouk build`: feeds in, one deterministic signed bundle out.
 *
 *   feeds ──► buildDb (normalise, spool, GNU sort, merge, rows) ──► db/*.tsv
 *   --image files ──► hashed                                       ──► images/*
 *   members' digests ──► sbom.spdx.json ──► manifest.json
 *   manifest + members ──► writeBundle ──► OUT.partial ──► sign ──► rename
 *
 * Nothing is written at OUT unless the whole build succeeds: the tarball and its
 * signature files are made under temporary names and renamed at the end, and the
 * scratch directory is removed whatever happens.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FORMAT_VERSION, type FeedSummary, type Manifest, type ManifestMember } from '../bundle/manifest.ts';
import { buildSbom } from '../bundle/sbom.ts';
import { SBOM_MEMBER, type TableName } from '../bundle/tables.ts';
import { isVersion, todayVersion, versionEpoch } from '../bundle/version.ts';
import { type MemberSource, writeBundle } from '../bundle/writer.ts';
import { OukError } from '../lib/errors.ts';
import { loadPrivateKey, sigPathFor, sigstorePathFor, writeSignatureFiles } from '../signing/index.ts';
import { buildDb } from './db.ts';
import { type FeedWarning, formatWarning } from './feeds/index.ts';
import { prepareImages } from './images.ts';
import { digestStream, fileSource } from './member-file.ts';

export const DEFAULT_EXPIRES_DAYS = 31;

export interface BuildOptions {
  feedsDir: string;
  keyPath: string;
  out: string;
  /** Bundle version (date tag); default: today's UTC date. */
  version?: string;
  images?: string[];
  expiresDays?: number;
  /** Previous bundle for a delta: not supported yet. */
  base?: string;
  /** Signing key password (the CLI passes STELLA_KEY_PASSWORD). */
  password?: string;
  /** SOURCE_DATE_EPOCH (seconds): overrides `created`. */
  sourceDateEpoch?: string;
  /** Parent of the scratch directory; default os.tmpdir(). */
  tmpDir?: string;
  /** Malformed-record reports; default: one line each on stderr. */
  onWarning?: (w: FeedWarning) => void;
}

export interface BuildResult {
  out: string;
  sigPath: string;
  sigstorePath: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  /** Data rows per table member. */
  rows: Record<TableName, number>;
}

export function generatorName(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `stella-ouk ${pkg.version}`;
}

/** ISO 8601 at second precision: `2026-11-29T00:00:00Z`. */
function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function createdTime(version: string, sourceDateEpoch: string | undefined): Date {
  if (sourceDateEpoch === undefined || sourceDateEpoch === '') return versionEpoch(version);
  if (!/^\d{1,12}$/.test(sourceDateEpoch)) {
    throw new OukError('USAGE', `SOURCE_DATE_EPOCH=${sourceDateEpoch} is not a number of seconds since 1970: unset it or give an integer`);
  }
  return new Date(Number(sourceDateEpoch) * 1000);
}

export async function buildBundle(opts: BuildOptions): Promise<BuildResult> {
  if (opts.base !== undefined) {
    throw new OukError('USAGE', 'delta bundles (--base) are not supported yet: build a full bundle without --base');
  }
  const version = opts.version ?? todayVersion();
  if (!isVersion(version)) {
    throw new OukError('USAGE', `--version ${version} is not a bundle version: give a real date tag, YYYY-MM-DD or YYYY-MM-DD.N (e.g. 2026-11-28.2)`);
  }
  const expiresDays = opts.expiresDays ?? DEFAULT_EXPIRES_DAYS;
  if (!Number.isInteger(expiresDays) || expiresDays < 1 || expiresDays > 3650) {
    throw new OukError('USAGE', `--expires-days ${expiresDays} is not a whole number of days between 1 and 3650`);
  }
  const created = createdTime(version, opts.sourceDateEpoch);
  const expires = new Date(created.getTime() + expiresDays * 86_400_000);
  // Fail on a bad key or image before the long part.
  await loadPrivateKey(opts.keyPath, opts.password);
  const images = await prepareImages(opts.images ?? []);
  const onWarning = opts.onWarning ?? ((w: FeedWarning) => process.stderr.write(`${formatWarning(w)}\n`));

  const out = path.resolve(opts.out);
  await mkdir(path.dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  const work = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'stella-ouk-build-'));
  try {
    const db = await buildDb({ feedsDir: opts.feedsDir, workDir: work, onWarning });

    const sbom = Buffer.from(
      buildSbom({
        bundleVersion: version,
        created: created.toISOString(),
        generator: generatorName(),
        files: [
          ...db.members.map((m) => ({ path: m.path, sha256: m.sha256, sha1: m.sha1, role: 'db' as const })),
          ...images.map((i) => ({ path: i.path, sha256: i.sha256, sha1: i.sha1, role: 'image' as const })),
        ],
      }),
      'utf8',
    );
    const sbomDigest = await digestStream(Readable.from([sbom]));

    const members: ManifestMember[] = [
      ...db.members.map((m): ManifestMember => ({ path: m.path, size: m.size, sha256: m.sha256, role: 'db', rows: m.rows })),
      { path: SBOM_MEMBER, size: sbom.length, sha256: sbomDigest.sha256, role: 'sbom' },
      ...images.map((i): ManifestMember => ({ path: i.path, size: i.size, sha256: i.sha256, role: 'image' })),
    ];
    const manifest = buildManifest({ version, created, expires, feeds: db.feeds, digest: db.digest, advisories: db.advisories, members });
    const sources: MemberSource[] = [
      ...db.members.map((m) => fileSource(m.path, m.file, m.size)),
      { path: SBOM_MEMBER, size: sbom.length, open: () => Readable.from([sbom]) },
      ...images.map((i) => fileSource(i.path, i.file, i.size)),
    ];

    const written = await writeBundle(createWriteStream(partial), manifest, sources);
    const signed = await writeSignatureFiles(partial, opts.keyPath, opts.password);
    if (signed.sha256 !== written.sha256) {
      throw new OukError('INTERNAL', `${partial} changed between writing (${written.sha256}) and signing (${signed.sha256}): is another process writing to it?`);
    }
    const sigPath = sigPathFor(out);
    const sigstorePath = sigstorePathFor(out);
    await rename(signed.sigPath, sigPath);
    await rename(signed.sigstorePath, sigstorePath);
    await rename(partial, out);

    const rows = Object.fromEntries(db.members.map((m) => [m.table, m.rows])) as Record<TableName, number>;
    return { out, sigPath, sigstorePath, sha256: written.sha256, size: written.size, manifest, rows };
  } finally {
    await rm(work, { recursive: true, force: true });
    await Promise.all([partial, sigPathFor(partial), sigstorePathFor(partial)].map((f) => rm(f, { force: true })));
  }
}

interface ManifestParts {
  version: string;
  created: Date;
  expires: Date;
  feeds: FeedSummary[];
  digest: string;
  advisories: number;
  members: ManifestMember[];
}

export function buildManifest(p: ManifestParts): Manifest {
  return {
    formatVersion: FORMAT_VERSION,
    bundleVersion: p.version,
    kind: 'full',
    created: isoSeconds(p.created),
    expires: isoSeconds(p.expires),
    generator: generatorName(),
    feeds: p.feeds,
    db: { digest: p.digest, advisories: p.advisories },
    members: p.members,
  };
}
