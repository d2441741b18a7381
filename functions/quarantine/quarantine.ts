/**
 * Quarantine: moving a refused kit out of the pipeline's way, and back.
 * Which refusals quarantine is decided in lib/quarantine.ts; the import
 * record's steps are in infra/import-records.ts.
 *
 * quarantineImport — a failed import whose code quarantines:
 *   1. claim the place `quarantine/<date>/<key>` on the record (a replay of a
 *      crashed move reuses it, whatever the date is by then);
 *   2. copy the tarball and its siblings (`.sig`, `.sigstore.json`,
 *      `.sigs.json`, `.intoto.json`) there, then write `<name>.reason.json`;
 *   3. record the import quarantined;
 *   4. delete the originals.
 *   A crash anywhere leaves either the record failed (the reconciler's next
 *   pass runs this again: the copies are simply made again) or quarantined
 *   with originals left over (the pass deletes them): a replay is a no-op.
 *   The tarball is moved only while it is the very object the import was
 *   about (same ETag): a new upload under the same key is never touched.
 *
 * releaseQuarantined — `stella ouk quarantine release`: copy back, record the
 * import failed again without a code, then delete the quarantined copies; the
 * caller retries the import from its failed stage — a refused verify checks
 * it again against today's trust — and a refusal quarantines it again.
 * Interrupted before that retry, the import waits as failed for
 * `stella ouk retry ID`.
 *
 * removeQuarantined — `stella ouk quarantine rm`: record it removed, then
 * delete its copies.
 */
