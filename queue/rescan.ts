/**
 * Re-scans of stored SBOMs after every activation, on their own BullMQ queue
 * `rescan` (visible and retryable in the dashboard like the stages):
 *
 *   enqueueRescans     one job per stored SBOM without a result for the newest
 *                      activation (functions/rescan.ts planRescans), job id
 *                      `rescan-<sbom>-<activation seq>`: adding the same jobs
 *                      twice adds nothing. Called by the activate worker once
 *                      an activation committed, by `stella ouk rollback`, and
 *                      by the reconciler every pass (PostgreSQL is the record:
 *                      whatever Redis lost, or a rollback made while Redis was
 *                      down, is enqueued again)
 *   startRescanWorker  a Worker with its own concurrency (OUK_RESCAN_CONCURRENCY,
 *                      default 1) running functions/rescan.ts rescanSbom, retried
 *                      with OUK_RESCAN_ATTEMPTS and backoff. Interactive scans run
 *                      in the API process and never wait behind it; re-scans are
 *                      not counted against any quota.
 *
 * The scanner is passed in (the worker process gives scan/stored.ts's): the
 * queue wiring never imports the scanner.
 */
import { UnrecoverableError, Worker, type Job, type JobsOptions, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PipelineSettings } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pool } from '../infra/db.ts';
import { planRescans, rescanSbom, type RescanPayload, type RescanResult, type SbomScanner } from '../functions/rescan.ts';
import { RESCAN_QUEUE } from './queues.ts';
import { asOukError } from './errors.ts';

export function rescanJobId(p: Pick<RescanPayload, 'sbom' | 'activationSeq'>): string {
  return `rescan-${p.sbom}-${p.activationSeq}`;
}

export function rescanJobOptions(settings: PipelineSettings, p: RescanPayload): JobsOptions {
  return {
    jobId: rescanJobId(p),
    attempts: settings.rescanAttempts,
    backoff: { type: 'exponential', delay: settings.rescanBackoffMs },
    removeOnComplete: { age: settings.keepCompletedSeconds },
    removeOnFail: { age: settings.keepFailedSeconds },
  };
}

export interface EnqueueRescansDeps {
  pool: Pool;
  queue: Queue;
  settings: PipelineSettings;
  logger?: Logger;
}

export interface EnqueuedRescans {
  activationSeq: number | null;
  dbVersion: string | null;
  jobs: number;
  /** of which carried forward without a scan (a delta that touched none of their packages) */
  carried: number;
}

/** Enqueues the re-scans the newest activation still needs (idempotent: job ids per SBOM and activation). */
export async function enqueueRescans(deps: EnqueueRescansDeps): Promise<EnqueuedRescans> {
  const plan = await planRescans(deps.pool);
  if (plan.jobs.length > 0) {
    await deps.queue.addBulk(plan.jobs.map((p) => ({ name: 'rescan', data: p, opts: rescanJobOptions(deps.settings, p) })));
    deps.logger?.info({ activation: plan.activation?.seq, dbVersion: plan.activation?.version, jobs: plan.jobs.length, carried: plan.carried }, 're-scans of stored SBOMs enqueued');
  }
  return { activationSeq: plan.activation?.seq ?? null, dbVersion: plan.activation?.version ?? null, jobs: plan.jobs.length, carried: plan.carried };
}

export interface RescanWorkerDeps {
  connection: Redis;
  prefix: string;
  pool: Pool;
  scanner: SbomScanner;
  settings: PipelineSettings;
  logger: Logger;
  now?: () => Date;
}

export function rescanProcessor(deps: Omit<RescanWorkerDeps, 'connection' | 'prefix' | 'settings'>) {
  return async (job: Job<RescanPayload>): Promise<RescanResult> => {
    try {
      return await rescanSbom({ pool: deps.pool, scanner: deps.scanner, logger: deps.logger, now: deps.now ?? (() => new Date()) }, job.data);
    } catch (e) {
      const err = asOukError(e);
      const message = `${err.code}: ${err.message}`;
      deps.logger.warn({ sbom: job.data.sbom, activation: job.data.activationSeq, attempt: job.attemptsMade + 1, error: message }, 're-scan attempt failed');
      if (!err.retryable) throw new UnrecoverableError(message);
      throw new Error(message, { cause: e });
    }
  };
}

export function startRescanWorker(deps: RescanWorkerDeps): Worker<RescanPayload, RescanResult> {
  const worker = new Worker<RescanPayload, RescanResult>(RESCAN_QUEUE, rescanProcessor(deps), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.settings.rescanConcurrency,
    lockDuration: deps.settings.lockMs,
    stalledInterval: deps.settings.stalledMs,
    maxStalledCount: 2,
  });
  worker.on('error', (err) => deps.logger.error({ err }, 're-scan worker error'));
  return worker;
}
