/**
 * The local S3 store: s3rver (npm) run in-process on loopback, with its
 * object-created events delivered to a webhook in MinIO's format, so the
 * ingest endpoint sees the same body locally as from a real MinIO
 * (`MINIO_NOTIFY_WEBHOOK_*`, see compose-stella.yml).
 *
 * Delivery mirrors MinIO's webhook target: one POST per event,
 * `Authorization: Bearer <token>`, a non-2xx answer is a failure. Failures are
 * retried a few times with backoff and then logged and dropped — like MinIO
 * without a queue dir; the pipeline's reconciler picks up what was lost.
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { goQueryEscape, type MinioEventRecord, type MinioWebhookEvent } from '../infra/minio-event.ts';

/** What s3rver 3.7 emits on `server.on('event')` (see s3rver/lib/models/event.js). */
export interface S3rverEvent {
  Records: Array<{
    eventVersion?: string;
    eventTime?: string;
    /** `ObjectCreated:Put`, `ObjectCreated:Copy`, `ObjectCreated:Post`, `ObjectRemoved:Delete` — no `s3:` prefix */
    eventName: string;
    awsRegion?: string;
    requestParameters?: { sourceIPAddress?: string };
    responseElements?: Record<string, string>;
    s3: {
      bucket: { name: string };
      /** not escaped */
      object: { key: string; size?: number; eTag?: string; sequencer?: string };
    };
  }>;
}

/** Translates one s3rver event into the body MinIO would POST for it. */
export function toMinioWebhookEvent(ev: S3rverEvent): MinioWebhookEvent {
  const first = ev.Records[0];
  if (!first) throw new Error('s3rver event without records');
  const records: MinioEventRecord[] = ev.Records.map((r) => {
    const eventName = r.eventName.startsWith('s3:') ? r.eventName : `s3:${r.eventName}`;
    const bucket = r.s3.bucket.name;
    const o = r.s3.object;
    const object: MinioEventRecord['s3']['object'] = {
      key: goQueryEscape(o.key),
      sequencer: o.sequencer ?? Date.now().toString(16).toUpperCase(),
    };
    if (!eventName.startsWith('s3:ObjectRemoved:')) {
      if (o.size !== undefined) object.size = o.size;
      if (o.eTag !== undefined) object.eTag = o.eTag.replace(/"/g, '');
      object.contentType = 'application/octet-stream';
      object.userMetadata = {};
      object.versionId = '1';
    }
    return {
      eventVersion: '2.0',
      eventSource: 'minio:s3',
      awsRegion: '',
      eventTime: r.eventTime ?? new Date().toISOString(),
      eventName,
      userIdentity: { principalId: 'S3RVER' },
      requestParameters: { principalId: 'S3RVER', region: '', sourceIPAddress: r.requestParameters?.sourceIPAddress ?? '127.0.0.1' },
      responseElements: { 'x-amz-request-id': r.responseElements?.['x-amz-request-id'] ?? '', 'x-minio-origin-endpoint': '' },
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'Config',
        bucket: { name: bucket, ownerIdentity: { principalId: 'S3RVER' }, arn: `arn:aws:s3:::${bucket}` },
        object,
      },
      source: { host: '127.0.0.1', port: '', userAgent: 's3rver' },
    };
  });
  const r0 = records[0];
  return { EventName: r0.eventName, Key: `${first.s3.bucket.name}/${first.s3.object.key}`, Records: records };
}

export interface WebhookTarget {
  url: string;
  token?: string;
  /** attempts before an event is dropped (default 5) */
  attempts?: number;
  /** first backoff in ms, doubled each retry (default 200) */
  backoffMs?: number;
}

export interface S3rverOptions {
  /** 0 (the default) picks a free port */
  port?: number;
  host?: string;
  directory: string;
  buckets: string[];
  webhook?: WebhookTarget;
  /** called for every forwarded event, before the webhook POST */
  onEvent?: (ev: MinioWebhookEvent) => void;
  /** only these event names are forwarded (default: every `s3:ObjectCreated:*`, like `mc event add --event put`) */
  events?: (eventName: string) => boolean;
  /** only keys ending with this are forwarded (like `mc event add --suffix`) */
  suffix?: string;
  /** silences s3rver's request log (delivery failures are still reported through `log`) */
  silent?: boolean;
  log?: (msg: string) => void;
}

export interface RunningS3rver {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  port: number;
  /** resolves when every delivery started so far has succeeded or given up */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(ev: 'event', fn: (e: S3rverEvent) => void): void;
  httpServer?: Server;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;

const require = createRequire(import.meta.url);

function isCreated(name: string): boolean {
  return name.startsWith('s3:ObjectCreated:');
}

/** POSTs one event, retrying network errors, 5xx and 429 with exponential backoff. */
export async function deliverWebhook(target: WebhookTarget, body: MinioWebhookEvent, signal?: AbortSignal): Promise<boolean> {
  const attempts = target.attempts ?? 5;
  let delay = target.backoffMs ?? 200;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  const payload = JSON.stringify(body);
  let last = '';
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await fetch(target.url, { method: 'POST', headers, body: payload, signal });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return true;
      last = `HTTP ${res.status}`;
      if (res.status < 500 && res.status !== 429 && res.status !== 408) break;
    } catch (e) {
      if (signal?.aborted) return false;
      last = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    }
    if (i < attempts) {
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return false;
      }
      delay *= 2;
    }
  }
  throw new Error(last);
}

export async function startS3rver(opts: S3rverOptions): Promise<RunningS3rver> {
  const S3rver = require('s3rver') as S3rverCtor;
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? ((m: string) => console.error(m));
  const server = new S3rver({
    address: host,
    port: opts.port ?? 0,
    directory: opts.directory,
    silent: opts.silent ?? false,
    vhostBuckets: false,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const wanted = opts.events ?? isCreated;
  const pending = new Set<Promise<void>>();
  const abort = new AbortController();

  server.on('event', (raw) => {
    let ev: MinioWebhookEvent;
    try {
      ev = toMinioWebhookEvent(raw);
    } catch (e) {
      log(`s3rver: cannot translate event: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (!wanted(ev.EventName)) return;
    if (opts.suffix && !ev.Key.endsWith(opts.suffix)) return;
    try {
      opts.onEvent?.(ev);
    } catch (e) {
      log(`s3rver: onEvent handler failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const target = opts.webhook;
    if (!target) return;
    const p = deliverWebhook(target, ev, abort.signal).then(
      () => undefined,
      (e: unknown) => {
        log(`s3rver: webhook ${target.url} failed for ${ev.EventName} ${ev.Key}, event dropped (${e instanceof Error ? e.message : String(e)}); the reconciler will pick the object up`);
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  });

  const addr = await server.run();
  const port = addr.port;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closed = false;
  return {
    endpoint,
    port,
    async idle() {
      while (pending.size) await Promise.all([...pending]);
    },
    async close() {
      if (closed) return;
      closed = true;
      abort.abort();
      const closing = server.close();
      server.httpServer?.closeAllConnections();
      await closing;
      await Promise.all([...pending]);
    },
  };
}
