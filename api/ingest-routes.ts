/**
 * POST /hooks/minio: the bucket notification endpoint. MinIO (and the local
 * s3rver launcher, infra/s3rver.ts) POSTs one S3 event per request:
 *
 *   {"EventName": "s3:ObjectCreated:Put", "Key": "<bucket>/<key>", "Records": [...]}
 *
 * with `Authorization: Bearer <OUK_WEBHOOK_TOKEN>`. Every `s3:ObjectCreated:*`
 * record for a `*.tar.gz` bundle is handed to queue/ingest (idempotent, so the
 * duplicates MinIO's at-least-once delivery produces start nothing). A `.sig`
 * arriving for a bundle whose verify is waiting for it wakes that verify up.
 *
 * Answers 200 quickly once the events are recorded; 503 when Redis or
 * PostgreSQL cannot take them, so MinIO (with a queue dir) delivers again.
 * `Records[].s3.object.key` is URL-escaped (Go's QueryEscape); the top-level
 * `Key` is not.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from './auth.ts';
import { goQueryUnescape } from '../infra/s3rver.ts';
import { statOrNull } from '../infra/store.ts';
import type { ObjectStore } from '../infra/store.ts';
import { describeError } from '../lib/errors.ts';
import { isBundleKey, jobIdFor } from '../queue/identity.ts';
import { ingestObject, type IngestDeps, type IngestResult } from '../queue/ingest.ts';

export interface IngestRoutesOptions extends IngestDeps {
  store: ObjectStore;
  /** OUK_WEBHOOK_TOKEN; undefined only when explicitly insecure. */
  webhookToken: string | undefined;
}

interface EventRecord {
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string; eTag?: string; size?: number } };
}

interface WebhookBody {
  EventName?: string;
  Key?: string;
  Records?: EventRecord[];
}

export interface CreatedObject {
  bucket: string;
  key: string;
  etag: string | null;
  size: number | null;
}

/** The objects an event says were created (records first; the top-level Key when there are none). */
export function createdObjects(body: WebhookBody): CreatedObject[] {
  const out: CreatedObject[] = [];
  for (const r of body.Records ?? []) {
    const name = r.eventName ?? body.EventName ?? '';
    if (!name.startsWith('s3:ObjectCreated:')) continue;
    const bucket = r.s3?.bucket?.name;
    const rawKey = r.s3?.object?.key;
    if (!bucket || !rawKey) continue;
    let key: string;
    try {
      key = goQueryUnescape(rawKey);
    } catch {
      key = rawKey;
    }
    out.push({ bucket, key, etag: r.s3?.object?.eTag ?? null, size: r.s3?.object?.size ?? null });
  }
  if (out.length === 0 && body.Key && (body.EventName ?? '').startsWith('s3:ObjectCreated:')) {
    const i = body.Key.indexOf('/');
    if (i > 0) out.push({ bucket: body.Key.slice(0, i), key: body.Key.slice(i + 1), etag: null, size: null });
  }
  return out;
}

function authorized(req: FastifyRequest, token: string | undefined): boolean {
  if (!token) return true;
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header);
  return Boolean(m && safeEqual(m[1].trim(), token));
}

/** A signature uploaded after its tarball: wake a verify that is waiting in backoff for it. */
async function wakeWaitingVerify(opts: IngestRoutesOptions, bucket: string, sigKey: string): Promise<string[]> {
  const key = sigKey.slice(0, -'.sig'.length);
  const r = await opts.pool.query<{ id: string }>(
    `SELECT id FROM ouk_meta.imports WHERE bucket = $1 AND object_key = $2 AND state IN ('queued', 'verifying')`,
    [bucket, key],
  );
  const woken: string[] = [];
  for (const { id } of r.rows) {
    const job = await opts.queues.queues.verify.getJob(jobIdFor(id, 'verify'));
    if (job && (await job.getState()) === 'delayed') {
      await job.promote().catch(() => undefined);
      woken.push(id);
    }
  }
  return woken;
}

export const ingestRoutes: FastifyPluginAsync<IngestRoutesOptions> = async (app: FastifyInstance, opts: IngestRoutesOptions) => {
  app.post('/hooks/minio', { bodyLimit: 1024 * 1024 }, async (req: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(req, opts.webhookToken)) {
      req.log.warn({ ip: req.ip }, 'webhook refused: missing or wrong bearer token');
      return reply.code(401).send({ error: 'unauthorized', message: 'a valid `Authorization: Bearer <OUK_WEBHOOK_TOKEN>` is required' });
    }
    const body = (req.body ?? {}) as WebhookBody;
    if (typeof body !== 'object' || (!Array.isArray(body.Records) && typeof body.Key !== 'string')) {
      return reply.code(400).send({ error: 'bad request', message: 'expected a MinIO event: {"EventName", "Key", "Records": [...]}' });
    }
    const accepted: Array<IngestResult & { key: string }> = [];
    const ignored: string[] = [];
    const woken: string[] = [];
    try {
      for (const o of createdObjects(body)) {
        if (o.key.endsWith('.tar.gz.sig')) {
          woken.push(...(await wakeWaitingVerify(opts, o.bucket, o.key)));
          continue;
        }
        if (!isBundleKey(o.key)) {
          ignored.push(o.key);
          continue;
        }
        let etag = o.etag;
        let size = o.size;
        if (!etag) {
          const st = await statOrNull(opts.store, o.bucket, o.key);
          if (!st) {
            ignored.push(o.key);
            continue;
          }
          etag = st.etag;
          size = st.size;
        }
        accepted.push({ key: o.key, ...(await ingestObject(opts, { bucket: o.bucket, key: o.key, etag, size })) });
      }
    } catch (e) {
      req.log.error({ err: e }, 'could not record a bucket event; the sender should deliver it again');
      return reply.code(503).send({ error: 'unavailable', message: describeError(e) });
    }
    return reply.code(200).send({ accepted, ignored, woken });
  });
};
