/**
 * The publisher worker (`npm run publisher`, cli/publisher-main.ts): a BullMQ
 * job scheduler on the `ouk-publish` queue (`OUK_PUBLISH_SCHEDULE`: an
 * interval or a cron pattern) makes one `nightly` job per period for the
 * whole cluster, however many publisher processes run; each job is the sync
 * then the publish (nightly.ts). One at a time in the cluster: the queue's
 * global concurrency is 1 and each worker's concurrency 1, and the mirror's
 * lock (publish/lock.ts) keeps out anything else writing it. A job has a
 * deadline (`OUK_PUBLISH_DEADLINE_SECONDS`): past it the job fails, and the
 * run it started — still holding the mirror's lock — ends on its own; a
 * failed job is not retried (the next period runs again). `close()` (the
 * main's SIGTERM) stops taking jobs and lets the running one finish.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { OukError } from '../lib/errors.ts';

export const PUBLISH_QUEUE = 'ouk-publish';
export const NIGHTLY_JOB = 'nightly';

export type PublishSchedule = { every: number } | { pattern: string };

export interface PublisherWorkerOptions {
  connection: ConnectionOptions;
  prefix?: string;
  schedule: PublishSchedule;
  deadlineMs: number;
  /** One job's work (runNightly with the process's settings); its result is the job's return value. */
  run(job: Job): Promise<unknown>;
  onEvent?(e: { kind: 'completed' | 'failed'; jobId: string | undefined; result?: unknown; error?: Error }): void;
}

export interface PublisherWorker {
  queue: Queue;
  worker: Worker;
  close(): Promise<void>;
}

function withDeadline<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new OukError('PUBLISH_DEADLINE', `the nightly publish job reached its deadline of ${Math.round(ms / 1000)} s (OUK_PUBLISH_DEADLINE_SECONDS): the run it started ends on its own and keeps the mirror locked until then; the next period runs again`)),
      ms,
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export async function startPublisherWorker(o: PublisherWorkerOptions): Promise<PublisherWorker> {
  const queue = new Queue(PUBLISH_QUEUE, { connection: o.connection, prefix: o.prefix });
  await queue.setGlobalConcurrency(1);
  await queue.upsertJobScheduler(NIGHTLY_JOB, o.schedule, { name: NIGHTLY_JOB, opts: { attempts: 1, removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } } });
  const worker = new Worker(PUBLISH_QUEUE, (job) => withDeadline(o.deadlineMs, o.run(job)), {
    connection: o.connection,
    prefix: o.prefix,
    concurrency: 1,
    // A publish holds its job for minutes: renew the lock well within that.
    lockDuration: 60_000,
  });
  worker.on('completed', (job, result) => o.onEvent?.({ kind: 'completed', jobId: job.id, result }));
  worker.on('failed', (job, error) => o.onEvent?.({ kind: 'failed', jobId: job?.id, error }));
  worker.on('error', () => undefined); // a connection blip: BullMQ reconnects
  return {
    queue,
    worker,
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
