/**
 * Re-scans of stored SBOMs after every activation, on their own BullMQ queue
 * `rescan` (visible and retryable in the dashboard like the stages):
 *
 *   enqueueRescanPlan  one `plan` job per activation, job id `plan-<activation
 *                      seq>` (added again, it is the same job), at the head of
 *                      the queue. Added by the activate worker once an
 *                      activation committed: the activate job ends right after
 *                      the switch, and the planning (a delta's touched packages
 *                      against every stored SBOM: seconds to minutes with many
 *                      SBOMs and a large delta) runs here, not in it
 *   ensureRescanPlan   the reconciler's step, every pass: when the newest
 *                      activation has no plan job (a rollback made while Redis
 *                      was down; Redis lost it), it is added; a failed one is
 *                      retried. Cheap: one row read and one job looked up — the
 *                      planning query runs once per activation, not per pass
 *   enqueueRescans     the planning itself: one job per stored SBOM without a
 *                      result for the newest activation (functions/sboms/rescan.ts
 *                      planRescans), job id `rescan-<sbom>-<activation seq>`:
 *                      adding the same jobs twice adds nothing. Run by the
 *                      `plan` job, and by `stella ouk rollback` itself
 *   startRescanWorker  a Worker with its own concurrency (OUK_RESCAN_CONCURRENCY,
 *                      default 1) running `plan` jobs and functions/sboms/rescan.ts
 *                      rescanSbom, retried with OUK_RESCAN_ATTEMPTS and backoff.
 *                      Interactive scans run in the API process and never wait
 *                      behind it; re-scans are not counted against any quota.
 *
 * The scanner is passed in (the worker process gives scan/stored.ts's): the
 * queue wiring never imports the scanner.
 */
import { UnrecoverableError, Worker, type Job, type JobsOptions, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PipelineSettings } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pool } from '../infra/db.ts';
import { latestActivation } from '../infra/activations.ts';
import { planRescans, rescanSbom, type RescanPayload, type RescanResult, type SbomScanner } from '../functions/sboms/rescan.ts';
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

/** The name of the planning job on the rescan queue (the others are `rescan`). */
export const PLAN_JOB = 'plan';

export interface PlanPayload {
  /** The activation it was added for (the planning itself is for the newest one when it runs). */
  activationSeq: number;
}

export function planJobId(activationSeq: number): string {
  return `plan-${activationSeq}`;
}

/** Adds the newest activation's planning job (idempotent); returns its activation seq, null when nothing is active. */
export async function enqueueRescanPlan(deps: EnqueueRescansDeps): Promise<number | null> {
  const act = await latestActivation(deps.pool);
  if (!act) return null;
  const data: PlanPayload = { activationSeq: act.seq };
  await deps.queue.add(PLAN_JOB, data, {
    jobId: planJobId(act.seq),
    // Before the re-scans already waiting (those of an older activation end at once as superseded).
    lifo: true,
    attempts: deps.settings.rescanAttempts,
    backoff: { type: 'exponential', delay: deps.settings.rescanBackoffMs },
    removeOnComplete: { age: deps.settings.keepCompletedSeconds },
    removeOnFail: { age: deps.settings.keepFailedSeconds },
  });
  return act.seq;
}

/**
 * The reconciler's check: the newest activation has a planning job. Adds it
 * when missing, retries it when it failed for good; returns the activation seq
 * when it did either, null when there was nothing to do.
 */
export async function ensureRescanPlan(deps: EnqueueRescansDeps): Promise<number | null> {
  const act = await latestActivation(deps.pool);
  if (!act) return null;
  const job = await deps.queue.getJob(planJobId(act.seq));
  if (job) {
    if ((await job.getState()) !== 'failed') return null;
    await job.retry('failed');
    deps.logger?.warn({ activation: act.seq }, 're-scan planning had failed; retried');
    return act.seq;
  }
  await enqueueRescanPlan(deps);
  deps.logger?.info({ activation: act.seq }, 're-scan planning queued for an activation that had none (Redis lost it, or a rollback made while it was down)');
  return act.seq;
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
  /** The rescan queue itself, which `plan` jobs add the re-scans to. */
  queue: Queue;
}

type RescanJob = Job<RescanPayload | PlanPayload>;

export function rescanProcessor(deps: Omit<RescanWorkerDeps, 'connection' | 'prefix'>) {
  return async (job: RescanJob): Promise<RescanResult | EnqueuedRescans> => {
    const p = job.data;
    try {
      if (job.name === PLAN_JOB) return await enqueueRescans({ pool: deps.pool, queue: deps.queue, settings: deps.settings, logger: deps.logger });
      return await rescanSbom({ pool: deps.pool, scanner: deps.scanner, logger: deps.logger, now: deps.now ?? (() => new Date()) }, p as RescanPayload);
    } catch (e) {
      const err = asOukError(e);
      const message = `${err.code}: ${err.message}`;
      const what = job.name === PLAN_JOB ? 're-scan planning attempt failed' : 're-scan attempt failed';
      deps.logger.warn({ sbom: (p as Partial<RescanPayload>).sbom, activation: p.activationSeq, attempt: job.attemptsMade + 1, error: message }, what);
      if (!err.retryable) throw new UnrecoverableError(message);
      throw new Error(message, { cause: e });
    }
  };
}

export function startRescanWorker(deps: RescanWorkerDeps): Worker<RescanPayload | PlanPayload, RescanResult | EnqueuedRescans> {
  const worker = new Worker<RescanPayload | PlanPayload, RescanResult | EnqueuedRescans>(RESCAN_QUEUE, rescanProcessor(deps), {
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
