/**
 * What a stage job must be before its stage runs or touches the import record.
 *
 * Stage jobs normally come from the pipeline's own flows (queue/flow.ts), but
 * the dashboard (bull-board's "Add job" and "Edit data"), a script or anyone
 * with Redis access can hand a worker any job. Such a job is outside input:
 *
 *   - its data must be a stage payload: an object with `importId` (24 hex),
 *     `bucket`, `key` and `etag` (non-empty strings of bounded length) —
 *     `data: null` is JOB_INVALID, not a TypeError inside a stage;
 *   - it must name an import on record, for that import's own object
 *     (bucket, key and ETag as recorded);
 *   - the stage before it must be done (verify before unpack, …, activate
 *     before images): a load added for an import that failed verify with
 *     BUNDLE_EXPIRED would otherwise mark the import running, fail on its own
 *     check, and overwrite the recorded BUNDLE_EXPIRED with its own code.
 *
 * Each refusal is OukError JOB_INVALID (not retryable), thrown before the
 * record is touched: the job fails for good and the import's recorded state,
 * code and message stay as they were. A failed import resumes with `stella
 * ouk retry ID` (or Retry on its failed job in the dashboard), never with a
 * job added by hand.
 */
import type { StageName, StagePayload } from '../functions/context.ts';
import type { Pool } from '../infra/db.ts';
import { getImport } from '../infra/import-records/index.ts';
import { normaliseEtag } from '../infra/store.ts';
import { OukError } from '../lib/errors.ts';
import { STAGES } from '../lib/stages.ts';
import { excerpt } from '../lib/terminal-text.ts';

/** Longest bucket, key or ETag a payload may carry (S3 keys are at most 1,024 bytes). */
const MAX_FIELD = 1024;

const invalid = (stage: StageName, why: string): OukError =>
  new OukError('JOB_INVALID', `this ${stage} job was not made by the pipeline: ${why}; the job is failed for good and no import record is changed — resume an import with \`stella ouk retry ID\` (or Retry on its failed job), not with a job added by hand`);

/** `data` as a stage payload, or JOB_INVALID naming what is wrong with it. */
export function stagePayload(data: unknown, stage: StageName): StagePayload {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw invalid(stage, `its data is ${data === null ? 'null' : Array.isArray(data) ? 'a list' : typeof data}, not {importId, bucket, key, etag}`);
  }
  const d = data as Record<string, unknown>;
  const { importId } = d;
  if (typeof importId !== 'string' || !/^[0-9a-f]{24}$/.test(importId)) {
    throw invalid(stage, `its importId ${importId === undefined ? 'is missing' : `"${excerpt(String(JSON.stringify(importId)), 40)}" is not an import id (24 hex digits)`}`);
  }
  for (const field of ['bucket', 'key', 'etag'] as const) {
    const v = d[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_FIELD) {
      throw invalid(stage, `its ${field} ${v === undefined ? 'is missing' : `is not a string of 1-${MAX_FIELD} characters`}`);
    }
  }
  return { importId, bucket: d.bucket as string, key: d.key as string, etag: d.etag as string };
}

/** Whether `data` is a stage payload (stagePayload would take it). */
export function isStagePayload(data: unknown, stage: StageName): data is StagePayload {
  try {
    stagePayload(data, stage);
    return true;
  } catch {
    return false;
  }
}

/** The stage that must be done before `stage` runs (none for verify). */
export function stageBefore(stage: StageName): StageName | null {
  const i = STAGES.indexOf(stage);
  return i > 0 ? STAGES[i - 1] : null;
}

/**
 * The job's payload, checked against the import record: JOB_INVALID when the
 * data is not a payload, names no recorded import or another object than
 * the import's, or comes before the stage it follows is done. Reads only.
 */
export async function admitStageJob(q: Pick<Pool, 'query'>, data: unknown, stage: StageName): Promise<StagePayload> {
  const p = stagePayload(data, stage);
  const rec = await getImport(q, p.importId);
  if (!rec) throw invalid(stage, `no import ${p.importId} is on record`);
  if (rec.bucket !== p.bucket || rec.objectKey !== p.key || normaliseEtag(rec.etag) !== normaliseEtag(p.etag)) {
    throw invalid(stage, `its bucket, key and ETag are not those of import ${p.importId} (${excerpt(rec.bucket, 64)}/${excerpt(rec.objectKey, 200)})`);
  }
  const before = stageBefore(stage);
  const state = before ? (rec.stages[before]?.state ?? 'not started') : 'done';
  if (before && state !== 'done') {
    const why = rec.state === 'failed' && rec.errorCode ? ` (the import failed with ${rec.errorCode})` : '';
    throw invalid(stage, `${stage} runs only once ${before} is done, and ${before} of import ${p.importId} is ${state}${why}`);
  }
  return p;
}