import { OukError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { arrivalOf, quarantineKeyFor, REASON_SUFFIX, shouldQuarantine, SIBLING_SUFFIXES, type QuarantineReason } from '../../lib/quarantine.ts';
import type { Pool } from '../../infra/db.ts';
import {
  claimQuarantineKey,
  getImport,
  markQuarantined,
  markReleased,
  markRemoved,
  quarantineKeyTaken,
  type ImportRecord,
} from '../../infra/import-records/index.ts';
import { readActivePointer } from '../../infra/active-db.ts';
import { copyWithin, normaliseEtag, putSmallObject, readSmallObject, removeObjects, statOrNull, type ObjectStore } from '../../infra/store.ts';

export interface QuarantineDeps {
  pool: Pool;
  store: ObjectStore;
  now: () => Date;
  logger?: Logger;
}

export type QuarantineOutcome =
  | { done: true; key: string; objects: string[] }
  | { done: false; why: string };

const MAX_REASON_BYTES = 64 * 1024;

/** Whether this failed record's refusal quarantines its kit (reads the active DB for a delta's base). */
export async function quarantines(pool: Pool, rec: ImportRecord): Promise<boolean> {
  if (rec.state !== 'failed' || !rec.errorCode) return false;
  if (rec.errorCode !== 'DELTA_BASE_MISMATCH') return shouldQuarantine(rec.errorCode);
  const active = await readActivePointer(pool);
  return shouldQuarantine(rec.errorCode, { base: rec.manifest?.base ?? null, active });
}

/** The keys that travel with a kit at `key`. */
function withSiblings(key: string): string[] {
  return [key, ...SIBLING_SUFFIXES.map((s) => `${key}${s}`)];
}

/** Moves a failed import's kit under quarantine/ (see the module's comment); safe to run again after a crash. */
export async function quarantineImport(deps: QuarantineDeps, importId: string): Promise<QuarantineOutcome> {
  let rec = await getImport(deps.pool, importId);
  if (!rec) return { done: false, why: 'no such import' };
  if (rec.state === 'quarantined' && rec.quarantineKey) {
    // Recorded already: only the originals may be left over (a crash before the delete).
    await deleteOriginals(deps, rec);
    return { done: true, key: rec.quarantineKey, objects: [] };
  }
  if (rec.state !== 'failed' || !rec.errorCode) return { done: false, why: `the import is ${rec.state}` };

  const now = deps.now();
  let place = rec.quarantineKey ?? quarantineKeyFor(now, rec.objectKey, rec.id);
  if (!rec.quarantineKey && (await quarantineKeyTaken(deps.pool, place, rec.id))) place = quarantineKeyFor(now, rec.objectKey, rec.id, true);
  const claimed = await claimQuarantineKey(deps.pool, rec.id, place);
  if (!claimed) return { done: false, why: 'the import is no longer failed' };
  place = claimed;

  // 2. copy: the tarball only while it is this import's object (same ETag), then its siblings, then reason.json
  const stat = await statOrNull(deps.store, rec.bucket, rec.objectKey);
  const copied: string[] = [];
  if (stat && normaliseEtag(stat.etag) === normaliseEtag(rec.etag)) {
    if (await copyWithin(deps.store, rec.bucket, rec.objectKey, place)) copied.push(place);
    for (const s of SIBLING_SUFFIXES) if (await copyWithin(deps.store, rec.bucket, `${rec.objectKey}${s}`, `${place}${s}`)) copied.push(`${place}${s}`);
  } else if (!(await statOrNull(deps.store, rec.bucket, place))) {
    // Neither here nor copied by an earlier run: there is nothing to quarantine (deleted, or replaced by a new upload).
    return { done: false, why: stat ? `${rec.objectKey} was replaced by a new upload` : `${rec.objectKey} is no longer in the bucket` };
  }
  const reason: QuarantineReason = {
    importId: rec.id,
    code: rec.errorCode,
    message: rec.error ?? '',
    at: now.toISOString(),
    via: arrivalOf(rec.startedBy),
    bucket: rec.bucket,
    key: rec.objectKey,
    etag: rec.etag,
    version: rec.version,
    digest: rec.digest,
    objects: copied.length ? copied : withSiblings(place),
  };
  await putSmallObject(deps.store, rec.bucket, `${place}${REASON_SUFFIX}`, Buffer.from(`${JSON.stringify(reason, null, 2)}\n`));

  // 3. record, 4. delete
  if (!(await markQuarantined(deps.pool, rec.id, rec.errorCode, now))) {
    rec = await getImport(deps.pool, importId);
    if (rec?.state !== 'quarantined') return { done: false, why: `the import is ${rec?.state ?? 'gone'}` };
  } else rec = { ...rec, state: 'quarantined', quarantineKey: place };
  await deleteOriginals(deps, rec!);
  deps.logger?.warn({ importId: rec!.id, code: reason.code, quarantinedAs: place }, 'kit quarantined: it is not retried (stella ouk quarantine list)');
  return { done: true, key: place, objects: copied };
}

/** Deletes a quarantined kit's originals: the tarball only while it is still this import's object, and its siblings. */
async function deleteOriginals(deps: QuarantineDeps, rec: ImportRecord): Promise<void> {
  const stat = await statOrNull(deps.store, rec.bucket, rec.objectKey);
  const keys = SIBLING_SUFFIXES.map((s) => `${rec.objectKey}${s}`);
  if (stat && normaliseEtag(stat.etag) === normaliseEtag(rec.etag)) keys.unshift(rec.objectKey);
  await removeObjects(deps.store, rec.bucket, keys);
}

/** reason.json of a quarantined import (null when it is not in the bucket). */
export async function readQuarantineReason(deps: Pick<QuarantineDeps, 'store'>, rec: ImportRecord): Promise<QuarantineReason | null> {
  if (!rec.quarantineKey) return null;
  const raw = await readSmallObject(deps.store, rec.bucket, `${rec.quarantineKey}${REASON_SUFFIX}`, MAX_REASON_BYTES).catch(() => null);
  if (!raw) return null;
  try {
    return JSON.parse(raw.toString('utf8')) as QuarantineReason;
  } catch {
    return null;
  }
}

function requireQuarantined(rec: ImportRecord | null, id: string): ImportRecord & { quarantineKey: string } {
  if (!rec || rec.state !== 'quarantined' || !rec.quarantineKey) {
    throw new OukError('QUARANTINE_NOT_FOUND', `no quarantined import ${id}${rec ? ` (it is ${rec.state})` : ''}: list them with \`stella ouk quarantine list\``);
  }
  return rec as ImportRecord & { quarantineKey: string };
}

/**
 * Puts a quarantined kit back at its key and records its import failed
 * again, without a code (the caller then retries it from its failed stage). Returns the ETag the tarball has back
 * at its key: a store may give a copy a new one, and then it is a new import.
 * `inPlace`: the same tarball is at its key again already (`stella ouk import`
 * uploaded it with the files beside it now): nothing is copied back, the
 * quarantine is cleared and the uploaded siblings are what verify checks.
 */
export async function releaseQuarantined(
  deps: QuarantineDeps,
  importId: string,
  opts: { inPlace?: boolean } = {},
): Promise<{ record: ImportRecord; etag: string; size: number }> {
  const rec = requireQuarantined(await getImport(deps.pool, importId), importId);
  const place = rec.quarantineKey;
  let back: Awaited<ReturnType<typeof statOrNull>>;
  if (opts.inPlace) {
    // The operator uploaded the same tarball again at its key, with the files beside it now (e.g. a .sigs.json
    // with more signatures): those are what verify checks, the quarantined copies are not put back over them.
    back = await statOrNull(deps.store, rec.bucket, rec.objectKey);
    if (!back || normaliseEtag(back.etag) !== normaliseEtag(rec.etag)) {
      throw new OukError('QUARANTINE_NOT_FOUND', `${rec.objectKey} in bucket ${rec.bucket} is not the quarantined kit of import ${rec.id} (gone or replaced): import it again`);
    }
  } else {
    if (!(await copyWithin(deps.store, rec.bucket, place, rec.objectKey))) {
      throw new OukError('QUARANTINE_NOT_FOUND', `${place} is no longer in bucket ${rec.bucket}: the quarantined kit is gone — remove the record with \`stella ouk quarantine rm ${rec.id} --reason TEXT\` and import the kit again`);
    }
    for (const s of SIBLING_SUFFIXES) await copyWithin(deps.store, rec.bucket, `${place}${s}`, `${rec.objectKey}${s}`);
    back = await statOrNull(deps.store, rec.bucket, rec.objectKey);
  }
  if (!back) throw new OukError('STORE_UNAVAILABLE', `${rec.objectKey} vanished right after it was copied back: try again`, { retryable: true });
  await markReleased(deps.pool, rec.id);
  await removeObjects(deps.store, rec.bucket, [...withSiblings(place), `${place}${REASON_SUFFIX}`]);
  deps.logger?.info({ importId: rec.id, from: place }, 'quarantined kit released: verified again now');
  return { record: (await getImport(deps.pool, rec.id)) ?? rec, etag: normaliseEtag(back.etag), size: back.size };
}

/** Deletes a quarantined kit for good: the record says removed, then its copies go. A replay deletes again. */
export async function removeQuarantined(deps: QuarantineDeps, importId: string): Promise<ImportRecord> {
  const found = await getImport(deps.pool, importId);
  const rec = found?.state === 'removed' && found.quarantineKey ? (found as ImportRecord & { quarantineKey: string }) : requireQuarantined(found, importId);
  await markRemoved(deps.pool, rec.id);
  await removeObjects(deps.store, rec.bucket, [...withSiblings(rec.quarantineKey), `${rec.quarantineKey}${REASON_SUFFIX}`]);
  deps.logger?.info({ importId: rec.id, key: rec.quarantineKey }, 'quarantined kit removed');
  return { ...rec, state: 'removed' };
}
