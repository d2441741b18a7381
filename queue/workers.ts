/**
 * One BullMQ Worker per stage queue, each running the stage function from
 * functions/ with its I/O (store, pool, trusted keys, logger, progress).
 *
 * Failure policy: an OukError that is not retryable (a bad signature, a
 * hostile archive, a refused downgrade, a full disk) fails the job for good
 * with UnrecoverableError; anything else (store or database down, a crash) is
 * retried with the stage's backoff. An OukWait is no failure (a delta whose
 * base is still being imported): the job goes back to delayed for its
 * `waitMs`, the stage recorded `waiting`, and no attempt is counted. A final
 * failure is written to the import record (state 'failed', error_code, error),
 * which is what `stella ouk status` and the CLI's import follow. A final
 * refusal for integrity or policy (lib/quarantine.ts) then moves the kit
 * under quarantine/ in the bucket (functions/quarantine/quarantine.ts): never retried.
 *
 * activate runs one job at a time per worker, and the state row lock
 * serialises activations across workers. Once an activation committed, the
 * activate worker adds that activation's re-scan planning job (queue/rescan.ts:
 * one job, nothing read but the activation's number) and the activate job
 * ends: the planning, which may take minutes with many stored SBOMs and a
 * large delta, runs in its own job, so the import is active and its images
 * step starts right after the switch. Failing to add it (Redis gone that
 * instant) never fails the activation: the reconciler adds it on its next
 * pass. With a `scanner`, the process also runs the re-scan worker (its own
 * queue and concurrency).
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config, PipelineSettings } from '../lib/config.ts';
import { createLogger, withImport, type Logger } from '../lib/logger.ts';
import { createPool, type Pool } from '../infra/db.ts';
import { createStore, type ObjectStore } from '../infra/store.ts';
import { loadTrustedKeys, type TrustedKey } from '../signing/index.ts';
import { activate } from '../functions/activate.ts';
import { STAGES, type StageContext, type StageName, type StagePayload } from '../functions/context.ts';
import { load } from '../functions/load.ts';
import { beginStage, getImport, patchStage, stageFailed } from '../infra/import-records/index.ts';
import { quarantineImport, quarantines } from '../functions/quarantine/quarantine.ts';
import { QUARANTINE_CODES } from '../lib/quarantine.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { images } from '../functions/images.ts';
import { createRegistryClient, registryCredentials } from '../infra/registry.ts';
import { attachWorkerLogging, isFinalFailure } from './metrics-hooks.ts';
import { createRedis, redisTargetOf } from './connection.ts';
import { asOukError } from './errors.ts';
import { failureText, OukWait, type ErrorCode, type OukError } from '../lib/errors.ts';
import { failureReason } from '../lib/metrics.ts';
import { admitStageJob, isStagePayload } from './job-guard.ts';
import { RESCAN_QUEUE } from './queues.ts';
import { enqueueRescanPlan, startRescanWorker } from './rescan.ts';
import type { SbomScanner } from '../functions/sboms/rescan.ts';

export { asOukError };

type StageFn = (p: StagePayload, ctx: StageContext) => Promise<unknown>;
export const STAGE_FUNCTIONS: Record<StageName, StageFn> = { verify, unpack, load, activate, images };

export interface WorkerDeps {
  pool?: Pool;
  store?: ObjectStore;
  /** The process's pipeline settings (lib/config.ts pipelineSettings, parsed once by its entry point). */
  settings: PipelineSettings;
  logger?: Logger;
  connection?: Redis;
  trustedKeys?: () => Promise<TrustedKey[]>;
  /** Only these stages (default all): lets tests or deployments split stages across processes. */
  stages?: StageName[];
  now?: () => Date;
  /** Runs the re-scan worker of stored SBOMs with this scanner (the worker process passes scan/stored.ts's). */
  scanner?: SbomScanner;
}

