/**
 * The reconciler: one pass makes the queue agree with the two records that
 * outlive it, the bucket and PostgreSQL. It runs as the `reconcile` job of its
 * own queue (queue/maintenance.ts), once per cluster every
 * OUK_RECONCILE_SECONDS, whatever the number of workers. A pass is a list of
 * steps:
 *
 *   list        one listing of the bucket: its bundles, and which objects have
 *               a `.sig` beside them;
 *   ingest      bundles without an import record are ingested: a lost bucket
 *               notification only arrives later;
 *   repair      every unfinished import (queued … activating, or active with
 *               its images step owed) whose stage job failed for good while
 *               its failure could not be written (PostgreSQL was down) gets
 *               that failure recorded, so status tells the truth; one with no
 *               live job (Redis wiped, restored from an older snapshot, failed
 *               over) gets its flow again from the first stage its record does
 *               not say is done;
 *   signatures  an import refused for a missing `.sig` is retried once the
 *               listing shows the `.sig` in the bucket;
 *   deltas      a delta refused because its base was not active
 *               (DELTA_BASE_MISMATCH: dropped before its base, say) is retried
 *               once that base is the active DB;
 *   quarantine  a kit refused for integrity or policy whose move under
 *               quarantine/ did not finish (the store failed mid-way, the
 *               worker died) is moved now; a quarantined (or removed) kit
 *               whose original is still listed has it deleted
 *               (functions/quarantine.ts: a replay is a no-op);
 *   rescans     the newest activation has its re-scan planning job
 *               (queue/rescan.ts, one per activation): a rollback made while
 *               Redis was down, or planning Redis lost, is caught up. The
 *               planning itself runs in that job, never in the pass.
 *
 * A step that fails is logged and recorded in the result's `errors` (counted
 * in ouk_reconcile_step_errors_total by the API) and the pass goes on with the
 * others; so does one import that cannot be repaired. A step that needs the
 * listing is skipped when the listing failed.
 *
 * Bounded: at most `limits` items of work per step and pass (bundles ingested,
 * unfinished imports checked, signature retries); what is left is named in
 * `more` and taken by the next pass — the unfinished imports from where the
 * previous pass of this process stopped (`cursor`), so none waits behind
 * others forever. The `.sig` check is the one listing, not a request per
 * refused import: a thousand objects without signatures cost a pass nothing
 * more than listing them. The pass stops between items when `signal` fires
 * (its job's deadline).
 */
import { listAllObjects, normaliseEtag, storeUnavailable, type ObjectStore } from '../infra/store.ts';
import { failedWithCodes, fromRow, getImport, settledOutOfBucket, stageFailed, type ImportRecord } from '../infra/import-records.ts';
import { QUARANTINE_CODES } from '../lib/quarantine.ts';
import { quarantineImport, quarantines } from '../functions/quarantine.ts';
import { failureReason } from '../lib/metrics.ts';
import { importIdFor, isBundleKey } from './identity.ts';
import { ingestObject, type IngestDeps } from './ingest.ts';
import { asOukError } from './errors.ts';
import { jobsOf, resumeFrom, resumeImport } from './resume.ts';
import { retryImport } from './retry.ts';
import { ensureRescanPlan } from './rescan.ts';

export interface ReconcilerDeps extends IngestDeps {
  store: ObjectStore;
  bucket: string;
  /** the clock a quarantine is dated by (default: the host's) */
  now?: () => Date;
}

/** Items of work one pass does at most, per step. */
export interface ReconcileLimits {
  ingest: number;
  repair: number;
  signatures: number;
  deltas: number;
  quarantine: number;
}

export const RECONCILE_LIMITS: ReconcileLimits = { ingest: 50, repair: 100, signatures: 50, deltas: 50, quarantine: 20 };

/** Where this process's last pass stopped in the unfinished imports; the next pass goes on from there. */
export interface ReconcileCursor {
  repairAfter: { createdAt: Date; id: string } | null;
}

export interface ReconcileOptions {
  limits?: Partial<ReconcileLimits>;
  cursor?: ReconcileCursor;
  /** The pass's deadline: it stops between items once this fires. */
  signal?: AbortSignal;
}

export type ReconcileStep = 'list' | 'ingest' | 'repair' | 'signatures' | 'deltas' | 'quarantine' | 'rescans';

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
  /** imports whose kit this pass moved under quarantine/ (or whose leftovers it deleted) */
  quarantined: string[];
  /** the activation whose re-scan planning job this pass queued (or retried), else null */
  rescanPlanned: number | null;
  /** steps that stopped at their limit (or at the deadline): the next pass goes on */
  more: ReconcileStep[];
  /** what failed, step by step (the pass went on) */
  errors: Array<{ step: ReconcileStep; error: string }>;
}

/** At most this many errors are kept in a result (the log has every one). */
const MAX_ERRORS = 20;

