/**
 * POST /hooks/minio: the bucket notification endpoint. MinIO (and the local
 * s3rver launcher, infra/dev/s3rver.ts) POSTs one S3 event per request:
 *
 *   {"EventName": "s3:ObjectCreated:Put", "Key": "<bucket>/<key>", "Records": [...]}
 *
 * with `Authorization: Bearer <OUK_WEBHOOK_TOKEN>` (checked before the body is
 * read). The body is hostile until checked (infra/minio-event.ts): a body that
 * is not a MinIO event (`"Records":[null]`, more than a few records, …) is a
 * 400, which MinIO does not redeliver. Of a valid event, only
 * `s3:ObjectCreated:*` records for the configured bucket (OUK_BUCKET) and a
 * `*.tar.gz` key are taken, and only once the object is found in the store
 * (its ETag read from there, not from the body): anything else is answered
 * 200 and listed under `ignored`, so no event can create an import for an
 * object that does not exist. Accepted bundles go to queue/ingest
 * (idempotent: the duplicates of MinIO's at-least-once delivery start
 * nothing). A `.tar.gz.sig` arriving for a bundle whose verify was refused
 * for lacking it resumes that import.
 *
 * 503 when Redis, PostgreSQL or the store cannot take the event, so MinIO
 * (with a queue dir) delivers it again.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from './auth.ts';
import { createdObjects, parseWebhookBody } from '../infra/minio-event.ts';
import { statOrNull } from '../infra/store.ts';
import type { ObjectStore } from '../infra/store.ts';
import { describeError } from '../lib/errors.ts';
import { isBundleKey } from '../queue/identity.ts';
import { retryImport } from '../queue/retry.ts';
import { ingestObject, type IngestDeps, type IngestResult } from '../queue/ingest.ts';

export interface IngestRoutesOptions extends IngestDeps {
  store: ObjectStore;
  /** OUK_BUCKET: events for any other bucket are ignored. */
  bucket: string;
  /** OUK_WEBHOOK_TOKEN; undefined only when explicitly insecure. */
  webhookToken: string | undefined;
}

function authorized(req: FastifyRequest, token: string | undefined): boolean {
  if (!token) return true;
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header);
  return Boolean(m && safeEqual(m[1].trim(), token));
}

/** A signature (`.sig`, or `.sigs.json` against a root) uploaded after its tarball: the import verify refused for lacking it resumes now. */
async function wakeWaitingVerify(opts: IngestRoutesOptions, bucket: string, sigKey: string): Promise<string[]> {
  const key = sigKey.replace(/\.(sig|sigs\.json)$/, '');
  const r = await opts.pool.query<{ id: string }>(
    `SELECT id FROM ouk_meta.imports WHERE bucket = $1 AND object_key = $2 AND state = 'failed' AND error_code = 'SIGNATURE_MISSING'`,
    [bucket, key],
  );
  const woken: string[] = [];
  for (const { id } of r.rows) {
    await retryImport(opts, id);
    woken.push(id);
  }
  return woken;
}

export const ingestRoutes: FastifyPluginAsync<IngestRoutesOptions> = async (app: FastifyInstance, opts: IngestRoutesOptions) => {
  const refuseUnauthorized = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (authorized(req, opts.webhookToken)) return;
    req.log.warn({ ip: req.ip }, 'webhook refused: missing or wrong bearer token');
    await reply.code(401).send({ error: 'unauthorized', message: 'a valid `Authorization: Bearer <OUK_WEBHOOK_TOKEN>` is required' });
  };
  app.post('/hooks/minio', { bodyLimit: 1024 * 1024, onRequest: refuseUnauthorized }, async (req: FastifyRequest, reply: FastifyReply) => {
    const parsed = parseWebhookBody(req.body);
    if (!parsed.ok) {
      req.log.warn({ ip: req.ip, reason: parsed.reason }, 'webhook refused: not a MinIO event');
      return reply.code(400).send({ error: 'bad request', message: `not a MinIO bucket event (${parsed.reason}): expected {"EventName", "Key", "Records": [...]}` });
    }
    const accepted: Array<IngestResult & { key: string }> = [];
    const ignored: Array<{ key: string; reason: string }> = [];
    const woken: string[] = [];
    try {
      for (const o of createdObjects(parsed.body)) {
        if (o.bucket !== opts.bucket) {
          ignored.push({ key: `${o.bucket}/${o.key}`, reason: `not the configured bucket ${opts.bucket}` });
          continue;
        }
        if (o.key.endsWith('.tar.gz.sig') || o.key.endsWith('.tar.gz.sigs.json')) {
          woken.push(...(await wakeWaitingVerify(opts, o.bucket, o.key)));
          continue;
        }
        if (!isBundleKey(o.key)) {
          ignored.push({ key: o.key, reason: 'not a *.tar.gz kit' });
          continue;
        }
        // The store, not the body, says what the object is.
        const st = await statOrNull(opts.store, o.bucket, o.key);
        if (!st) {
          ignored.push({ key: o.key, reason: 'no such object in the bucket' });
          continue;
        }
        accepted.push({ key: o.key, ...(await ingestObject(opts, { bucket: o.bucket, key: o.key, etag: st.etag, size: st.size }, {}, 'webhook')) });
      }
    } catch (e) {
      req.log.error({ err: e }, 'could not record a bucket event; the sender should deliver it again');
      return reply.code(503).send({ error: 'unavailable', message: describeError(e) });
    }
    if (ignored.length) req.log.info({ ignored }, 'webhook: records ignored');
    return reply.code(200).send({ accepted, ignored, woken });
  });
};
