/**
 * OCI images in a kit: the part of the OCI image-layout and image-spec formats
 * that builder and pipeline share. An image named NAME is carried as an OCI
 * image layout under `images/NAME/`:
 *
 *   images/NAME/oci-layout               {"imageLayoutVersion":"1.0.0"}
 *   images/NAME/index.json               one descriptor: the image's multi-platform index
 *   images/NAME/blobs/sha256/<hex>       the index, each platform's manifest, configs, layers
 *
 * Every file is a manifest member with its sha256 (a blob's sha256 is its own
 * name), so the bundle's checksum verification covers every byte. The
 * manifest's `images[]` names each image's index digest, tag and platforms
 * (KitImage). Parsing here is of small JSON documents only (indexes and
 * manifests, capped at MAX_OCI_JSON); layers are never read by this module.
 */
import { OukError } from '../lib/errors.ts';
import { IMAGES_DIR } from './tables.ts';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];
export const MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
/** The annotation an OCI layout's index.json names a tag with. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** Largest index or manifest document read into memory. */
export const MAX_OCI_JSON = 4 * 1024 * 1024;

/** A repository path component (OCI distribution spec), used as the image's name. */
export const IMAGE_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** An OCI tag. */
export const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:([0-9a-f]{64})$/;

export interface OciPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: OciPlatform;
  annotations?: Record<string, string>;
}

export interface OciIndexDoc {
  schemaVersion: number;
  mediaType?: string;
  manifests: OciDescriptor[];
}

export interface OciManifestDoc {
  schemaVersion: number;
  mediaType?: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
}

/** One image a kit carries, as the manifest names it. */
export interface KitImage {
  /** Repository name under the site's prefix: `stella/<name>`. */
  name: string;
  tag: string;
  /** `sha256:<hex>` of the multi-platform index: the digest the registry must report. */
  indexDigest: string;
  /** The index's media type (OCI index or Docker manifest list). */
  mediaType: string;
  platforms: Array<OciPlatform & { digest: string }>;
}

/** `sha256:<hex>` → `<hex>`; anything else is refused. */
export function digestHex(digest: string, what = 'digest'): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new OukError('MANIFEST_INVALID', `${what} ${JSON.stringify(digest)} is not a sha256 digest`);
  return m[1]!;
}

export function imageDir(name: string): string {
  return `${IMAGES_DIR}${name}/`;
}

export function blobMember(name: string, digest: string): string {
  return `${imageDir(name)}blobs/sha256/${digestHex(digest)}`;
}

/** The image a member path belongs to (`images/<name>/…`), or null. */
export function imageOfMember(path: string): string | null {
  const m = /^images\/([^/]+)\/./.exec(path);
  return m ? m[1]! : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function descriptor(v: unknown, what: string): OciDescriptor {
  if (!isObject(v) || typeof v.mediaType !== 'string' || typeof v.digest !== 'string' || typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new OukError('MANIFEST_INVALID', `${what}: not an OCI descriptor (mediaType, digest, size)`);
  }
  digestHex(v.digest, what);
  const out: OciDescriptor = { mediaType: v.mediaType, digest: v.digest, size: v.size };
  if (isObject(v.platform)) {
    const p = v.platform;
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string') throw new OukError('MANIFEST_INVALID', `${what}: platform without os and architecture`);
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  if (isObject(v.annotations)) out.annotations = Object.fromEntries(Object.entries(v.annotations).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return out;
}

function parseJson(buf: Buffer, what: string): Record<string, unknown> {
  if (buf.length > MAX_OCI_JSON) throw new OukError('MANIFEST_INVALID', `${what} is ${buf.length} bytes, over the ${MAX_OCI_JSON}-byte limit for an OCI document`);
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new OukError('MANIFEST_INVALID', `${what} is not JSON (${(e as Error).message})`);
  }
  if (!isObject(v) || v.schemaVersion !== 2) throw new OukError('MANIFEST_INVALID', `${what} is not an OCI document (schemaVersion 2)`);
  return v;
}

/** An image index (or an OCI layout's index.json). */
export function parseIndex(buf: Buffer, what: string): OciIndexDoc {
  const v = parseJson(buf, what);
  if (v.mediaType !== undefined && !INDEX_TYPES.includes(String(v.mediaType))) throw new OukError('MANIFEST_INVALID', `${what} has mediaType ${String(v.mediaType)}, not an image index`);
  if (!Array.isArray(v.manifests)) throw new OukError('MANIFEST_INVALID', `${what} has no manifests[]`);
  return { schemaVersion: 2, ...(typeof v.mediaType === 'string' ? { mediaType: v.mediaType } : {}), manifests: v.manifests.map((d, i) => descriptor(d, `${what} manifests[${i}]`)) };
}

/** A single-platform image manifest. */
export function parseImageManifest(buf: Buffer, what: string): OciManifestDoc {
  const v = parseJson(buf, what);
  if (v.mediaType !== undefined && !MANIFEST_TYPES.includes(String(v.mediaType))) throw new OukError('MANIFEST_INVALID', `${what} has mediaType ${String(v.mediaType)}, not an image manifest`);
  if (!Array.isArray(v.layers)) throw new OukError('MANIFEST_INVALID', `${what} has no layers[]`);
  return {
    schemaVersion: 2,
    ...(typeof v.mediaType === 'string' ? { mediaType: v.mediaType } : {}),
    config: descriptor(v.config, `${what} config`),
    layers: v.layers.map((d, i) => descriptor(d, `${what} layers[${i}]`)),
  };
}

export function platformLabel(p: OciPlatform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
