/**
 * Retry an import from the stage that failed (`stella ouk retry ID`, and the
 * ingest path when new flags lift a refusal). The failed stage's BullMQ job is
 * moved back to wait with `job.retry('failed')`; its parent, which waited in
 * `waiting-children`, then resumes the chain. Stages are idempotent, so a
 * retried stage first cleans any half-done work of its own.
 *
 * When the jobs are no longer in Redis (expired, or Redis was flushed), the flow
 * is added again: stages already done return at once from their records.
 */
import type { Job } from 'bullmq';
import { OukError } from '../lib/errors.ts';
import { STAGES, type StageName } from '../functions/context.ts';
import { patchStage, requireImport } from '../infra/import-records.ts';
import { jobIdFor } from './identity.ts';
import { addImportFlow, type FlowDeps } from './flow.ts';

export interface RetryResult {
  importId: string;
  /** The stage retried, or null when the whole flow was added again. */
  stage: StageName | null;
  mode: 'job-retry' | 'new-flow';
}

async function failedJob(deps: FlowDeps, importId: string): Promise<{ stage: StageName; job: Job } | null> {
  for (const stage of STAGES) {
    const job = await deps.queues.queues[stage].getJob(jobIdFor(importId, stage));
    if (job && (await job.getState()) === 'failed') return { stage, job };
  }
  return null;
}

export async function retryImport(deps: FlowDeps, importId: string): Promise<RetryResult> {
  const rec = await requireImport(deps.pool, importId);
  const found = await failedJob(deps, importId);
  if (found) {
    await patchStage(deps.pool, importId, found.stage, { state: 'retrying', code: null, error: null });
    await deps.pool.query(`UPDATE ouk_meta.imports SET state = 'queued', error_code = NULL, error = NULL, updated_at = now() WHERE id = $1 AND state = 'failed'`, [importId]);
    await found.job.retry('failed');
    deps.logger?.info({ importId, stage: found.stage }, 'failed stage retried');
    return { importId, stage: found.stage, mode: 'job-retry' };
  }
  if (rec.state !== 'failed') {
    throw new OukError('NOTHING_TO_RETRY', `import ${importId} has no failed stage (it is ${rec.state}): nothing to retry`);
  }
  // The failed job is gone from Redis: remove what is left of the flow and add it again.
  for (const stage of [...STAGES].reverse()) {
    const job = await deps.queues.queues[stage].getJob(jobIdFor(importId, stage));
    if (job) await job.remove({ removeChildren: true }).catch(() => undefined);
  }
  await deps.pool.query(`UPDATE ouk_meta.imports SET state = 'queued', error_code = NULL, error = NULL, updated_at = now() WHERE id = $1`, [importId]);
  await addImportFlow(deps, rec);
  deps.logger?.info({ importId }, 'import flow added again (its jobs were no longer in Redis)');
  return { importId, stage: null, mode: 'new-flow' };
}
