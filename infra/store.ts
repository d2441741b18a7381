/**
 * The object store: the `minio` client against any S3 endpoint (MinIO in
 * production, s3rver locally), and streaming object I/O on top of it.
 *
 * Uploads of up to one part (`S3_PART_SIZE`) go through a presigned single PUT
 * with a known Content-Length, piped from the source stream: minio's own
 * `putObject` reads a whole object into memory whenever its size fits in one
 * part (and the local s3rver cannot do multipart at all). A presigned PUT works
 * the same against MinIO, S3 and s3rver and streams in flat memory. Larger
 * objects (a kit with its scanner images, against real MinIO, where compose
 * sets S3_PART_SIZE to 64 MiB) go through minio's streaming `putObject`, a
 * multipart upload that holds one part at a time and is not capped by S3's
 * 5 GiB single-PUT limit.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as Minio from 'minio';
import type { StoreConfig } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';

export type ObjectStore = Minio.Client;

export function createStore(cfg: StoreConfig): Minio.Client {
  return new Minio.Client({
    endPoint: cfg.endPoint,
    port: cfg.port,
    useSSL: cfg.useSSL,
    accessKey: cfg.accessKey,
    secretKey: cfg.secretKey,
    region: cfg.region,
    pathStyle: true,
    partSize: cfg.partSize,
  });
}

/** S3/MinIO answers that mean the store is out of space. */
const FULL = /XMinioStorageFull|StorageFull|no space left|ENOSPC|minimum free drive threshold/i;

/**
 * A store's answer as one line: an S3 error body (XML over several lines) as
 * its `Code: Message`, anything else with its whitespace runs collapsed, at
 * most 300 characters — an operator's error is one line.
 */