const UNFINISHED = ['queued', 'verifying', 'unpacking', 'loading', 'activating'];

/** What one listing of the bucket says. */
interface Listing {
  bundles: Array<{ key: string; etag: string; size: number | null; id: string }>;
  /** keys of every `.sig` object */
  signatures: Set<string>;
}

/** One pass in progress: its deps, options and result, and how a step or an item fails without ending it. */
class Pass {
  readonly out: ReconcileResult = { bundles: 0, ingested: [], failuresRecorded: [], resumed: [], retried: [], quarantined: [], rescanPlanned: null, more: [], errors: [] };
  readonly limits: ReconcileLimits;

  constructor(
    readonly deps: ReconcilerDeps,
    readonly opts: ReconcileOptions,
  ) {
    this.limits = { ...RECONCILE_LIMITS, ...opts.limits };
  }

  get stopped(): boolean {
    return this.opts.signal?.aborted ?? false;
  }

  failed(step: ReconcileStep, e: unknown, fields: Record<string, unknown> = {}): void {
    const err = asOukError(e);
    if (this.out.errors.length < MAX_ERRORS) this.out.errors.push({ step, error: `${err.code}: ${err.message}` });
    this.deps.logger?.warn({ err: e, step, ...fields }, 'reconciler: a step failed; the pass goes on with the others');
  }

  /** Runs one step; a failure is recorded and the pass goes on (null). */
  async step<T>(name: ReconcileStep, fn: () => Promise<T>): Promise<T | null> {
    if (this.stopped) {
      this.out.more.push(name);
      return null;
    }
    try {
      return await fn();
    } catch (e) {
      this.failed(name, e);
      return null;
    }
  }

  /** Runs `fn` for each item, at most `limit`, each failure recorded; stops at the deadline. */
  async each<T>(name: ReconcileStep, items: T[], limit: number, fn: (item: T) => Promise<void>, id: (item: T) => string): Promise<void> {
    let done = 0;
    for (const item of items) {
      if (done >= limit || this.stopped) {
        this.out.more.push(name);
        this.deps.logger?.info({ step: name, left: items.length - done }, 'reconciler: more than one pass does; the next pass goes on');
        return;
      }
      done++;
      try {
        await fn(item);
      } catch (e) {
        this.failed(name, e, { importId: id(item) });
      }
    }
  }
}

async function listBucket(deps: ReconcilerDeps): Promise<Listing> {
  const out: Listing = { bundles: [], signatures: new Set() };
  try {
    for await (const o of listAllObjects(deps.store, deps.bucket)) {
      if (!o.name) continue;
      if (o.name.endsWith('.sig')) out.signatures.add(o.name);
      if (!o.etag || !isBundleKey(o.name)) continue;
      const etag = normaliseEtag(o.etag);
      out.bundles.push({ key: o.name, etag, size: o.size ?? null, id: importIdFor(deps.bucket, o.name, etag) });
    }
  } catch (e) {
    throw storeUnavailable(e);
  }
  return out;
}

async function ingestUnknownBundles(pass: Pass, listing: Listing): Promise<void> {
  const { deps, out } = pass;
  out.bundles = listing.bundles.length;
  const known = new Set(
    (
      await deps.pool.query<{ id: string }>('SELECT id FROM ouk_meta.imports WHERE id = ANY($1::text[]) AND flow_added_at IS NOT NULL', [listing.bundles.map((f) => f.id)])
    ).rows.map((r) => r.id),
  );
  const unknown = listing.bundles.filter((f) => !known.has(f.id));
  await pass.each('ingest', unknown, pass.limits.ingest, async (f) => {
    const r = await ingestObject(deps, { bucket: deps.bucket, key: f.key, etag: f.etag, size: f.size }, {}, 'reconciler');
    if (r.flowAdded) {
      out.ingested.push(r.importId);
      deps.logger?.info({ importId: r.importId, key: f.key }, 'reconciler: bundle without an import found in the bucket; import started');
    }
  }, (f) => f.id);
}

/** Repairs one unfinished import: records a failure its worker could not write, or re-creates its flow. */
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

