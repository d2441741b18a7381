/**
 * The parts of a bundle, full or delta, put in order: the SBOM made from the
 * members' digests, the manifest listing every member (the carried roots of
 * trust first, trust/root.<N>.json by N, then DB tables in TABLES
 * order, then a delta's db/removed.tsv, then the extra tables present, then
 * sbom.spdx.json, then each image's layout files, images sorted by name), and a byte source per member
 * for bundle/writer.ts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { type DbSummary, FORMAT_VERSION, type FeedSummary, type Manifest, type ManifestMember } from '../bundle/manifest.ts';
import { buildSbom, type SbomFile } from '../bundle/sbom.ts';
import { SBOM_MEMBER, type TableName } from '../bundle/tables.ts';
import { rootMemberPath } from '../bundle/trust.ts';
import type { MemberSource } from '../bundle/writer.ts';
import type { ImageInput } from './images.ts';
import { fileSource, type WrittenMember } from './member-file.ts';
import { packageVersion } from '../lib/package-version.ts';

export function generatorName(): string {
  return `stella-ouk ${packageVersion()}`;
}

const digestOf = (alg: 'sha256' | 'sha1', b: Buffer): string => createHash(alg).update(b).digest('hex');

/** ISO 8601 at second precision: `2026-11-29T00:00:00Z`. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface BundleParts {
  version: string;
  created: Date;
  expires: Date;
  feeds: FeedSummary[];
  kind: Manifest['kind'];
  /** Delta only. */
  base?: { version: string; dbDigest: string };
  db: DbSummary;
  /** Table members, in TABLES order. */
  tables: (WrittenMember & { table: TableName })[];
  /** Delta only: db/removed.tsv. */
  removed?: WrittenMember;
  /** Delta only: db/cleared.tsv. */
  cleared?: WrittenMember;
  /** Extra tables' members (bundle/extra-tables.ts), and a delta's removed-key lists, in EXTRA_TABLES order. */
  extras?: { member: WrittenMember; role: 'db' | 'removed' }[];
  images: ImageInput[];
  /** Roots of trust to carry as trust/root.<N>.json: each file's bytes as its signers wrote them. */
  roots?: { version: number; raw: Buffer }[];
}

export interface AssembledBundle {
  manifest: Manifest;
  sources: MemberSource[];
  /** Data rows per table member in this bundle. */
  rows: Record<TableName, number>;
}

export function assembleBundle(p: BundleParts): AssembledBundle {
  const imageMembers = p.images.flatMap((i) => i.members);
  const dbFiles: { member: WrittenMember; role: 'db' | 'removed' }[] = [
    ...p.tables.map((m) => ({ member: m, role: 'db' as const })),
    ...(p.removed ? [{ member: p.removed, role: 'removed' as const }] : []),
    ...(p.cleared ? [{ member: p.cleared, role: 'removed' as const }] : []),
    ...(p.extras ?? []),
  ];
  const roots = [...(p.roots ?? [])].sort((a, b) => a.version - b.version).map((r) => ({ path: rootMemberPath(r.version), raw: r.raw }));
  const sbomFiles: SbomFile[] = [
    ...roots.map((r) => ({ path: r.path, sha256: digestOf('sha256', r.raw), sha1: digestOf('sha1', r.raw), role: 'trust' as const })),
    ...dbFiles.map(({ member: m, role }) => ({ path: m.path, sha256: m.sha256, sha1: m.sha1, role })),
    ...imageMembers.map((i) => ({ path: i.path, sha256: i.sha256, sha1: i.sha1, role: 'image' as const })),
  ];
  const sbom = Buffer.from(
    buildSbom({ bundleVersion: p.version, created: p.created.toISOString(), generator: generatorName(), files: sbomFiles, images: p.images.map((i) => i.image) }),
    'utf8',
  );

  const members: ManifestMember[] = [
    ...roots.map((r): ManifestMember => ({ path: r.path, size: r.raw.length, sha256: digestOf('sha256', r.raw), role: 'trust' })),
    ...dbFiles.map(
      ({ member: m, role }): ManifestMember => ({ path: m.path, size: m.size, sha256: m.sha256, role, rows: m.rows, ...(m.compression ? { compression: m.compression, content: m.content } : {}) }),
    ),
    { path: SBOM_MEMBER, size: sbom.length, sha256: digestOf('sha256', sbom), role: 'sbom' },
    ...imageMembers.map((i): ManifestMember => ({ path: i.path, size: i.size, sha256: i.sha256, role: 'image' })),
  ];
  const manifest: Manifest = {
    formatVersion: FORMAT_VERSION,
    bundleVersion: p.version,
    kind: p.kind,
    ...(p.base ? { base: p.base } : {}),
    created: isoSeconds(p.created),
    expires: isoSeconds(p.expires),
    generator: generatorName(),
    feeds: p.feeds,
    db: p.db,
    members,
    ...(p.images.length ? { images: p.images.map((i) => i.image) } : {}),
  };
  const sources: MemberSource[] = [
    ...roots.map((r): MemberSource => ({ path: r.path, size: r.raw.length, open: () => Readable.from([r.raw]) })),
    ...dbFiles.map(({ member: m }) => fileSource(m.path, m.file, m.size)),
    { path: SBOM_MEMBER, size: sbom.length, open: () => Readable.from([sbom]) },
    ...imageMembers.map((i) => i.source),
  ];
  const rows = Object.fromEntries(p.tables.map((m) => [m.table, m.rows])) as Record<TableName, number>;
  return { manifest, sources, rows };
}
