/**
 * The object store: the `minio` client against any S3 endpoint (MinIO in
 * production, s3rver locally). Uploads always pass a known size, and the part
 * size is configurable, because s3rver cannot do multipart uploads.
 */
import type { Readable } from 'node:stream';
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

export function storeUnavailable(e: unknown): OukError {
  const msg = e instanceof Error ? e.message : String(e);
  return new OukError('STORE_UNAVAILABLE', `the object store is unreachable (${msg}): check S3_ENDPOINT and that MinIO (or the local s3rver) is running`, { cause: e, retryable: true });
}

export async function ensureBucket(store: Minio.Client, bucket: string): Promise<void> {
  try {
    if (!(await store.bucketExists(bucket))) await store.makeBucket(bucket, 'us-east-1');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists') return;
    throw storeUnavailable(e);
  }
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
    const code = (e as { code?: string }).code;
    if (code === 'NotFound' || code === 'NoSuchKey') return null;
    throw storeUnavailable(e);
  }
}

/** Uploads a stream of known size in one request when the part size allows. */
export async function putStream(store: Minio.Client, bucket: string, key: string, body: Readable | Buffer, size: number): Promise<ObjectInfo> {
  const r = await store.putObject(bucket, key, body, size);
  return { size, etag: r.etag };
}

/** Removes every object under a prefix. */
export async function removePrefix(store: Minio.Client, bucket: string, prefix: string): Promise<number> {
  const keys: string[] = [];
  const stream = store.listObjectsV2(bucket, prefix, true);
  for await (const item of stream as AsyncIterable<{ name?: string }>) if (item.name) keys.push(item.name);
  if (keys.length) await store.removeObjects(bucket, keys);
  return keys.length;
}