/** The unfinished imports (and the active one whose images step is owed), a pass's worth, from the cursor on. */
async function repairImports(pass: Pass): Promise<void> {
  const { deps, out } = pass;
  const cursor = pass.opts.cursor;
  const after = cursor?.repairAfter ?? null;
  const limit = pass.limits.repair;
  // A failed images step waits for `stella ouk retry`; an owed one is repaired like an unfinished stage.
  const r = await deps.pool.query<Parameters<typeof fromRow>[0]>(
    `SELECT * FROM ouk_meta.imports
      WHERE (state = ANY($1::text[])
             OR (state = 'active' AND COALESCE(stages -> 'images' ->> 'state', '') NOT IN ('done', 'failed')))
        AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::text))
      ORDER BY created_at, id
      LIMIT $4`,
    [UNFINISHED, after?.createdAt ?? null, after?.id ?? '', limit + 1],
  );
  const rows = r.rows.slice(0, limit);
  // A full page: the next pass goes on after its last row; else it starts over from the oldest.
  if (cursor) {
    const last = rows.at(-1);
    cursor.repairAfter = r.rows.length > limit && last ? { createdAt: last.created_at as Date, id: last.id as string } : null;
  }
  if (r.rows.length > limit) out.more.push('repair');
  await pass.each('repair', rows, limit, async (row) => {
    const rec = (await getImport(deps.pool, row.id as string)) ?? fromRow(row);
    await repairUnfinished(deps, rec, out);
  }, (row) => row.id as string);
}

async function retryWhenSignatureArrived(pass: Pass, listing: Listing): Promise<void> {
  const { deps, out } = pass;
  const r = await deps.pool.query<{ id: string; object_key: string }>(
    `SELECT id, object_key FROM ouk_meta.imports WHERE state = 'failed' AND error_code = 'SIGNATURE_MISSING' AND bucket = $1 ORDER BY created_at`,
    [deps.bucket],
  );
  const arrived = r.rows.filter((row) => listing.signatures.has(`${row.object_key}.sig`));
  await pass.each('signatures', arrived, pass.limits.signatures, async (row) => {
    await retryImport(deps, row.id);
    out.retried.push(row.id);
    deps.logger?.info({ importId: row.id }, 'reconciler: the missing .sig arrived; import retried');
  }, (row) => row.id);
}

/** Deltas refused for a base that was not active (dropped before it, say) whose base is the active DB now, oldest version first. */
async function retryDeltasWhoseBaseIsActive(pass: Pass): Promise<void> {
  const { deps, out } = pass;
  const r = await deps.pool.query<{ id: string; version: string; base: string }>(
    `SELECT i.id, i.version, i.base_version AS base
       FROM ouk_meta.imports i, ouk_meta.state s
      WHERE i.state = 'failed' AND i.error_code = 'DELTA_BASE_MISMATCH' AND i.kind = 'delta' AND i.bucket = $1
        AND s.active_version = i.manifest -> 'base' ->> 'version' AND s.active_digest = i.manifest -> 'base' ->> 'dbDigest'
      ORDER BY i.version, i.created_at`,
    [deps.bucket],
  );
  await pass.each('deltas', r.rows, pass.limits.deltas, async (row) => {
    // Retried by someone else meanwhile (an operator, the mirror round): recorded as this item's error, the next pass looks again.
    await retryImport(deps, row.id);
    out.retried.push(row.id);
    deps.logger?.info({ importId: row.id, version: row.version, base: row.base }, 'reconciler: the base of a refused delta is active now; delta retried');
  }, (row) => row.id);
}

/** Finishes quarantines: failed imports whose refusal quarantines, and quarantined kits whose original is still listed. */
async function finishQuarantines(pass: Pass, listing: Listing): Promise<void> {
  const { deps, out } = pass;
  const qdeps = { pool: deps.pool, store: deps.store, now: deps.now ?? (() => new Date()), logger: deps.logger };
  const failed = await failedWithCodes(deps.pool, deps.bucket, [...QUARANTINE_CODES], pass.limits.quarantine + 1);
  const listed = new Set(listing.bundles.map((b) => b.id));
  const leftovers = await settledOutOfBucket(deps.pool, [...listed]);
  const todo: ImportRecord[] = [];
  for (const rec of failed) if (listed.has(rec.id) && (await quarantines(deps.pool, rec))) todo.push(rec);
  todo.push(...leftovers);
  await pass.each('quarantine', todo, pass.limits.quarantine, async (rec) => {
    const r = await quarantineImport(qdeps, rec.id);
    if (r.done) out.quarantined.push(rec.id);
  }, (rec) => rec.id);
}

export async function reconcileOnce(deps: ReconcilerDeps, opts: ReconcileOptions = {}): Promise<ReconcileResult> {
  const pass = new Pass(deps, opts);
  const listing = await pass.step('list', () => listBucket(deps));
  if (listing) await pass.step('ingest', () => ingestUnknownBundles(pass, listing));
  await pass.step('repair', () => repairImports(pass));
  if (listing) await pass.step('signatures', () => retryWhenSignatureArrived(pass, listing));
  await pass.step('deltas', () => retryDeltasWhoseBaseIsActive(pass));
  if (listing) await pass.step('quarantine', () => finishQuarantines(pass, listing));
  await pass.step('rescans', async () => {
    pass.out.rescanPlanned = await ensureRescanPlan({ pool: deps.pool, queue: deps.queues.rescan, settings: deps.settings, logger: deps.logger });
  });
  return pass.out;
}
