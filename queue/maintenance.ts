/**
 * The maintenance queue: the periodic work of the cluster, as BullMQ job
 * schedulers (one job per interval for the whole cluster, however many worker
 * processes run — not a timer in every worker):
 *
 *   reconcile   every OUK_RECONCILE_SECONDS (15): queue/reconciler.ts
 *   gc          every OUK_GC_SECONDS (3600): functions/gc.ts, with the grace
 *               period OUK_GC_GRACE_HOURS (24) for failed and orphaned leftovers
 *   mirror      on OUK_MIRROR_SCHEDULE (default 1h), only when OUK_MIRROR_URL is
 *               set: one round of the intranet-mirror pull (functions/mirror.ts)
 *
 * Every worker process runs a Worker on this queue (concurrency 2) and
 * upserts the schedulers (idempotent; a worker without OUK_MIRROR_URL removes
 * the mirror scheduler, so every worker must be configured alike). The jobs
 * are visible and retryable in the dashboard like the stages. A mirror round
 * waits for each kit it puts into the bucket to become active, so it may run
 * for minutes: the second slot keeps reconcile and gc running meanwhile, even
 * on a site with one worker process (the reconciler is what repairs a flow
 * Redis lost, which that kit's activation may be waiting for). Two passes of
 * the reconciler at once are safe: every repair is idempotent and takes its
 * import's advisory lock, as with several worker processes.
 */
import { Worker, type Job, type Queue } from 'bullmq';
import type { MirrorConfig, PipelineSettings } from '../lib/config.ts';
import { isOukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { collectGarbage, type GcResult } from '../functions/gc.ts';
import { mirrorPull, type MirrorDeps, type MirrorPullResult } from '../functions/mirror.ts';
import type { TrustedKey } from '../signing/index.ts';
import { ingestObject } from './ingest.ts';
import { retryImport } from './retry.ts';
import { MAINTENANCE_QUEUE } from './queues.ts';
import { reconcileOnce, type ReconcileResult, type ReconcilerDeps } from './reconciler.ts';

export interface MaintenanceDeps extends ReconcilerDeps {
  settings: PipelineSettings;
  logger: Logger;
  now?: () => Date;
  /** OUK_MIRROR_URL and its settings: the `mirror` job runs only with it. */
  mirror?: MirrorConfig;
  /** The host's trusted keys (OUK_TRUSTED_KEYS): a pulled kit is verified against them before it is put. */
  trustedKeys?: () => Promise<TrustedKey[]>;
}

export const MIRROR_JOB = 'mirror';

export async function scheduleMaintenance(queue: Queue, settings: PipelineSettings, mirror?: MirrorConfig): Promise<void> {
  const opts = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };
  await queue.upsertJobScheduler('reconcile', { every: settings.reconcileSeconds * 1000 }, { name: 'reconcile', opts });
  await queue.upsertJobScheduler('gc', { every: settings.gcSeconds * 1000 }, { name: 'gc', opts });
  if (mirror) await queue.upsertJobScheduler(MIRROR_JOB, mirror.schedule, { name: MIRROR_JOB, opts });
  else await queue.removeJobScheduler(MIRROR_JOB);
}

/** The mirror round's I/O from the maintenance worker's: ingest and retry go through the queue. */
export function mirrorDeps(deps: MaintenanceDeps, mirror: MirrorConfig, trustedKeys: () => Promise<TrustedKey[]>): MirrorDeps {
  return {
    pool: deps.pool,
    store: deps.store,
    bucket: deps.bucket,
    mirror,
    trustedKeys,
    ingest: (obj) => ingestObject(deps, obj, {}, 'mirror'),
    retry: async (id) => {
      await retryImport(deps, id);
    },
    logger: deps.logger,
    now: deps.now ?? (() => new Date()),
  };
}

async function runMirror(deps: MaintenanceDeps): Promise<MirrorPullResult | null> {
  if (!deps.mirror || !deps.trustedKeys) {
    deps.logger.warn('a mirror job ran on a worker without OUK_MIRROR_URL: skipped (configure every worker alike)');
    return null;
  }
  // Counted by the API from the job's end (queue/metrics-hooks.ts): /metrics is served there,
  // so a failure's message starts with its code (BullMQ keeps only the message).
  let r: MirrorPullResult;
  try {
    r = await mirrorPull(mirrorDeps(deps, deps.mirror, deps.trustedKeys));
  } catch (e) {
    if (isOukError(e)) throw new Error(`${e.code}: ${e.message}`, { cause: e });
    throw e;
  }
  deps.logger.info({ route: r.plan.route, applied: r.applied.map((a) => a.version), active: r.activeAfter, done: r.done, pending: r.pending }, 'mirror pull done');
  return r;
}

export interface RunningMaintenance {
  worker: Worker;
  close(): Promise<void>;
}

export async function startMaintenance(deps: MaintenanceDeps): Promise<RunningMaintenance> {
  await scheduleMaintenance(deps.queues.maintenance, deps.settings, deps.mirror);
  // A Redis that lost its data (restarted without persistence, restored, failed over)
  // lost the schedulers too: put them back whenever the connection is (re)established.
  const reschedule = (): void => {
    scheduleMaintenance(deps.queues.maintenance, deps.settings, deps.mirror).catch((err: unknown) => deps.logger.warn({ err }, 'could not re-create the maintenance schedulers'));
  };
  deps.queues.connection.on('ready', reschedule);
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job: Job): Promise<ReconcileResult | GcResult | MirrorPullResult | null> => {
      if (job.name === 'reconcile') return reconcileOnce(deps);
      if (job.name === MIRROR_JOB) return runMirror(deps);
      if (job.name === 'gc') {
        return collectGarbage({ pool: deps.pool, store: deps.store, bucket: deps.bucket, logger: deps.logger, now: (deps.now ?? (() => new Date()))(), graceHours: deps.settings.gcGraceHours });
      }
      deps.logger.warn({ name: job.name }, 'unknown maintenance job');
      return null;
    },
    { connection: deps.queues.connection, prefix: deps.queues.prefix, concurrency: 2 },
  );
  worker.on('error', (err) => deps.logger.error({ err }, 'maintenance worker error'));
  worker.on('failed', (job, err) => deps.logger.warn({ err, job: job?.name }, 'maintenance pass failed; the next one tries again'));
  return {
    worker,
    async close() {
      deps.queues.connection.off('ready', reschedule);
      await worker.close();
    },
  };
}
