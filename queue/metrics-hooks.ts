/**
 * Where the pipeline's metrics and per-import log lines come from, without
 * touching the stage code.
 *
 * Workers usually run in their own processes (queue/worker-main.ts), the API
 * in another, and Prometheus scrapes the API's /metrics. So the metrics are fed
 * in the API process from BullMQ's own event stream in Redis (QueueEvents),
 * which sees every worker on every host exactly once:
 *
 *   const watcher = await watchQueueMetrics({ connection, prefix, queues, pool, logger });
 *   ... await watcher.close();
 *
 * completed → ouk_import_stage_duration_seconds{stage} (the job's finishedOn − processedOn),
 *             ouk_imports_activated_total for the activate stage;
 * failed    → ouk_import_stage_failures_total{stage,reason} (BullMQ emits it once the
 *             attempts are used up, or for an unrecoverable error);
 * delayed   → ouk_import_stage_retries_total{stage,reason} when a failed attempt waits
 *             for its backoff (not a stage recorded `waiting`: a delta for its base);
 * stalled   → ouk_import_stage_stalls_total{stage} (a worker died or hung mid-job).
 * With the periodic queues given (queue/maintenance.ts): the `mirror` jobs' ends feed the
 * ouk_mirror_* meters, a reconciler pass's step errors ouk_reconcile_step_errors_total{step},
 * and a reconcile or gc job that failed (its deadline included) ouk_maintenance_failures_total{job}.
 * The `rescan` queue (stored SBOMs, queue/rescan.ts), when given, feeds its own meters:
 * completed → ouk_rescans_total{outcome}, ouk_rescan_new_findings_total{severity}
 *             (CRITICAL, HIGH), ouk_rescan_duration_seconds, from the job's return value.
 * The reason is the error code: read from the failure message when it starts with one,
 * else from the import record (its stage's code, then its error code).
 *
 * On the worker side, `attachWorkerLogging(worker, logger)` logs each stage's end
 * with the import id (and the error code, which only the worker still has).
 */
