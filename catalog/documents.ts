/**
 * The image's JSON documents, read as hostile input: an index (OCI image
 * index, Docker manifest list) or a manifest (OCI, Docker v2 schema 2),
 * bounded in size, checked in shape, each descriptor's digest a sha256.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { OukError } from '../lib/errors.ts';

export const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
export const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const REF_NAME = 'org.opencontainers.image.ref.name';
const DIGEST = /^sha256:([0-9a-f]{64})$/;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export type ImageDocument = { kind: 'index'; manifests: Descriptor[] } | { kind: 'manifest'; config: Descriptor; layers: Descriptor[] };

/** The hex of a sha256 digest; IMAGE_INVALID for anything else (no other algorithm, nothing that could name another path). */
export function blobHex(digest: string, image: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new OukError('IMAGE_INVALID', `${image} names a blob by ${JSON.stringify(digest.slice(0, 100))}, not a sha256 digest`);
  return m[1]!;
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A stream read whole, up to `maxBytes` (IMAGE_INVALID past it). */
export async function readBounded(stream: Readable, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > maxBytes) {
      stream.destroy();
      throw new OukError('IMAGE_INVALID', `the ${what} is larger than ${maxBytes} bytes: it is not an image document`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(image: string, what: string): OukError {
  return new OukError('IMAGE_INVALID', `${image}: ${what} — rebuild or re-push the image`);
}

function descriptor(v: unknown, at: string, image: string): Descriptor {
  if (!isObj(v)) throw invalid(image, `${at} is not a descriptor`);
  const { mediaType, digest, size, platform, annotations } = v;
  if (typeof digest !== 'string' || !DIGEST.test(digest)) throw invalid(image, `${at}.digest is not a sha256 digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(image, `${at}.size is not a size`);
  const d: Descriptor = { mediaType: typeof mediaType === 'string' ? mediaType : '', digest, size };
  if (isObj(platform) && typeof platform.os === 'string' && typeof platform.architecture === 'string') {
    d.platform = { os: platform.os, architecture: platform.architecture, ...(typeof platform.variant === 'string' ? { variant: platform.variant } : {}) };
  }
  if (isObj(annotations)) d.annotations = Object.fromEntries(Object.entries(annotations).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return d;
}

/** An index or a manifest, by its own mediaType, the source's, or its shape. */
export function parseDocument(body: Buffer, sourceType: string | null, image: string): ImageDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid(image, 'an index or manifest is not JSON');
  }
  if (!isObj(doc)) throw invalid(image, 'an index or manifest is not a JSON object');
  const type = typeof doc.mediaType === 'string' ? doc.mediaType : (sourceType ?? '');
  if (doc.schemaVersion !== 2) throw invalid(image, `schemaVersion ${JSON.stringify(doc.schemaVersion ?? null)} is not 2 (Docker schema 1 images are not read)`);
  if (INDEX_TYPES.includes(type) || (!MANIFEST_TYPES.includes(type) && Array.isArray(doc.manifests))) {
    if (!Array.isArray(doc.manifests)) throw invalid(image, 'the index has no manifests[]');
    if (doc.manifests.length > 1000) throw invalid(image, `the index lists ${doc.manifests.length} manifests`);
    return { kind: 'index', manifests: doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`, image)) };
  }
  if (!Array.isArray(doc.layers)) throw invalid(image, 'the manifest has no layers[]');
  if (doc.layers.length > 1000) throw invalid(image, `the manifest lists ${doc.layers.length} layers`);
  return { kind: 'manifest', config: descriptor(doc.config, 'config', image), layers: doc.layers.map((l, i) => descriptor(l, `layers[${i}]`, image)) };
}

/** The entry of an OCI layout's index.json tagged `tag`. */
export function pickTagged(indexJson: Buffer, tag: string, image: string): Descriptor {
  const doc = parseDocument(indexJson, INDEX_TYPES[0]!, image);
  if (doc.kind !== 'index') throw invalid(image, 'index.json is not an index');
  const hit = doc.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!hit) {
    const tags = doc.manifests.map((m) => m.annotations?.[REF_NAME]).filter(Boolean);
    throw new OukError('IMAGE_NOT_FOUND', `${image}: the layout has no tag ${JSON.stringify(tag)} (it has ${tags.length ? tags.join(', ') : 'no tags'})`);
  }
  return hit;
}
