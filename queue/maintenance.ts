/**
 * The cluster's periodic jobs, as BullMQ job schedulers (one job per interval
 * for the whole cluster, however many worker processes run — not a timer in
 * every worker). Each has a queue of its own, and every worker process runs a
 * Worker of its own on it (concurrency 1), so no job ever waits for a slot
 * another kind of job holds:
 *
 *   reconcile  queue `reconcile`, every OUK_RECONCILE_SECONDS (15), deadline
 *              OUK_RECONCILE_DEADLINE_SECONDS (120): queue/reconciler.ts
 *   gc         queue `maintenance`, every OUK_GC_SECONDS (3600), deadline
 *              OUK_GC_DEADLINE_SECONDS (1800): functions/maintenance/gc.ts, with the grace
 *              period OUK_GC_GRACE_HOURS (24) for failed and orphaned leftovers
 *   mirror     queue `mirror`, on OUK_MIRROR_SCHEDULE (default 1h), deadline
 *              OUK_MIRROR_ROUND_SECONDS (4 h), only when OUK_MIRROR_URL is set:
 *              one round of the intranet-mirror pull (functions/mirror/pull.ts)
 *
 * A mirror round waits for each kit it puts into the bucket to become active,
 * so it may run for minutes, and a mirror may trickle: the reconciler, which
 * repairs a flow Redis lost (that kit's activation may be waiting for it), and
 * gc never wait behind it, even on a site with one worker process.
 *
 * Deadlines: every job runs under its deadline (`withDeadline`). When it
 * fires, the job's signal aborts — a mirror round cuts its download or ends
 * its wait and ends pending, a reconciler pass stops between items — and if
 * the work has not ended DEADLINE_GRACE_MS later, the job fails anyway and its
 * slot is free again (what it left running is idempotent, like every pass).
 *
 * Schedulers are derived state, like the queue: every worker process makes
 * sure they exist (`ensureSchedulers`) at start, whenever its Redis
 * connection is (re)established, and on a light timer (every few seconds), so
 * a Redis that lost its data — FLUSHALL, restarted empty, restored, failed
 * over — has them back within seconds, with no restart. Only missing ones
 * (or ones that lost their next job) are re-created: upserting an existing
 * scheduler again would move its next run. At start each scheduler is upserted
 * with this worker's settings; a worker without OUK_MIRROR_URL removes the
 * mirror scheduler, so every worker must be configured alike; schedulers an
 * older version kept on the maintenance queue (reconcile, mirror) are removed.
 */
import { Worker, type Job, type Queue } from 'bullmq';
import type { MirrorConfig, MirrorSchedule, PipelineSettings } from '../lib/config.ts';
import { isOukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { collectGarbage, type GcResult } from '../functions/maintenance/gc.ts';
import { mirrorPull, type MirrorDeps, type MirrorPullResult } from '../functions/mirror/pull.ts';
import { loadSiteTrust } from '../functions/common/site-trust.ts';
import type { TrustedKey } from '../signing/index.ts';
import { ingestObject } from './ingest.ts';
import { retryImport } from './retry.ts';
import { MAINTENANCE_QUEUE, MIRROR_QUEUE, RECONCILE_QUEUE } from './queues.ts';
import { reconcileOnce, type ReconcileCursor, type ReconcileResult, type ReconcilerDeps } from './reconciler.ts';
import type { CryptoPolicy } from '../lib/crypto-policy.ts';

export interface MaintenanceDeps extends ReconcilerDeps {
  settings: PipelineSettings;
  logger: Logger;
  now?: () => Date;
  /** OUK_MIRROR_URL and its settings: the `mirror` job runs only with it. */
  mirror?: MirrorConfig;
  /** The host's trusted keys (OUK_TRUSTED_KEYS): a pulled kit is verified against them before it is put. */
  trustedKeys?: () => Promise<TrustedKey[]>;
  /** OUK_TRUST_ROOT (the only trust when set) and OUK_REQUIRE_ATTESTATION: a pulled kit is verified against the site's root. */
  trust?: { trustRoot?: string; trustedKeys: string[]; requireAttestation?: boolean; cryptoPolicy?: CryptoPolicy };
  /** How often this process checks that the schedulers exist (default: every OUK_RECONCILE_SECONDS, at most 5 s). */
  schedulerCheckMs?: number;
}

export const MIRROR_JOB = 'mirror';

/** How long a job whose deadline fired may take to stop by itself before its slot is freed anyway. */
export const DEADLINE_GRACE_MS = 5_000;

type Periodic = 'reconcile' | 'gc' | typeof MIRROR_JOB;

interface PeriodicJob {
  name: Periodic;
  queue: Queue;
  repeat: MirrorSchedule;
}

function periodicJobs(queues: MaintenanceDeps['queues'], settings: PipelineSettings, mirror?: MirrorConfig): PeriodicJob[] {
  const jobs: PeriodicJob[] = [
    { name: 'reconcile', queue: queues.reconcile, repeat: { every: settings.reconcileSeconds * 1000 } },
    { name: 'gc', queue: queues.maintenance, repeat: { every: settings.gcSeconds * 1000 } },
  ];
  if (mirror) jobs.push({ name: MIRROR_JOB, queue: queues.mirror, repeat: mirror.schedule });
  return jobs;
}

const JOB_OPTS = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };

