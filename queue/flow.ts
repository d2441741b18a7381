/**
 * The BullMQ flow of one import: images ← activate ← load ← unpack ← verify (a flow
 * runs the deepest child first), job ids `<import id>-<stage>`, each stage's
 * attempts and backoff from the pipeline settings. Ingest, retry and the
 * reconciler all add flows through here.
 */
import type { FlowJob, JobsOptions } from 'bullmq';
import type { Pool } from '../infra/db.ts';
import { markFlowAdded, type ImportRecord } from '../infra/import-records/index.ts';
import type { Logger } from '../lib/logger.ts';
import { STAGES, type StageName, type StagePayload } from '../functions/context.ts';
import { jobIdFor } from './identity.ts';
import type { PipelineQueues } from './queues.ts';
import type { PipelineSettings } from '../lib/config.ts';

export interface FlowDeps {
  pool: Pool;
  queues: PipelineQueues;
  settings: PipelineSettings;
  logger?: Logger;
}

/** stella ouk import --allow-downgrade / --force, stored on the import record. */
export interface ImportFlags {
  allowDowngrade?: boolean;
  force?: boolean;
}

/** Codes a flag can lift: a refusal with one of these is retried when the flag arrives. */
export const LIFTED_BY: Record<string, keyof ImportFlags> = { DOWNGRADE_REFUSED: 'allowDowngrade', BUNDLE_EXPIRED: 'force' };

export function stageJobOptions(settings: PipelineSettings, importId: string, stage: StageName): JobsOptions {
  return {
    jobId: jobIdFor(importId, stage),
    attempts: settings.attempts[stage],
    backoff: { type: 'exponential', delay: settings.backoffMs[stage] },
    removeOnComplete: { age: settings.keepCompletedSeconds },
    removeOnFail: { age: settings.keepFailedSeconds },
  };
}

/**
 * The flow tree from `from` (default the first stage) to the last stage
 * (STAGES order), at the root: images ← activate ← load ← unpack ← verify
 * (children run first).
 */
export function importFlow(payload: StagePayload, settings: PipelineSettings, from: StageName = STAGES[0]): FlowJob {
  const chain = STAGES.slice(STAGES.indexOf(from));
  let tree: FlowJob | null = null;
  for (const stage of chain) {
    tree = { name: stage, queueName: stage, data: payload, opts: stageJobOptions(settings, payload.importId, stage), ...(tree ? { children: [tree] } : {}) };
  }
  return tree!;
}

/** Adds the import's flow (from `from`, default the first stage) and marks the record; safe to repeat (same job ids). */
export async function addImportFlow(deps: FlowDeps, record: Pick<ImportRecord, 'id' | 'bucket' | 'objectKey' | 'etag'>, from: StageName = STAGES[0]): Promise<void> {
  const payload: StagePayload = { importId: record.id, bucket: record.bucket, key: record.objectKey, etag: record.etag };
  await deps.queues.flows.add(importFlow(payload, deps.settings, from));
  await markFlowAdded(deps.pool, record.id);
}

