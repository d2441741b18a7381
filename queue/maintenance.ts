/**
 * The maintenance queue: the periodic work of the cluster, as BullMQ job
 * schedulers (one job per interval for the whole cluster, however many worker
 * processes run — not a timer in every worker):
 *
 *   reconcile   every OUK_RECONCILE_SECONDS (15): queue/reconciler.ts
 *   gc          every OUK_GC_SECONDS (3600): functions/gc.ts, with the grace
 *               period OUK_GC_GRACE_HOURS (24) for failed and orphaned leftovers
 *
 * Every worker process runs a Worker on this queue (concurrency 1) and
 * upserts the two schedulers (idempotent). Both jobs are visible and
 * retryable in the dashboard like the stages.
 */
import { Worker, type Job, type Queue } from 'bullmq';
import type { PipelineSettings } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { collectGarbage, type GcResult } from '../functions/gc.ts';
import { MAINTENANCE_QUEUE } from './queues.ts';
import { reconcileOnce, type ReconcileResult, type ReconcilerDeps } from './reconciler.ts';

export interface MaintenanceDeps extends ReconcilerDeps {
  settings: PipelineSettings;
  logger: Logger;
  now?: () => Date;
}

export async function scheduleMaintenance(queue: Queue, settings: PipelineSettings): Promise<void> {
  const opts = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };
  await queue.upsertJobScheduler('reconcile', { every: settings.reconcileSeconds * 1000 }, { name: 'reconcile', opts });
  await queue.upsertJobScheduler('gc', { every: settings.gcSeconds * 1000 }, { name: 'gc', opts });
}

export interface RunningMaintenance {
  worker: Worker;
  close(): Promise<void>;
}

export async function startMaintenance(deps: MaintenanceDeps): Promise<RunningMaintenance> {
  await scheduleMaintenance(deps.queues.maintenance, deps.settings);
  // A Redis that lost its data (restarted without persistence, restored, failed over)
  // lost the schedulers too: put them back whenever the connection is (re)established.
  const reschedule = (): void => {
    scheduleMaintenance(deps.queues.maintenance, deps.settings).catch((err: unknown) => deps.logger.warn({ err }, 'could not re-create the maintenance schedulers'));
  };
  deps.queues.connection.on('ready', reschedule);
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job: Job): Promise<ReconcileResult | GcResult | null> => {
      if (job.name === 'reconcile') return reconcileOnce(deps);
      if (job.name === 'gc') {
        return collectGarbage({ pool: deps.pool, store: deps.store, bucket: deps.bucket, logger: deps.logger, now: (deps.now ?? (() => new Date()))(), graceHours: deps.settings.gcGraceHours });
      }
      deps.logger.warn({ name: job.name }, 'unknown maintenance job');
      return null;
    },
    { connection: deps.queues.connection, prefix: deps.queues.prefix, concurrency: 1 },
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
