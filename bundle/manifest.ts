/**
 * manifest.json: the first member of every bundle. It names the bundle (version,
 * kind, base for a delta), its validity window, the feeds it was built from, and
 * every other member with its size and sha256. The signature covers the whole
 * tarball, so a verified tarball vouches for the manifest, and the manifest
 * vouches for each member.
 */
import { Ajv } from 'ajv';
import { OukError } from '../lib/errors.ts';
import { blobMember, IMAGE_NAME, IMAGE_TAG, imageDir, imageOfMember, type KitImage } from './oci.ts';
import { MAX_CARRIED_ROOT_BYTES, MAX_CARRIED_ROOTS, MAX_ROOT_BYTES, TRUST_DIR, rootVersionOfMember } from './trust.ts';
import { parseVersion } from './version.ts';

/** The format this version writes. */
export const FORMAT_VERSION = 3;
/**
 * The formats it reads. Format 3 changed only what a delta carries: per table,
 * the rows of the advisories whose rows in that table changed (with
 * db/cleared.tsv); a format-2 delta carries every row of each advisory it
 * touches, and is applied that way. Full bundles of both are alike.
 */
export const READ_FORMAT_VERSIONS = [2, 3] as const;

/** Whether a delta of this manifest carries, per table, only the advisories whose rows in it changed (format 3 and later). */
export function deltaIsPerTable(m: Pick<Manifest, 'formatVersion'>): boolean {
  return m.formatVersion >= 3;
}

export type BundleKind = 'full' | 'delta';
/** `trust`: a root of trust the kit carries, `trust/root.<N>.json` (bundle/trust.ts). */
export type MemberRole = 'db' | 'removed' | 'sbom' | 'image' | 'trust';

export interface ManifestMember {
  /** Path in the tarball; a compressed DB member ends in `.zst` (bundle/member-codec.ts). */
  path: string;
  /** Size and sha256 of the bytes in the tarball (compressed, for a compressed member). */
  size: number;
  sha256: string;
  role: MemberRole;
  /** Data rows, for DB members (and ids, for the removed list). */
  rows?: number;
  /** How the member is stored: absent for plain bytes. */
  compression?: 'zstd';
  /** A compressed member's content once decompressed: what the DB digest is computed over. */
  content?: { size: number; sha256: string };
}

export interface FeedSummary {
  /** nvd | osv | ghsa | a regional feed's name */
  name: string;
  /** Newest timestamp seen in the feed (NVD page timestamp, newest OSV `modified`), ISO 8601, or null. */
  snapshot: string | null;
  records: number;
  /** Malformed records reported and left out. */
  skipped: number;
}

export interface DbSummary {
  /**
   * sha256 hex identifying the full DB content this bundle yields once applied:
   * the sha256 of `"<member path> <sha256>\n"` lines of the full DB's table
   * members, in TABLES order. A delta's base names its base's digest.
   */
  digest: string;
  advisories: number;
  /** For a delta: how many advisories it adds, changes and removes. */
  changes?: { added: number; changed: number; removed: number };
}

export interface Manifest {
  formatVersion: number;
  bundleVersion: string;
  kind: BundleKind;
  base?: { version: string; dbDigest: string };
  created: string;
  expires: string;
  generator: string;
  feeds: FeedSummary[];
  db: DbSummary;
  members: ManifestMember[];
  /**
   * OCI images carried as layouts under images/<name>/ (bundle/oci.ts): each
   * one's multi-platform index digest, tag and platforms. Absent when the kit
   * carries none; a delta lists only the images whose index changed.
   */
  images?: KitImage[];
}

const SHA256_HEX = '^[0-9a-f]{64}$';
const OCI_DIGEST = '^sha256:[0-9a-f]{64}$';

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['formatVersion', 'bundleVersion', 'kind', 'created', 'expires', 'generator', 'feeds', 'db', 'members'],
  properties: {
    formatVersion: { type: 'integer', enum: [...READ_FORMAT_VERSIONS] },
    bundleVersion: { type: 'string' },
    kind: { type: 'string', enum: ['full', 'delta'] },
    base: {
      type: 'object',
      nullable: true,
      additionalProperties: false,
      required: ['version', 'dbDigest'],
      properties: { version: { type: 'string' }, dbDigest: { type: 'string', pattern: SHA256_HEX } },
    },
    created: { type: 'string' },
    expires: { type: 'string' },
    generator: { type: 'string' },
    feeds: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'snapshot', 'records', 'skipped'],
        properties: {
          name: { type: 'string', minLength: 1 },
          snapshot: { type: ["string", "null"] },
          records: { type: 'integer', minimum: 0 },
          skipped: { type: 'integer', minimum: 0 },
        },
      },
    },
    db: {
      type: 'object',
      additionalProperties: false,
      required: ['digest', 'advisories'],
      properties: {
        digest: { type: 'string', pattern: SHA256_HEX },
        advisories: { type: 'integer', minimum: 0 },
        changes: {
          type: 'object',
          nullable: true,
          additionalProperties: false,
          required: ['added', 'changed', 'removed'],
          properties: {
            added: { type: 'integer', minimum: 0 },
            changed: { type: 'integer', minimum: 0 },
            removed: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
    members: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'size', 'sha256', 'role'],
        properties: {
          path: { type: 'string', minLength: 1 },
          size: { type: 'integer', minimum: 0 },
          sha256: { type: 'string', pattern: SHA256_HEX },
          role: { type: 'string', enum: ['db', 'removed', 'sbom', 'image', 'trust'] },
          rows: { type: 'integer', minimum: 0, nullable: true },
          compression: { type: 'string', enum: ['zstd'], nullable: true },
          content: {
            type: 'object',
            nullable: true,
            additionalProperties: false,
            required: ['size', 'sha256'],
            properties: { size: { type: 'integer', minimum: 0 }, sha256: { type: 'string', pattern: SHA256_HEX } },
          },
        },
      },
    },
    images: {
      type: 'array',
      nullable: true,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'tag', 'indexDigest', 'mediaType', 'platforms'],
        properties: {
          name: { type: 'string', pattern: IMAGE_NAME.source },
          tag: { type: 'string', pattern: IMAGE_TAG.source },
          indexDigest: { type: 'string', pattern: OCI_DIGEST },
          mediaType: { type: 'string', minLength: 1 },
          platforms: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['os', 'architecture', 'digest'],
              properties: {
                os: { type: 'string', minLength: 1 },
                architecture: { type: 'string', minLength: 1 },
                variant: { type: 'string', nullable: true },
                digest: { type: 'string', pattern: OCI_DIGEST },
              },
            },
          },
        },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile<Manifest>(schema);

