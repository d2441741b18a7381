/**
 * MinIO's bucket-notification webhook format, both ways: the body MinIO POSTs
 * for one event (`{"EventName", "Key", "Records": [...]}`), Go's
 * url.QueryEscape that MinIO applies to `Records[].s3.object.key`, and the
 * parser the ingest endpoint uses on what arrives.
 *
 * Parsing treats the body as hostile: it must match WEBHOOK_BODY_SCHEMA
 * (object records with string names, bounded lengths, at most
 * MAX_WEBHOOK_RECORDS records — MinIO posts one per event), else it is
 * refused whole with the validator's reason.
 */
import { Ajv } from 'ajv';

/** One S3 event record as MinIO posts it (AWS's notification structure, eventSource minio:s3). */
export interface MinioEventRecord {
  eventVersion: string;
  eventSource: string;
  awsRegion: string;
  eventTime: string;
  /** e.g. `s3:ObjectCreated:Put` */
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: Record<string, string>;
  responseElements: Record<string, string>;
  s3: {
    s3SchemaVersion: string;
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: {
      /** URL-escaped like Go's url.QueryEscape: `a b+c/d` → `a+b%2Bc%2Fd`. */
      key: string;
      size?: number;
      /** hex, no quotes */
      eTag?: string;
      contentType?: string;
      userMetadata?: Record<string, string>;
      versionId?: string;
      sequencer: string;
    };
  };
  source: { host: string; port: string; userAgent: string };
}

/** The body of one MinIO webhook POST. */
export interface MinioWebhookEvent {
  /** e.g. `s3:ObjectCreated:Put` */
  EventName: string;
  /** `<bucket>/<key>`, NOT escaped */
  Key: string;
  Records: MinioEventRecord[];
}

/** Go's url.QueryEscape, which MinIO applies to `Records[].s3.object.key`. */
export function goQueryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

/** Inverse of goQueryEscape (what the ingest endpoint applies to `s3.object.key`). */
export function goQueryUnescape(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

/** MinIO posts one record per event; a body naming more is not MinIO's. */
export const MAX_WEBHOOK_RECORDS = 16;

/** The part of a webhook body the ingest endpoint reads. */
export interface WebhookBody {
  EventName?: string;
  Key?: string;
  Records?: Array<{
    eventName?: string;
    s3: { bucket: { name: string }; object: { key: string; eTag?: string; size?: number } };
  }>;
}

export const WEBHOOK_BODY_SCHEMA = {
  type: 'object',
  properties: {
    EventName: { type: 'string', maxLength: 128 },
    Key: { type: 'string', minLength: 1, maxLength: 2048 },
    Records: {
      type: 'array',
      maxItems: MAX_WEBHOOK_RECORDS,
      items: {
        type: 'object',
        required: ['s3'],
        properties: {
          eventName: { type: 'string', maxLength: 128 },
          s3: {
            type: 'object',
            required: ['bucket', 'object'],
            properties: {
              bucket: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 255 } } },
              object: {
                type: 'object',
                required: ['key'],
                properties: {
                  key: { type: 'string', minLength: 1, maxLength: 3072 },
                  eTag: { type: 'string', maxLength: 256 },
                  size: { type: 'integer', minimum: 0 },
                },
              },
            },
          },
        },
      },
    },
  },
  anyOf: [{ required: ['Records'] }, { required: ['Key'] }],
} as const;

const validateBody = new Ajv({ allErrors: false, strict: false }).compile<WebhookBody>(WEBHOOK_BODY_SCHEMA);

/** The body as a WebhookBody, or the reason it is not one (for a 400). */
export function parseWebhookBody(body: unknown): { ok: true; body: WebhookBody } | { ok: false; reason: string } {
  if (validateBody(body)) return { ok: true, body };
  const e = validateBody.errors?.[0];
  const where = e?.instancePath ? `body${e.instancePath.replace(/\//g, '.')}` : 'body';
  return { ok: false, reason: `${where} ${e?.message ?? 'is not a MinIO event'}` };
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
    let key: string;
    try {
      key = goQueryUnescape(r.s3.object.key);
    } catch {
      key = r.s3.object.key;
    }
    out.push({ bucket: r.s3.bucket.name, key, etag: r.s3.object.eTag ?? null, size: r.s3.object.size ?? null });
  }
  if (out.length === 0 && body.Key && (body.EventName ?? '').startsWith('s3:ObjectCreated:')) {
    const i = body.Key.indexOf('/');
    if (i > 0) out.push({ bucket: body.Key.slice(0, i), key: body.Key.slice(i + 1), etag: null, size: null });
  }
  return out;
}