import { Queue, QueueEvents, type ConnectionOptions, type Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from '../infra/db.ts';
import { stageErrorCode, stageState } from '../infra/import-records/index.ts';
import type { StageName } from '../lib/stages.ts';
import { importIdOfJobId } from '../lib/storage-names.ts';
import type { Logger } from '../lib/logger.ts';
import { withImport } from '../lib/logger.ts';
import {
  countActivated,
  countFailure,
  countMaintenanceFailure,
  countMirrorPull,
  countReconcile,
  countRescan,
  countStall,
  failureReason,
  observeStage,
  type MirrorRoundSummary,
} from '../lib/metrics.ts';
import { RESCAN_QUEUE, type PipelineQueues } from './queues.ts';

/** The import id of a stage job: `data.importId`, else the job id without its `-<stage>` suffix. */
export function importIdOf(job: Pick<Job, 'id' | 'data' | 'queueName'>): string {
  const data = job.data as { importId?: unknown } | undefined;
  if (data && typeof data.importId === 'string') return data.importId;
  return importIdFromJobId(job.id ?? '', job.queueName);
}

/** The import of a stage's job id (lib/storage-names.ts), else the id itself. */
export function importIdFromJobId(jobId: string, stage: string): string {
  return importIdOfJobId(jobId, stage) ?? jobId;
}

/** Seconds the last attempt ran, or null when the timestamps are missing. */
export function runSeconds(job: Pick<Job, 'processedOn' | 'finishedOn'>): number | null {
  if (!job.processedOn || !job.finishedOn || job.finishedOn < job.processedOn) return null;
  return (job.finishedOn - job.processedOn) / 1000;
}

/** Whether this failure is the last one (no retry coming). Call after BullMQ counted the attempt. */
export function isFinalFailure(job: Pick<Job, 'attemptsMade' | 'opts'>, err: Error): boolean {
  if (err.name === 'UnrecoverableError') return true;
  return job.attemptsMade >= (job.opts.attempts ?? 1);
}

/** Worker side: one log line per finished stage attempt, carrying importId and stage. */
export function attachWorkerLogging(worker: Worker, logger: Logger): () => void {
  const onCompleted = (job: Job): void => {
    withImport(logger, importIdOf(job), { stage: job.queueName }).info(
      { jobId: job.id, attempts: job.attemptsMade, seconds: runSeconds(job) },
      'stage completed',
    );
  };
  const onFailed = (job: Job | undefined, err: Error): void => {
    if (!job) {
      logger.error({ err }, 'a job failed before it could be read');
      return;
    }
    const log = withImport(logger, importIdOf(job), { stage: job.queueName });
    const fields = { jobId: job.id, reason: failureReason(err), attempts: job.attemptsMade, maxAttempts: job.opts.attempts ?? 1, error: err.message };
    if (isFinalFailure(job, err)) log.error(fields, 'stage failed; fix the cause, then retry it from the dashboard or with `stella ouk retry`');
    else log.warn(fields, 'stage attempt failed; BullMQ will retry it');
  };
  worker.on('completed', onCompleted);
  worker.on('failed', onFailed);
  return () => {
    worker.off('completed', onCompleted);
    worker.off('failed', onFailed);
  };
}

export interface WatchOptions {
  /** Connection options for the QueueEvents' own blocking connections. */
  connection: ConnectionOptions;
  prefix: string;
  /** Queues to read finished jobs from (one per stage; the dashboard's queues do). */
  queues: Queue[];
  /** Import records, to name the reason of a failure whose message carries no code. */
  pool?: Pool;
  /** The periodic jobs' queues: mirror rounds feed ouk_mirror_*, reconcile and gc the maintenance meters. */
  periodic?: Pick<PipelineQueues, 'reconcile' | 'maintenance' | 'mirror'>;
  logger?: Logger;
}

export interface QueueMetricsWatcher {
  /** Resolves when every QueueEvents listens (events before that are not seen). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

// The pipeline's queues are named after their stage (queue/queues.ts).
async function reasonFromRecord(pool: Pool, importId: string, stage: string): Promise<string | null> {
  return stageErrorCode(pool, importId, stage as StageName);
}

/** Whether the import record says this stage waits (functions/verify.ts: a delta for its base), which is no retry. */
async function stageWaits(pool: Pool, importId: string, stage: string): Promise<boolean> {
  return (await stageState(pool, importId, stage as StageName)) === 'waiting';
}

/**
 * The id of the newest entry of a queue's event stream ('0-0' when empty).
 * Reading from there misses nothing that happens after this call, and — unlike
 * an id made from this host's clock — does not depend on the host's clock
 * agreeing with Redis's (stream ids carry the Redis server's time).
 */
async function eventStreamTail(queue: Queue): Promise<string> {
  // BullMQ's client forwards commands it does not wrap to the ioredis connection.
  const client = (await queue.getBackend().client) as unknown as Pick<Redis, 'xrevrange'>;
  const last = await client.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
  return last[0]?.[0] ?? '0-0';
}

/** A re-scan job's return value (functions/sboms/rescan.ts RescanResult), as the event carries it (JSON text or parsed). */
function rescanReturn(v: unknown): { outcome: string; newBySeverity: Record<string, number>; seconds: number } | null {
  let x: unknown = v;
  if (typeof v === 'string') {
    try {
      x = JSON.parse(v);
    } catch {
      return null;
    }
  }
  if (!x || typeof x !== 'object') return null;
  const r = x as { outcome?: unknown; newBySeverity?: unknown; seconds?: unknown };
  if (typeof r.outcome !== 'string') return null;
  const counts = r.newBySeverity && typeof r.newBySeverity === 'object' ? (r.newBySeverity as Record<string, number>) : {};
  return { outcome: r.outcome, newBySeverity: counts, seconds: typeof r.seconds === 'number' ? r.seconds : NaN };
}

export async function watchQueueMetrics(opts: WatchOptions): Promise<QueueMetricsWatcher> {
  const watchers: QueueEvents[] = [];
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  const reasonOf = async (message: string, importId: string, stage: string): Promise<string> => {
    const parsed = failureReason(new Error(message));
    if (parsed !== 'INTERNAL' || !opts.pool) return parsed;
    // The worker records the failure in the import record; give it a moment when the event wins the race.
    for (let i = 0; i < 3; i++) {
      const code = await reasonFromRecord(opts.pool, importId, stage).catch(() => null);
      if (code) return code;
      await new Promise((r) => setTimeout(r, 100));
    }
    return parsed;
  };

  for (const queue of opts.queues) {
    const stage = queue.name;
    // Read from the stream's current end (not from the first blocking read): nothing finishing after this call is missed.
    const events = new QueueEvents(stage, { connection: opts.connection, prefix: opts.prefix, lastEventId: await eventStreamTail(queue) });
    events.on('error', (err) => opts.logger?.warn({ err, stage }, 'metrics: queue events connection error'));
    if (stage === RESCAN_QUEUE) {
      events.on('completed', ({ returnvalue }) => {
        const r = rescanReturn(returnvalue);
        if (r) countRescan(r);
      });
      watchers.push(events);
      continue;
    }
    events.on('completed', ({ jobId }) =>
      track(
        (async () => {
          const job = await queue.getJob(jobId);
          const seconds = job ? runSeconds(job) : null;
          if (seconds !== null) observeStage(stage, seconds);
          if (stage === 'activate') countActivated();
        })().catch((err) => opts.logger?.warn({ err, jobId, stage }, 'metrics: could not read a completed job')),
      ),
    );
    events.on('failed', ({ jobId, failedReason }) =>
      track(
        (async () => {
          countFailure(stage, await reasonOf(failedReason ?? '', importIdFromJobId(jobId, stage), stage), true);
        })().catch((err) => opts.logger?.warn({ err, jobId, stage }, 'metrics: could not count a failure')),
      ),
    );
    events.on('stalled', ({ jobId }) => {
      countStall(stage);
      opts.logger?.warn({ importId: importIdFromJobId(jobId, stage), stage }, 'a stage job stalled (its worker died or hung): it runs again');
    });
    events.on('delayed', ({ jobId }) =>
      track(
        (async () => {
          const job = await queue.getJob(jobId);
          // a failed attempt waiting for its backoff (not a job added with a delay, nor a stage that waits: a delta for its base)
          if (!job || !job.failedReason || job.attemptsMade < 1) return;
          if (opts.pool && (await stageWaits(opts.pool, importIdFromJobId(jobId, stage), stage))) return;
          countFailure(stage, await reasonOf(job.failedReason, importIdFromJobId(jobId, stage), stage), false);
        })().catch((err) => opts.logger?.warn({ err, jobId, stage }, 'metrics: could not count a retry')),
      ),
    );
    watchers.push(events);
  }

  if (opts.periodic) {
    watchers.push(await watchMirrorJobs(opts.periodic.mirror, opts, track));
    watchers.push(await watchPeriodicJobs(opts.periodic.reconcile, opts, track));
    watchers.push(await watchPeriodicJobs(opts.periodic.maintenance, opts, track));
  }

  return {
    ready: async () => {
      await Promise.all(watchers.map((w) => w.waitUntilReady()));
    },
    close: async () => {
      await Promise.all(watchers.map((w) => w.close()));
      await Promise.allSettled([...pending]);
    },
  };
}

function isRoundSummary(v: unknown): v is MirrorRoundSummary {
  return typeof v === 'object' && v !== null && typeof (v as { done?: unknown }).done === 'boolean' && Array.isArray((v as { applied?: unknown }).applied);
}

/** A reconciler pass's step errors (queue/reconciler.ts ReconcileResult.errors), as the job kept them. */
function stepErrors(v: unknown): Array<{ step: string }> {
  const errors = (v as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) ? errors.filter((e): e is { step: string } => typeof (e as { step?: unknown } | null)?.step === 'string') : [];
}

/** The ends of the reconcile and gc jobs → ouk_reconcile_step_errors_total, ouk_maintenance_failures_total. */
async function watchPeriodicJobs(queue: Queue, opts: WatchOptions, track: (p: Promise<void>) => void): Promise<QueueEvents> {
  const events = new QueueEvents(queue.name, { connection: opts.connection, prefix: opts.prefix, lastEventId: await eventStreamTail(queue) });
  events.on('error', (err) => opts.logger?.warn({ err, queue: queue.name }, 'metrics: queue events connection error'));
  events.on('completed', ({ jobId }) =>
    track(
      (async () => {
        const job = await queue.getJob(jobId);
        if (job?.name === 'reconcile') countReconcile(stepErrors(job.returnvalue));
      })().catch((err) => opts.logger?.warn({ err, jobId }, 'metrics: could not read a reconcile job')),
    ),
  );
  events.on('failed', ({ jobId }) =>
    track(
      (async () => {
        const job = await queue.getJob(jobId);
        if (job?.name === 'reconcile' || job?.name === 'gc') countMaintenanceFailure(job.name);
      })().catch((err) => opts.logger?.warn({ err, jobId }, 'metrics: could not count a maintenance failure')),
    ),
  );
  return events;
}

/** The ends of the mirror queue's jobs → ouk_mirror_*. */
async function watchMirrorJobs(queue: Queue, opts: WatchOptions, track: (p: Promise<void>) => void): Promise<QueueEvents> {
  const events = new QueueEvents(queue.name, { connection: opts.connection, prefix: opts.prefix, lastEventId: await eventStreamTail(queue) });
  events.on('error', (err) => opts.logger?.warn({ err, queue: queue.name }, 'metrics: queue events connection error'));
  events.on('completed', ({ jobId }) =>
    track(
      (async () => {
        const job = await queue.getJob(jobId);
        if (job?.name !== 'mirror' || !isRoundSummary(job.returnvalue)) return;
        countMirrorPull(job.returnvalue, undefined, new Date(job.finishedOn ?? Date.now()));
      })().catch((err) => opts.logger?.warn({ err, jobId }, 'metrics: could not read a mirror job')),
    ),
  );
  events.on('failed', ({ jobId, failedReason }) =>
    track(
      (async () => {
        const job = await queue.getJob(jobId);
        if (job?.name !== 'mirror') return;
        countMirrorPull(null, new Error(failedReason ?? ''));
      })().catch((err) => opts.logger?.warn({ err, jobId }, 'metrics: could not count a mirror failure')),
    ),
  );
  return events;
}