/** Upper bound on manifest.json's size: it is read into memory before anything else. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

export function parseManifest(json: string | Buffer): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(typeof json === 'string' ? json : json.toString('utf8'));
  } catch (e) {
    throw new OukError('MANIFEST_INVALID', `manifest.json is not valid JSON (${(e as Error).message}): the bundle is damaged — rebuild or re-download it`);
  }
  if (!validate(data)) {
    const why = (validate.errors ?? []).map((er) => `${er.instancePath || '/'} ${er.message}`).join('; ');
    throw new OukError('MANIFEST_INVALID', `manifest.json does not match format ${READ_FORMAT_VERSIONS.join(' or ')}: ${why}`);
  }
  const m = data as Manifest;
  parseVersion(m.bundleVersion);
  if (Number.isNaN(Date.parse(m.created)) || Number.isNaN(Date.parse(m.expires))) {
    throw new OukError('MANIFEST_INVALID', 'manifest.json has an unreadable created or expires time');
  }
  if (m.kind === 'delta' && !m.base) throw new OukError('MANIFEST_INVALID', 'a delta manifest must name its base');
  if (m.kind === 'full' && m.base) throw new OukError('MANIFEST_INVALID', 'a full manifest must not name a base');
  if (m.base) parseVersion(m.base.version);
  const seen = new Set<string>();
  for (const member of m.members) {
    if (seen.has(member.path)) throw new OukError('MANIFEST_INVALID', `manifest.json lists ${member.path} twice`);
    seen.add(member.path);
  }
  checkImages(m, seen);
  checkTrustMembers(m);
  return m;
}

/**
 * A carried root is a member `trust/root.<N>.json` of role `trust`, at most
 * MAX_ROOT_BYTES, and a kit carries at most MAX_CARRIED_ROOTS of them, in all
 * MAX_CARRIED_ROOT_BYTES: nothing else may sit under trust/, and a `trust`
 * member is nothing else. (Its content is checked by signing/root/, never
 * trusted here.)
 */
function checkTrustMembers(m: Manifest): void {
  const roots = m.members.filter((x) => x.role === 'trust');
  const bytes = roots.reduce((n, x) => n + x.size, 0);
  if (roots.length > MAX_CARRIED_ROOTS || bytes > MAX_CARRIED_ROOT_BYTES) {
    throw new OukError('MANIFEST_INVALID', `manifest.json lists ${roots.length} roots of trust (${bytes} bytes): a kit carries at most ${MAX_CARRIED_ROOTS}, ${MAX_CARRIED_ROOT_BYTES} bytes in all`);
  }
  for (const member of m.members) {
    const under = member.path.startsWith(TRUST_DIR);
    if (member.role !== 'trust' && !under) continue;
    if (member.role !== 'trust' || !under || rootVersionOfMember(member.path) === null) {
      throw new OukError('MANIFEST_INVALID', `manifest.json lists ${member.path} with role ${member.role}: only trust/root.<N>.json members, of role trust, may be carried under trust/`);
    }
    if (member.size > MAX_ROOT_BYTES) throw new OukError('MANIFEST_INVALID', `manifest.json lists ${member.path} at ${member.size} bytes, over the ${MAX_ROOT_BYTES}-byte limit of a root document`);
  }
}

/**
 * Every image the manifest names is carried whole (its layout files and its
 * index blob are members), no image is named twice, and every member under
 * images/<name>/ belongs to a named image. The platform manifests, configs
 * and layers are checked against the index when the images stage reads it.
 */
function checkImages(m: Manifest, paths: Set<string>): void {
  const names = new Set<string>();
  for (const img of m.images ?? []) {
    if (names.has(img.name)) throw new OukError('MANIFEST_INVALID', `manifest.json names image ${img.name} twice`);
    names.add(img.name);
    for (const p of [`${imageDir(img.name)}oci-layout`, `${imageDir(img.name)}index.json`, blobMember(img.name, img.indexDigest), ...img.platforms.map((x) => blobMember(img.name, x.digest))]) {
      if (!paths.has(p)) throw new OukError('MANIFEST_INVALID', `manifest.json names image ${img.name} but does not list its member ${p}`);
    }
  }
  for (const member of m.members) {
    const owner = imageOfMember(member.path);
    if (owner !== null && member.role === 'image' && m.images !== undefined && !names.has(owner)) {
      throw new OukError('MANIFEST_INVALID', `${member.path} is under images/${owner}/ but manifest.json names no image ${owner}`);
    }
  }
}

/** Canonical serialisation: sorted keys, two-space indent, trailing newline. */
export function serializeManifest(m: Manifest): string {
  return canonicalJson(m, 2) + '\n';
}

/** JSON with object keys sorted recursively: the same value always gives the same bytes. */
export function canonicalJson(value: unknown, indent?: number): string {
  return JSON.stringify(sortKeys(value), null, indent);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as Record<string, unknown>).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}
