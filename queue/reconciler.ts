/**
 * The reconciler: one pass makes the queue agree with the two records that
 * outlive it, the bucket and PostgreSQL. It runs as the `reconcile` job of
 * the maintenance queue (queue/maintenance.ts), once per cluster every
 * OUK_RECONCILE_SECONDS, whatever the number of workers.
 *
 *  1. bundles in the bucket without an import record are ingested: a lost
 *     bucket notification only arrives later;
 *  2. every unfinished import (queued … activating) whose stage job failed for
 *     good while its failure could not be written (PostgreSQL was down) gets
 *     that failure recorded, so status tells the truth;
 *  3. every unfinished import with no live job (Redis wiped, restored from an
 *     older snapshot, failed over) gets its flow again from the first stage
 *     its record does not say is done;
 *  4. an import refused for a missing `.sig` is retried once the `.sig` is in
 *     the bucket; a delta refused because its base was not active
 *     (DELTA_BASE_MISMATCH) is retried once that base is the active DB;
 *  5. every stored SBOM without a result for the newest activation gets its
 *     re-scan job (queue/rescan.ts; idempotent job ids): a rollback made while
 *     Redis was down, or jobs Redis lost, are caught up.
 */
import { storeUnavailable, type ObjectStore } from '../infra/store.ts';
import { normaliseEtag, objectExists } from '../infra/store.ts';
import { fromRow, getImport, stageFailed, type ImportRecord } from '../infra/import-records.ts';
import { failureReason } from '../lib/metrics.ts';
import { importIdFor, isBundleKey } from './identity.ts';
import { ingestObject, type IngestDeps } from './ingest.ts';
import { jobsOf, resumeFrom, resumeImport } from './resume.ts';
import { retryImport } from './retry.ts';
import { enqueueRescans } from './rescan.ts';

export interface ReconcilerDeps extends IngestDeps {
  store: ObjectStore;
  bucket: string;
}

export interface ReconcileResult {
  bundles: number;
  /** imports started for bundles that had none */
  ingested: string[];
  /** failures a worker could not record, now recorded */
  failuresRecorded: string[];
  /** stranded imports whose flow was re-created */
  resumed: string[];
  /** imports retried because what they lacked arrived: their missing .sig, a delta's base (now active) */
  retried: string[];
  /** re-scan jobs of stored SBOMs (re-)enqueued for the newest activation */
  rescans: number;
}

interface Listed {
  name?: string;
  etag?: string;
  size?: number;
}

const UNFINISHED = ['queued', 'verifying', 'unpacking', 'loading', 'activating'];

async function ingestUnknownBundles(deps: ReconcilerDeps, out: ReconcileResult): Promise<void> {
  const found: Array<{ key: string; etag: string; size: number | null; id: string }> = [];
  try {
    for await (const o of deps.store.listObjectsV2(deps.bucket, '', true) as AsyncIterable<Listed>) {
      if (!o.name || !o.etag || !isBundleKey(o.name)) continue;
      const etag = normaliseEtag(o.etag);
      found.push({ key: o.name, etag, size: o.size ?? null, id: importIdFor(deps.bucket, o.name, etag) });
    }
  } catch (e) {
    throw storeUnavailable(e);
  }
  out.bundles = found.length;
  const known = new Set(
    (await deps.pool.query<{ id: string }>('SELECT id FROM ouk_meta.imports WHERE id = ANY($1::text[]) AND flow_added_at IS NOT NULL', [found.map((f) => f.id)])).rows.map((r) => r.id),
  );
  for (const f of found) {
    if (known.has(f.id)) continue;
    const r = await ingestObject(deps, { bucket: deps.bucket, key: f.key, etag: f.etag, size: f.size }, {}, 'reconciler');
    if (r.flowAdded) {
      out.ingested.push(r.importId);
      deps.logger?.info({ importId: r.importId, key: f.key }, 'reconciler: bundle without an import found in the bucket; import started');
    }
  }
}

