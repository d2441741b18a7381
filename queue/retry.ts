/**
 * Retry an import from the first stage its record does not say is done
 * (`stella ouk retry ID`, and the ingest path when new flags lift a refusal).
 *
 * When that stage's job is in Redis as failed and the rest of its flow waits
 * for it, BullMQ resumes the chain itself: `job.retry('failed')`. Otherwise
 * (the jobs expired, Redis was wiped or restored, the import was stranded
 * mid-stage) the flow is re-created from that stage (queue/resume.ts). Stages
 * already done never run again.
 *
 * A stage repaired outside its job (the images step by `stella ouk images
 * --push`) is done in the record while BullMQ still keeps its job as failed:
 * `clearRepairedFailures` removes that job, so the failure it showed is over
 * everywhere (`stella ouk jobs --failed`, ouk_queue_jobs, the dashboard).
 */
import { OukError } from '../lib/errors.ts';
import { STAGES, type StageName } from '../functions/context.ts';
import { patchStage, requireImport, stageIsDone } from '../infra/import-records.ts';
import type { FlowDeps } from './flow.ts';
import { anyLive, jobsOf, resumeFrom, resumeImport } from './resume.ts';

export interface RetryResult {
  importId: string;
  /** The stage the import resumes from. */
  stage: StageName;
  mode: 'job-retry' | 'new-flow';
}

export async function retryImport(deps: FlowDeps, importId: string): Promise<RetryResult> {
  const rec = await requireImport(deps.pool, importId);
  if (rec.state === 'quarantined' || rec.state === 'removed') {
    throw new OukError(
      'NOTHING_TO_RETRY',
      `import ${importId} is ${rec.state} (${rec.quarantineCode ?? rec.errorCode}): a kit refused for integrity or policy is never retried — \`stella ouk quarantine show ${importId}\` says why; \`stella ouk quarantine release ${importId}\` verifies it again once the cause is fixed`,
    );
  }
  const from = resumeFrom(rec);
  if (!from) {
    throw new OukError('NOTHING_TO_RETRY', `import ${importId} is ${rec.state}: every stage is done, nothing to retry`);
  }
  const jobs = await jobsOf(deps, importId);
  const remaining = STAGES.slice(STAGES.indexOf(from));
  const next = remaining[1];
  const failed = jobs[from]?.state === 'failed' ? jobs[from] : null;
  const chainWaits = !next || jobs[next]?.state === 'waiting-children';
  const liveElsewhere = anyLive(jobs, remaining);
  if (!failed && liveElsewhere && rec.state !== 'failed') {
    throw new OukError('NOTHING_TO_RETRY', `import ${importId} is ${rec.state} and its ${from} stage is ${jobs[from]?.state ?? 'queued'}: it is still running, nothing to retry`);
  }

  await patchStage(deps.pool, importId, from, { state: 'retrying', code: null, error: null });
  await deps.pool.query(`UPDATE ouk_meta.imports SET state = 'queued', error_code = NULL, error = NULL, updated_at = now() WHERE id = $1 AND state NOT IN ('active', 'superseded', 'rolled-back')`, [importId]);
  if (failed && chainWaits) {
    await failed.job.retry('failed');
    deps.logger?.info({ importId, stage: from }, 'failed stage retried');
    return { importId, stage: from, mode: 'job-retry' };
  }
  const out = await resumeImport(deps, { ...rec, state: 'queued' });
  if (!out.resumed && out.reason !== 'live') {
    throw new OukError('NOTHING_TO_RETRY', `import ${importId} could not be resumed (${out.reason}): try again in a moment`, { retryable: true });
  }
  deps.logger?.info({ importId, from }, 'import flow re-created from its first stage not done');
  return { importId, stage: from, mode: 'new-flow' };
}

/**
 * `stella ouk import --allow-downgrade` of a kit that was active before and has
 * since been superseded or rolled back: the operator asks for it to be the
 * active DB again. Its activate stage (and its load, when cleanup dropped the
 * loaded DB) runs again with downgrades allowed. A delta cannot come back
 * this way: it applies only on its own base.
 */
export async function reactivateImport(deps: FlowDeps, importId: string): Promise<RetryResult> {
  const rec = await requireImport(deps.pool, importId);
  if (rec.state !== 'superseded' && rec.state !== 'rolled-back') {
    throw new OukError('NOTHING_TO_RETRY', `import ${importId} is ${rec.state}: only a superseded or rolled-back import can be activated again`);
  }
  if (rec.kind !== 'full') {
    throw new OukError('DELTA_BASE_MISMATCH', `import ${importId} is a delta (${rec.version}): it applies only on its base — import the full kit of the version you want instead`);
  }
  const loaded = rec.schemaName ? (await deps.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [rec.schemaName])).rowCount : 0;
  const from: StageName = loaded ? 'activate' : 'load';
  for (const s of STAGES.slice(STAGES.indexOf(from))) await patchStage(deps.pool, importId, s, { state: 'retrying', code: null, error: null, result: null });
  await deps.pool.query(`UPDATE ouk_meta.imports SET state = 'queued', allow_downgrade = true, error_code = NULL, error = NULL, updated_at = now() WHERE id = $1`, [importId]);
  const out = await resumeImport(deps, { ...rec, state: 'queued', stages: { ...rec.stages, ...Object.fromEntries(STAGES.slice(STAGES.indexOf(from)).map((s) => [s, { state: 'retrying' }])) } });
  if (!out.resumed && out.reason !== 'live') throw new OukError('NOTHING_TO_RETRY', `import ${importId} could not be re-activated (${out.reason}): try again in a moment`, { retryable: true });
  deps.logger?.info({ importId, from }, 're-activating a superseded import at the operator\'s request');
  return { importId, stage: from, mode: 'new-flow' };
}

/**
 * Removes the failed jobs of this import's stages that its record says are
 * done (repaired outside the queue: `stella ouk images --push`); returns the
 * stages cleared. The jobs' completed children stay, for the dashboard.
 */
export async function clearRepairedFailures(deps: Pick<FlowDeps, 'pool' | 'queues' | 'logger'>, importId: string): Promise<StageName[]> {
  const rec = await requireImport(deps.pool, importId);
  const jobs = await jobsOf(deps, importId);
  const cleared: StageName[] = [];
  for (const stage of STAGES) {
    const j = jobs[stage];
    if (!stageIsDone(rec, stage) || j?.state !== 'failed') continue;
    await j.job.remove({ removeChildren: false });
    cleared.push(stage);
  }
  if (cleared.length) deps.logger?.info({ importId, stages: cleared }, 'failed jobs of stages since repaired removed');
  return cleared;
}