function upsert(job: PeriodicJob): Promise<unknown> {
  return job.queue.upsertJobScheduler(job.name, job.repeat, { name: job.name, opts: JOB_OPTS });
}

/** At start: every scheduler upserted with this worker's settings; the mirror's removed without OUK_MIRROR_URL; older versions' leftovers removed. */
export async function scheduleMaintenance(queues: MaintenanceDeps['queues'], settings: PipelineSettings, mirror?: MirrorConfig): Promise<void> {
  for (const job of periodicJobs(queues, settings, mirror)) await upsert(job);
  if (!mirror) await queues.mirror.removeJobScheduler(MIRROR_JOB);
  // Before reconcile and mirror had queues of their own, their schedulers were on the maintenance queue.
  for (const legacy of ['reconcile', MIRROR_JOB]) await queues.maintenance.removeJobScheduler(legacy);
}

/**
 * Re-creates the schedulers that are missing, or whose next job is gone;
 * leaves existing ones as they are. Returns the names re-created.
 */
export async function ensureSchedulers(queues: MaintenanceDeps['queues'], settings: PipelineSettings, mirror?: MirrorConfig): Promise<Periodic[]> {
  const created: Periodic[] = [];
  for (const job of periodicJobs(queues, settings, mirror)) {
    const scheduler = await job.queue.getJobScheduler(job.name);
    // A scheduler's next run is the job `repeat:<id>:<next>`; a scheduler without it never runs again.
    const nextJob = scheduler?.next ? await job.queue.getJob(`repeat:${job.name}:${scheduler.next}`) : undefined;
    if (scheduler && nextJob) continue;
    await upsert(job);
    created.push(job.name);
  }
  return created;
}

/**
 * Runs `work` under a deadline of `ms`: its signal aborts then (or when
 * `outer` does), and if it has not ended `graceMs` later, the returned promise
 * rejects anyway so the job's slot is free. The timers are referenced and
 * cleared when the work ends.
 */
export async function withDeadline<T>(
  what: string,
  ms: number,
  setting: string,
  work: (signal: AbortSignal) => Promise<T>,
  opts: { outer?: AbortSignal; graceMs?: number } = {},
): Promise<T> {
  const controller = new AbortController();
  const graceMs = opts.graceMs ?? DEADLINE_GRACE_MS;
  const reason = `${what} reached its deadline of ${Math.round(ms / 1000)} s (${setting})`;
  let grace: NodeJS.Timeout | undefined;
  let giveUp: (e: Error) => void = () => undefined;
  const late = new Promise<never>((_, reject) => {
    giveUp = reject;
  });
  const stop = (why: unknown): void => {
    if (controller.signal.aborted) return;
    controller.abort(why);
    grace = setTimeout(() => giveUp(new Error(`${reason} and did not stop within ${Math.round(graceMs / 1000)} s: its slot is freed, the next run starts over`)), graceMs);
  };
  const timer = setTimeout(() => stop(new Error(reason)), ms);
  const onOuter = (): void => stop(opts.outer?.reason ?? new Error(`${what} was cancelled`));
  if (opts.outer?.aborted) onOuter();
  else opts.outer?.addEventListener('abort', onOuter, { once: true });
  try {
    return await Promise.race([work(controller.signal), late]);
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
    opts.outer?.removeEventListener('abort', onOuter);
  }
}

/** The mirror round's I/O from the maintenance worker's: ingest and retry go through the queue. */
export function mirrorDeps(deps: MaintenanceDeps, mirror: MirrorConfig, trustedKeys: () => Promise<TrustedKey[]>, signal?: AbortSignal): MirrorDeps {
  return {
    pool: deps.pool,
    store: deps.store,
    bucket: deps.bucket,
    mirror,
    trustedKeys,
    ...(deps.trust ? { trust: async () => (await loadSiteTrust(deps.trust!, { pool: deps.pool, trustedKeys })).state, requireAttestation: deps.trust.requireAttestation, ...(deps.trust.cryptoPolicy ? { cryptoPolicy: deps.trust.cryptoPolicy } : {}) } : {}),
    ingest: (obj) => ingestObject(deps, obj, {}, 'mirror'),
    retry: async (id) => {
      await retryImport(deps, id);
    },
    logger: deps.logger,
    now: deps.now ?? (() => new Date()),
    signal,
  };
}