/** Steps 2 and 3 for one unfinished import. */
async function repairUnfinished(deps: ReconcilerDeps, rec: ImportRecord, out: ReconcileResult): Promise<void> {
  const from = resumeFrom(rec);
  if (!from) return;
  const jobs = await jobsOf(deps, rec.id);
  const job = jobs[from];
  // BullMQ keeps a job it will retry in 'delayed': 'failed' is final.
  if (job?.state === 'failed' && rec.stages[from]?.state !== 'failed') {
    const reason = job.job.failedReason || 'the stage failed (no reason kept)';
    await stageFailed(deps.pool, rec.id, from, failureReason(new Error(reason)), reason.replace(/^[A-Z_]+: /, ''), true);
    out.failuresRecorded.push(rec.id);
    deps.logger?.warn({ importId: rec.id, stage: from }, 'reconciler: recorded a stage failure the worker could not write');
    return;
  }
  const r = await resumeImport(deps, rec);
  if (r.resumed) {
    out.resumed.push(rec.id);
    deps.logger?.warn({ importId: rec.id, from: r.from }, 'reconciler: import had no live job (Redis lost it?); flow re-created from its first stage not done');
  }
}

async function retryWhenSignatureArrived(deps: ReconcilerDeps, out: ReconcileResult): Promise<void> {
  const r = await deps.pool.query<{ id: string; object_key: string }>(
    `SELECT id, object_key FROM ouk_meta.imports WHERE state = 'failed' AND error_code = 'SIGNATURE_MISSING' AND bucket = $1`,
    [deps.bucket],
  );
  for (const row of r.rows) {
    if (!(await objectExists(deps.store, deps.bucket, `${row.object_key}.sig`).catch(() => false))) continue;
    await retryImport(deps, row.id);
    out.retried.push(row.id);
    deps.logger?.info({ importId: row.id }, 'reconciler: the missing .sig arrived; import retried');
  }
}

/** Deltas refused for a base that was not active (dropped before it, say) whose base is the active DB now. */
async function retryDeltasWhoseBaseIsActive(deps: ReconcilerDeps, out: ReconcileResult): Promise<void> {
  const r = await deps.pool.query<{ id: string; version: string; base: string }>(
    `SELECT i.id, i.version, i.base_version AS base
       FROM ouk_meta.imports i, ouk_meta.state s
      WHERE i.state = 'failed' AND i.error_code = 'DELTA_BASE_MISMATCH' AND i.kind = 'delta' AND i.bucket = $1
        AND s.active_version = i.manifest -> 'base' ->> 'version' AND s.active_digest = i.manifest -> 'base' ->> 'dbDigest'
      ORDER BY i.version, i.created_at`,
    [deps.bucket],
  );
  for (const row of r.rows) {
    try {
      await retryImport(deps, row.id);
    } catch (err) {
      // retried by someone else meanwhile (an operator, the mirror round): the next pass looks again
      deps.logger?.warn({ err, importId: row.id }, 'reconciler: could not retry a delta whose base is active');
      continue;
    }
    out.retried.push(row.id);
    deps.logger?.info({ importId: row.id, version: row.version, base: row.base }, 'reconciler: the base of a refused delta is active now; delta retried');
  }
}

export async function reconcileOnce(deps: ReconcilerDeps): Promise<ReconcileResult> {
  const out: ReconcileResult = { bundles: 0, ingested: [], failuresRecorded: [], resumed: [], retried: [], rescans: 0 };
  await ingestUnknownBundles(deps, out);
  // ...and the active import whose images stage is owed and not failed (a failed push waits for `stella ouk retry`).
  const unfinished = await deps.pool.query<Parameters<typeof fromRow>[0]>(
    `SELECT * FROM ouk_meta.imports
      WHERE state = ANY($1::text[])
         OR (state = 'active' AND COALESCE(stages -> 'images' ->> 'state', '') NOT IN ('done', 'failed'))
      ORDER BY created_at`,
    [UNFINISHED],
  );
  for (const row of unfinished.rows) {
    const rec = (await getImport(deps.pool, row.id)) ?? fromRow(row);
    await repairUnfinished(deps, rec, out);
  }
  await retryWhenSignatureArrived(deps, out);
  await retryDeltasWhoseBaseIsActive(deps, out);
  out.rescans = (await enqueueRescans({ pool: deps.pool, queue: deps.queues.rescan, settings: deps.settings, logger: deps.logger })).jobs;
  return out;
}
