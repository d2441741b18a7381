/**
 * The identity of an import: derived from the bundle object itself (bucket,
 * key, ETag), so every notification, reconciler pass or CLI call about the same
 * object names the same import and the same BullMQ job ids — a repeated or
 * duplicated event starts nothing new, and a new upload under the same key (a
 * new ETag) is a new import.
 */
import { createHash } from 'node:crypto';
import type { StageName } from '../functions/context.ts';
import { normaliseEtag } from '../infra/store.ts';
import { QUARANTINE_PREFIX } from '../lib/quarantine.ts';

/** First 24 hex of sha256(`${bucket}/${key}#${etag}`). */
export function importIdFor(bucket: string, key: string, etag: string): string {
  return createHash('sha256').update(`${bucket}/${key}#${normaliseEtag(etag)}`).digest('hex').slice(0, 24);
}

/** BullMQ job id of a stage (BullMQ ids may not contain ':'). */
export function jobIdFor(importId: string, stage: StageName): string {
  return `${importId}-${stage}`;
}

export const STAGING_PREFIX = 'staged/';

/** Whether an object key is a bundle to import: `*.tar.gz`, not a staged member, not a quarantined kit. */
export function isBundleKey(key: string): boolean {
  return key.endsWith('.tar.gz') && !key.startsWith(STAGING_PREFIX) && !key.startsWith(QUARANTINE_PREFIX);
}
