/**
 * `index.json`, the table of contents of an intranet mirror directory: one
 * entry per kit beside it, written by `stella ouk build --index` and read by
 * the site's mirror pull (functions/mirror/pull.ts). Shared by the builder and the
 * pipeline, like the manifest.
 *
 *   {"formatVersion": 1,
 *    "kits": [{"file": "stella-ouk-2026-11-28.tar.gz", "version": "2026-11-28",
 *              "kind": "delta", "base": {"version": "2026-11-27", "dbDigest": "<hex>"},
 *              "dbDigest": "<hex>", "sha256": "<hex>", "size": 1234,
 *              "created": "<ISO>", "expires": "<ISO>"}, ...]}
 *
 * Entries are sorted by version, full before delta, then file name. The index
 * is a hint, never trusted: the site checks every download's sha256 and size
 * against it, then the signature against its own keys, then that the signed
 * manifest says what the entry says. On the site it is hostile input: bounded
 * in size, schema-checked, names restricted to plain `*.tar.gz` file names.
 */
import { Ajv } from 'ajv';
import { OukError } from '../lib/errors.ts';
import type { Manifest } from './manifest.ts';
import { compareVersions, isVersion } from './version.ts';

export const MIRROR_INDEX_FILE = 'index.json';
export const MIRROR_INDEX_FORMAT = 1;
/** Largest index.json a site reads: ~4,000 entries fit in 4 MiB. */
export const MAX_MIRROR_INDEX_BYTES = 4 * 1024 * 1024;
/** A kit's file name on the mirror: a plain name, no directory, no `..`. */
export const KIT_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.tar\.gz$/;

export interface MirrorIndexEntry {
  file: string;
  version: string;
  kind: 'full' | 'delta';
  /** A delta's base: the version and DB content digest it applies to; null for a full kit. */
  base: { version: string; dbDigest: string } | null;
  /** The DB content digest this kit yields once applied (manifest `db.digest`). */
  dbDigest: string;
  /** sha256 hex of the tarball, and its size in bytes. */
  sha256: string;
  size: number;
  created: string;
  expires: string;
}

export interface MirrorIndex {
  formatVersion: number;
  kits: MirrorIndexEntry[];
}

const HEX64 = '^[0-9a-f]{64}$';