export function storeMessage(text: string): string {
  const tag = (name: string): string | null => {
    const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(text);
    return m ? m[1]!.trim() : null;
  };
  const code = /<Error>/.test(text) ? tag('Code') : null;
  const message = code ? tag('Message') : null;
  const before = code ? text.slice(0, text.search(/<\?xml|<Error>/)).trim() : '';
  const line = (code ? `${before ? `${before} ` : ''}${code}${message ? `: ${message}` : ''}` : text).replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

export function storeUnavailable(e: unknown): OukError {
  const msg = storeMessage(e instanceof Error ? e.message : String(e));
  const code = (e as { code?: unknown } | null)?.code;
  if (FULL.test(`${typeof code === 'string' ? code : ''} ${msg}`)) {
    return new OukError('INSUFFICIENT_SPACE', `the object store is out of space (${msg}): free space on the store (MinIO's drives), or run \`stella ouk gc\`, then retry`, { cause: e, retryable: true });
  }
  return new OukError('STORE_UNAVAILABLE', `the object store is unreachable (${msg}): check S3_ENDPOINT and that MinIO (or the local s3rver) is running`, { cause: e, retryable: true });
}

export interface ObjectInfo {
  size: number;
  etag: string;
}

/** stat that answers null for a missing object and throws for anything else. */
export async function statOrNull(store: Minio.Client, bucket: string, key: string): Promise<ObjectInfo | null> {
  try {
    const s = await store.statObject(bucket, key);
    return { size: s.size, etag: s.etag };
  } catch (e) {
    if (isMissing(e)) return null;
    throw storeUnavailable(e);
  }
}

/** S3's ceiling for one PUT. */
export const MAX_SINGLE_PUT = 5 * 1024 * 1024 * 1024;

export interface UploadResult {
  etag: string;
  size: number;
}

/** ETags as the pipeline keys them: no quotes, lower case. */
export function normaliseEtag(etag: string): string {
  return etag.replace(/"/g, '').trim().toLowerCase();
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchBucket';
}

/** Uploads `size` bytes from `body`, streaming: one PUT up to a part, a multipart upload above. */
export async function uploadStream(store: Minio.Client, bucket: string, key: string, body: Readable, size: number): Promise<UploadResult> {
  if (size > store.partSize) {
    try {
      const r = await store.putObject(bucket, key, body, size);
      return { etag: normaliseEtag(r.etag), size };
    } catch (e) {
      body.destroy();
      throw storeUnavailable(e);
    }
  }
  if (size > MAX_SINGLE_PUT) {
    body.destroy();
    throw new OukError('STORE_UNAVAILABLE', `${key} is ${size} bytes, over the 5 GiB a single S3 PUT can carry: set S3_PART_SIZE (e.g. 67108864) so that large objects go up as a multipart upload (MinIO, S3; s3rver cannot)`);
  }
  let url: string;
  try {
    url = await store.presignedPutObject(bucket, key, 6 * 3600);
  } catch (e) {
    body.destroy();
    throw storeUnavailable(e);
  }
  const transport = url.startsWith('https:') ? https : http;
  let response: http.IncomingMessage;
  try {
    response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = transport.request(url, { method: 'PUT', headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' } }, resolve);
      req.on('error', reject);
      pipeline(body, req).catch((e: unknown) => {
        req.destroy(e as Error);
        reject(e);
      });
    });
  } catch (e) {
    if (e instanceof OukError) throw e;
    throw storeUnavailable(e);
  }
  const chunks: Buffer[] = [];
  for await (const c of response) chunks.push(c as Buffer);
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    const text = Buffer.concat(chunks).toString('utf8').slice(0, 500);
    throw storeUnavailable(new Error(`PUT ${bucket}/${key} answered HTTP ${status}: ${text}`));
  }
  const etag = response.headers.etag;
  return { etag: normaliseEtag(Array.isArray(etag) ? etag[0] : (etag ?? '')), size };
}

/** A GET stream of the object; null when it does not exist. */
export async function getStreamOrNull(store: Minio.Client, bucket: string, key: string): Promise<Readable | null> {
  try {
    return await store.getObject(bucket, key);
  } catch (e) {
    if (isMissing(e)) return null;
    throw storeUnavailable(e);
  }
}

export async function getStream(store: Minio.Client, bucket: string, key: string): Promise<Readable> {
  const s = await getStreamOrNull(store, bucket, key);
  if (!s) throw new OukError('STORE_UNAVAILABLE', `${bucket}/${key} is not in the object store (removed while the import ran?): re-upload it and run \`stella ouk retry\``, { retryable: true });
  return s;
}

/** Reads a small object (a .sig, a marker) whole; null when missing; refuses more than `max` bytes. */
export async function readSmallObject(store: Minio.Client, bucket: string, key: string, max: number): Promise<Buffer | null> {
  const s = await getStreamOrNull(store, bucket, key);
  if (!s) return null;
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > max) {
      s.destroy();
      throw new OukError('SIGNATURE_MALFORMED', `${key} is larger than ${max} bytes: it is not what it should be — re-upload it`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function putSmallObject(store: Minio.Client, bucket: string, key: string, body: Buffer): Promise<void> {
  try {
    await store.putObject(bucket, key, body, body.length);
  } catch (e) {
    throw storeUnavailable(e);
  }
}

export async function objectExists(store: Minio.Client, bucket: string, key: string): Promise<boolean> {
  return (await statOrNull(store, bucket, key)) !== null;
}

/** Removes these objects (missing ones are no error), one DELETE each. */
export async function removeObjects(store: Minio.Client, bucket: string, keys: readonly string[]): Promise<number> {
  try {
    for (const k of keys) await store.removeObject(bucket, k);
  } catch (e) {
    throw storeUnavailable(e);
  }
  return keys.length;
}

/**
 * Removes every object under a prefix, one DELETE each. (A multi-object delete
 * makes s3rver answer 500 when it empties nested directories concurrently; a
 * bundle has a handful of members, so one request each costs nothing.) The
 * prefix is listed whole, past the first page (`listAllObjects`).
 */
export async function removeObjectsUnder(store: Minio.Client, bucket: string, prefix: string): Promise<number> {
  const keys: string[] = [];
  try {
    for await (const item of listAllObjects(store, bucket, prefix)) if (item.name) keys.push(item.name);
    for (const k of keys) await store.removeObject(bucket, k);
  } catch (e) {
    throw storeUnavailable(e);
  }
  return keys.length;
}

/** An object as a listing names it. */
export interface ListedObject {
  name?: string;
  etag?: string;
  size?: number;
  lastModified?: Date;
}

/**
 * Every object under `prefix` (recursively), page after page. The v1 listing
 * (each page continues after the previous page's last key) rather than v2:
 * s3rver's v2 continuation tokens are DES-encrypted, which OpenSSL 3 refuses,
 * so past 1,000 objects its v2 listing answers 500; MinIO and S3 list both
 * alike. The one way the code lists the store (test/store-listing.test.ts
 * fails on any `listObjectsV2` outside test/).
 */
export function listAllObjects(store: Minio.Client, bucket: string, prefix = ''): AsyncIterable<ListedObject> {
  return store.listObjects(bucket, prefix, true) as AsyncIterable<ListedObject>;
}

/** Copies `from` to `to` inside one bucket (server side: the bytes do not pass through here); false when `from` is missing. */
export async function copyWithin(store: Minio.Client, bucket: string, from: string, to: string): Promise<boolean> {
  try {
    await store.copyObject(bucket, to, `/${bucket}/${encodeURI(from)}`);
    return true;
  } catch (e) {
    if (isMissing(e)) return false;
    throw storeUnavailable(e);
  }
}