export interface RunningWorkers {
  workers: Worker[];
  pool: Pool;
  store: ObjectStore;
  /** Waits for running jobs, then closes the workers and what startWorkers opened. */
  close(): Promise<void>;
}

type ProcessorBase = Omit<StageContext, 'progress' | 'attempt' | 'logger'> & {
  logger: Logger;
  /** Called after an activate job's activation is committed (or found done): adds the re-scan planning job. */
  afterActivate?: (logger: Logger) => Promise<void>;
};

/**
 * What a stage job throws: BullMQ keeps only a message (`CODE: message`, made by
 * failureText, for other processes and the dashboard), and in this process the
 * code travels as a field of the error (`code`), which the failed-event hooks
 * (metrics, quarantine) read first. A failure that is not retryable is an
 * UnrecoverableError: BullMQ does not try that job again.
 */
function jobFailure(err: OukError, cause: unknown): Error {
  const text = failureText(err);
  const thrown = err.retryable ? new Error(text, { cause }) : new UnrecoverableError(text);
  return Object.assign(thrown, { code: err.code });
}

export function stageProcessor(stage: StageName, base: ProcessorBase) {
  const fn = STAGE_FUNCTIONS[stage];
  return async (job: Job<StagePayload>, token?: string): Promise<unknown> => {
    // A job from outside the pipeline (the dashboard's Add job, `data: null`, a stage out of order)
    // fails for good as JOB_INVALID here, before the import record is touched (queue/job-guard.ts).
    const p = await admitStageJob(base.pool, job.data, stage).catch((e: unknown) => {
      throw jobFailure(asOukError(e), e);
    });
    const attempt = { number: job.attemptsMade + 1, max: job.opts.attempts ?? 1 };
    const logger = withImport(base.logger, p.importId, { stage, jobId: job.id, attempt: attempt.number });
    const start = await beginStage(base.pool, p.importId, stage, attempt.number, base.now());
    if (start.replay) {
      // The record says this stage is done: whoever replays it, nothing is redone.
      logger.info('stage already done: the replay changes nothing');
      if (stage === 'activate') await base.afterActivate?.(logger);
      return start.result;
    }
    const ctx: StageContext = {
      ...base,
      logger,
      attempt,
      progress: (pr) => {
        job.updateProgress({ ...pr }).catch(() => undefined);
      },
    };
    try {
      const result = await fn(p, ctx);
      if (stage === 'activate') await base.afterActivate?.(logger);
      return result;
    } catch (e) {
      if (e instanceof OukWait && token) {
        // Not a failure (a delta's base still on its way): run again later, counting no attempt.
        await patchStage(base.pool, p.importId, stage, { state: 'waiting', code: null, error: e.message });
        logger.info({ waitMs: e.waitMs, why: e.message }, 'stage waits');
        await job.moveToDelayed(Date.now() + e.waitMs, token);
        throw new DelayedError();
      }
      const err = asOukError(e);
      const final = !err.retryable || attempt.number >= attempt.max;
      await stageFailed(base.pool, p.importId, stage, err.code, err.message, final).catch((dbErr: unknown) => logger.error({ err: dbErr }, 'could not record the stage failure'));
      throw jobFailure(err, e);
    }
  };
}

/** Quarantines the import's kit when its recorded refusal quarantines (lib/quarantine.ts); a failure is logged, the reconciler finishes it. */
async function quarantineIfRefused(base: Pick<ProcessorBase, 'pool' | 'store' | 'now'>, importId: string, logger: Logger): Promise<void> {
  try {
    const rec = await getImport(base.pool, importId);
    if (!rec || !(await quarantines(base.pool, rec))) return;
    await quarantineImport({ pool: base.pool, store: base.store, now: base.now, logger }, importId);
  } catch (e) {
    logger.warn({ err: e }, 'could not quarantine the refused kit now; the reconciler finishes it on its next pass');
  }
}