const schema = {
  type: 'object',
  additionalProperties: true,
  required: ['formatVersion', 'kits'],
  properties: {
    formatVersion: { type: 'integer', const: MIRROR_INDEX_FORMAT },
    kits: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['file', 'version', 'kind', 'base', 'dbDigest', 'sha256', 'size', 'created', 'expires'],
        properties: {
          file: { type: 'string', maxLength: 210 },
          version: { type: 'string', maxLength: 40 },
          kind: { type: 'string', enum: ['full', 'delta'] },
          base: {
            type: 'object',
            nullable: true,
            additionalProperties: false,
            required: ['version', 'dbDigest'],
            properties: { version: { type: 'string', maxLength: 40 }, dbDigest: { type: 'string', pattern: HEX64 } },
          },
          dbDigest: { type: 'string', pattern: HEX64 },
          sha256: { type: 'string', pattern: HEX64 },
          size: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
          created: { type: 'string', maxLength: 40 },
          expires: { type: 'string', maxLength: 40 },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: false });
const validate = ajv.compile<MirrorIndex>(schema);

function invalid(why: string): OukError {
  return new OukError('MIRROR_INDEX_INVALID', `the mirror's ${MIRROR_INDEX_FILE} is not a valid kit index: ${why} — rebuild it with \`stella ouk build --index\` on the publishing side`);
}

/** Parses and checks an index.json (hostile input); throws MIRROR_INDEX_INVALID naming the first fault. */
export function parseMirrorIndex(raw: Buffer | string): MirrorIndex {
  const bytes = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (bytes > MAX_MIRROR_INDEX_BYTES) throw invalid(`it is ${bytes} bytes, more than the ${MAX_MIRROR_INDEX_BYTES} a site reads`);
  let doc: unknown;
  try {
    doc = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message})`);
  }
  if (!validate(doc)) {
    const err = validate.errors?.[0];
    throw invalid(`${err?.instancePath || '/'} ${err?.message ?? 'does not match the schema'}`);
  }
  const seen = new Set<string>();
  for (const [i, k] of doc.kits.entries()) {
    const at = `/kits/${i}`;
    if (!KIT_FILE_NAME.test(k.file)) throw invalid(`${at}/file ${JSON.stringify(k.file)} is not a plain *.tar.gz file name`);
    if (seen.has(k.file)) throw invalid(`${at}/file ${k.file} is listed twice`);
    seen.add(k.file);
    if (!isVersion(k.version)) throw invalid(`${at}/version ${JSON.stringify(k.version)} is not a date tag (YYYY-MM-DD[.N])`);
    if (k.kind === 'delta' && !k.base) throw invalid(`${at} is a delta without a base`);
    if (k.kind === 'full' && k.base) throw invalid(`${at} is a full kit with a base`);
    if (k.base && !isVersion(k.base.version)) throw invalid(`${at}/base/version ${JSON.stringify(k.base.version)} is not a date tag`);
    if (k.base && compareVersions(k.base.version, k.version) >= 0) throw invalid(`${at}: delta ${k.version} is not newer than its base ${k.base.version}`);
    for (const t of ['created', 'expires'] as const) {
      if (!Number.isFinite(Date.parse(k[t]))) throw invalid(`${at}/${t} ${JSON.stringify(k[t])} is not a time`);
    }
  }
  return { formatVersion: doc.formatVersion, kits: doc.kits };
}

/** The index entry of a written kit, from its (signed) manifest. */
export function indexEntryFor(file: string, manifest: Manifest, sha256: string, size: number): MirrorIndexEntry {
  return {
    file,
    version: manifest.bundleVersion,
    kind: manifest.kind,
    base: manifest.base ? { version: manifest.base.version, dbDigest: manifest.base.dbDigest } : null,
    dbDigest: manifest.db.digest,
    sha256,
    size,
    created: manifest.created,
    expires: manifest.expires,
  };
}

export function compareEntries(a: MirrorIndexEntry, b: MirrorIndexEntry): number {
  return compareVersions(a.version, b.version) || (a.kind === b.kind ? 0 : a.kind === 'full' ? -1 : 1) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
}

/** The index with `entries` added (an entry for the same file is replaced), sorted. */
export function upsertEntries(index: MirrorIndex | null, entries: MirrorIndexEntry[]): MirrorIndex {
  const files = new Set(entries.map((e) => e.file));
  const kits = [...(index?.kits ?? []).filter((k) => !files.has(k.file)), ...entries].sort(compareEntries);
  return { formatVersion: MIRROR_INDEX_FORMAT, kits };
}

export function serializeMirrorIndex(index: MirrorIndex): string {
  return `${JSON.stringify(index, null, 2)}\n`;
}

/** Does the signed manifest say what the index entry says? Returns the first difference, or null. */
export function entryMismatch(entry: MirrorIndexEntry, manifest: Manifest): string | null {
  if (manifest.bundleVersion !== entry.version) return `version: index ${entry.version}, signed manifest ${manifest.bundleVersion}`;
  if (manifest.kind !== entry.kind) return `kind: index ${entry.kind}, signed manifest ${manifest.kind}`;
  if (manifest.db.digest !== entry.dbDigest) return `db digest: index ${entry.dbDigest.slice(0, 12)}…, signed manifest ${manifest.db.digest.slice(0, 12)}…`;
  const b = manifest.base ?? null;
  if ((b?.version ?? null) !== (entry.base?.version ?? null) || (b?.dbDigest ?? null) !== (entry.base?.dbDigest ?? null)) {
    return `base: index ${entry.base?.version ?? 'none'}, signed manifest ${b?.version ?? 'none'}`;
  }
  return null;
}