async function runMirror(deps: MaintenanceDeps, signal: AbortSignal): Promise<MirrorPullResult | null> {
  if (!deps.mirror || !deps.trustedKeys) {
    deps.logger.warn('a mirror job ran on a worker without OUK_MIRROR_URL: skipped (configure every worker alike)');
    return null;
  }
  // Counted by the API from the job's end (queue/metrics-hooks.ts): /metrics is served there,
  // so a failure's message starts with its code (BullMQ keeps only the message).
  let r: MirrorPullResult;
  try {
    r = await mirrorPull(mirrorDeps(deps, deps.mirror, deps.trustedKeys, signal));
  } catch (e) {
    if (isOukError(e)) throw new Error(`${e.code}: ${e.message}`, { cause: e });
    throw e;
  }
  const fields = { route: r.plan.route, outcome: r.outcome, applied: r.applied.map((a) => a.version), active: r.activeAfter, done: r.done, pending: r.pending };
  if (r.outcome === 'ahead-of-mirror' || r.outcome === 'nothing-applies') {
    // Not fine: the round can pull nothing while the site is not up to date with the mirror.
    deps.logger.warn({ ...fields, offered: r.plan.offered, floor: r.plan.floor, notes: r.plan.notes }, `mirror pull pulled nothing: ${r.plan.notes.at(-1) ?? r.outcome}`);
  } else deps.logger.info(fields, 'mirror pull done');
  return r;
}

export interface RunningMaintenance {
  workers: Worker[];
  close(): Promise<void>;
}

export async function startMaintenance(deps: MaintenanceDeps): Promise<RunningMaintenance> {
  const { queues, settings, logger } = deps;
  await scheduleMaintenance(queues, settings, deps.mirror);
  // Whatever happened to Redis, the schedulers come back: on every (re)connection and on a light timer.
  let checking = false;
  const ensure = (): void => {
    if (checking) return;
    checking = true;
    ensureSchedulers(queues, settings, deps.mirror)
      .then((created) => {
        if (created.length) logger.warn({ schedulers: created }, 'maintenance schedulers were missing (Redis lost them?): re-created');
      })
      .catch((err: unknown) => logger.warn({ err }, 'could not check the maintenance schedulers; trying again shortly'))
      .finally(() => {
        checking = false;
      });
  };
  queues.connection.on('ready', ensure);
  const checkMs = deps.schedulerCheckMs ?? Math.min(5_000, settings.reconcileSeconds * 1000);
  const timer = setInterval(ensure, checkMs);
  timer.unref();

  const cursor: ReconcileCursor = { repairAfter: null };
  const worker = (queue: string, run: (job: Job, signal: AbortSignal | undefined) => Promise<unknown>): Worker => {
    const w = new Worker(queue, (job, _token, signal) => run(job, signal), { connection: queues.connection, prefix: queues.prefix, concurrency: 1 });
    w.on('error', (err) => logger.error({ err, queue }, 'maintenance worker error'));
    w.on('failed', (job, err) => logger.warn({ err, job: job?.name }, 'maintenance pass failed; the next one tries again'));
    return w;
  };
  const workers = [
    worker(RECONCILE_QUEUE, (job, outer) =>
      withDeadline('the reconciler pass', settings.reconcileDeadlineSeconds * 1000, 'OUK_RECONCILE_DEADLINE_SECONDS', async (signal): Promise<ReconcileResult> => {
        const r = await reconcileOnce(deps, { cursor, signal });
        if (signal.aborted) logger.warn({ more: r.more }, 'the reconciler pass reached its deadline; the next pass goes on');
        return r;
      }, { outer }),
    ),
    worker(MAINTENANCE_QUEUE, async (job, outer): Promise<GcResult | null> => {
      if (job.name !== 'gc') {
        // reconcile and mirror jobs an older version scheduled here: their own queues run them now.
        logger.info({ name: job.name }, 'maintenance queue: a job of an older version, skipped');
        return null;
      }
      const now = (deps.now ?? (() => new Date()))();
      return withDeadline('gc', settings.gcDeadlineSeconds * 1000, 'OUK_GC_DEADLINE_SECONDS', () =>
        collectGarbage({ pool: deps.pool, store: deps.store, bucket: deps.bucket, logger, now, graceHours: settings.gcGraceHours }),
      { outer });
    }),
  ];
  // Only a worker configured with the mirror takes mirror jobs.
  if (deps.mirror) {
    const roundMs = deps.mirror.roundSeconds * 1000;
    workers.push(worker(MIRROR_QUEUE, (_job, outer) => withDeadline('the mirror round', roundMs, 'OUK_MIRROR_ROUND_SECONDS', (signal) => runMirror(deps, signal), { outer })));
  }
  return {
    workers,
    async close() {
      clearInterval(timer);
      queues.connection.off('ready', ensure);
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