export function startWorkers(config: Config, deps: WorkerDeps): RunningWorkers {
  const { settings } = deps;
  const logger = deps.logger ?? createLogger('worker');
  const ownPool = !deps.pool;
  const pool = deps.pool ?? createPool(config.databaseUrl);
  const store = deps.store ?? createStore(config.store);
  const ownConnection = !deps.connection;
  const connection = deps.connection ?? createRedis(redisTargetOf(config));
  const trustedKeys = deps.trustedKeys ?? (() => loadTrustedKeys(config.trustedKeys));
  const registry = config.registryUrl ? { client: createRegistryClient(config.registryUrl, registryCredentials(config.registryAccount)), prefix: config.registryPrefix } : null;
  const rescanQueue = new Queue(RESCAN_QUEUE, { connection, prefix: config.queuePrefix });
  rescanQueue.on('error', () => undefined);
  const afterActivate = async (log: Logger): Promise<void> => {
    await enqueueRescanPlan({ pool, queue: rescanQueue, settings, logger: log }).catch((err: unknown) =>
      log.warn({ err }, 'could not add the re-scan planning of stored SBOMs; the reconciler adds it on its next pass'),
    );
  };
  const base = { store, pool, config, trustedKeys, logger, registry, now: deps.now ?? (() => new Date()), afterActivate };

  const workers: Worker[] = [];
  const detach: Array<() => void> = [];
  /** quarantine moves under way (close waits for them) */
  const quarantining = new Set<Promise<void>>();
  for (const stage of deps.stages ?? STAGES) {
    const worker = new Worker<StagePayload>(stage, stageProcessor(stage, base), {
      connection,
      prefix: config.queuePrefix,
      concurrency: stage === 'activate' ? 1 : settings.concurrency,
      lockDuration: settings.lockMs,
      stalledInterval: settings.stalledMs,
      maxStalledCount: 2,
    });
    worker.on('error', (err) => logger.error({ err, stage }, 'worker error'));
    // A refusal for integrity or policy moves the kit under quarantine/ (never retried), once the job
    // has failed; if the move fails half-way (the store down), the reconciler's next pass finishes it.
    worker.on('failed', (job, err) => {
      if (!job || !isStagePayload(job.data, stage) || !QUARANTINE_CODES.has(failureReason(err) as ErrorCode)) return;
      const moving = quarantineIfRefused(base, job.data.importId, withImport(logger, job.data.importId, { stage })).finally(() => quarantining.delete(moving));
      quarantining.add(moving);
    });
    // A job that failed without reaching the processor's catch (stalled too often): record it too.
    worker.on('failed', (job, err) => {
      if (!job || !/stalled/i.test(err.message) || !isFinalFailure(job, err) || !isStagePayload(job.data, stage)) return;
      stageFailed(pool, job.data.importId, stage, 'IMPORT_FAILED', `the ${stage} worker died repeatedly (${err.message}): run \`stella ouk retry ${job.data.importId}\``, true).catch(() => undefined);
    });
    detach.push(attachWorkerLogging(worker, logger));
    workers.push(worker);
  }
  if (deps.scanner) {
    const rescanWorker = startRescanWorker({ connection, prefix: config.queuePrefix, pool, scanner: deps.scanner, settings, logger, now: deps.now, queue: rescanQueue });
    workers.push(rescanWorker);
  }
  logger.info({ stages: deps.stages ?? STAGES, prefix: config.queuePrefix, concurrency: settings.concurrency, rescan: deps.scanner ? settings.rescanConcurrency : 0 }, 'pipeline workers started');

  let closing: Promise<void> | null = null;
  return {
    workers,
    pool,
    store,
    close() {
      closing ??= (async () => {
        await Promise.all(workers.map((w) => w.close()));
        await Promise.all([...quarantining]);
        await rescanQueue.close().catch(() => undefined);
        for (const d of detach) d();
        if (ownConnection) connection.disconnect();
        if (ownPool) await pool.end();
      })();
      return closing;
    },
  };
}
