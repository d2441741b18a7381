/**
 * A stage's entry in the record (`stages.<stage>`) and the import state it
 * moves with: begin, done, failed, lost. A stage recorded done stays done,
 * whoever replays it (only `stageLost`, the system's own check, undoes it); a
 * finished import (active, superseded, rolled back) keeps its state.
 */
import type { StageName } from '../../lib/stages.ts';
import type { Queryable } from '../db.ts';
import { requireImport } from './get.ts';
import type { ImportRecord, RecordColumns, StageRecord } from './record.ts';
import { FINISHED_STATES, RUNNING_STATE } from './states.ts';

/**
 * Merges `patch` into stages[stage]; optionally sets other columns (name ->
 * value, names from this folder only). With `unlessDone`, a stage recorded
 * done is left as it is (returns false).
 */
export async function patchStage(
  q: Queryable,
  id: string,
  stage: StageName,
  patch: StageRecord,
  columns: Record<string, unknown> = {},
  unlessDone = false,
): Promise<boolean> {
  const names = Object.keys(columns);
  const sets = names.map((n, i) => `${n} = $${i + 4}`);
  const r = await q.query(
    `UPDATE ouk_meta.imports
        SET stages = jsonb_set(stages, ARRAY[$2::text], COALESCE(stages -> $2::text, '{}'::jsonb) || $3::jsonb),
            updated_at = now()${sets.length ? ', ' + sets.join(', ') : ''}
      WHERE id = $1${unlessDone ? ` AND COALESCE(stages -> $2::text ->> 'state', '') <> 'done'` : ''}`,
    [id, stage, JSON.stringify(patch), ...names.map((n) => columns[n])],
  );
  return (r.rowCount ?? 0) > 0;
}

export type StageStart = { replay: true; result: unknown } | { replay: false };

/**
 * A stage attempt starts: record it running and move the import into that
 * stage's state — unless the record says the stage is done, in which case
 * nothing changes and the recorded result is returned (a replayed job, a
 * Retry on a completed job in the dashboard, a duplicate flow: all no-ops).
 */
export async function beginStage(q: Queryable, id: string, stage: StageName, attempt: number, now = new Date()): Promise<StageStart> {
  const started = await patchStage(
    q,
    id,
    stage,
    { state: 'running', attempts: attempt, startedAt: now.toISOString(), finishedAt: null, code: null, error: null },
    {},
    true,
  );
  if (!started) {
    const rec = await requireImport(q, id);
    return { replay: true, result: rec.stages[stage]?.result ?? null };
  }
  await q.query(
    `UPDATE ouk_meta.imports SET state = $2, error_code = NULL, error = NULL
      WHERE id = $1 AND NOT state = ANY($3::text[])`,
    [id, RUNNING_STATE[stage], FINISHED_STATES],
  );
  return { replay: false };
}

/** A stage is done with `result`; `columns`: what it learnt about the bundle, written with it. */
export async function stageDone(q: Queryable, id: string, stage: StageName, result: unknown, columns: RecordColumns = {}): Promise<void> {
  await patchStage(q, id, stage, { state: 'done', finishedAt: new Date().toISOString(), code: null, error: null, result }, { ...columns });
}

/** An attempt failed: `final` marks the import failed with the error's code and message. */
export async function stageFailed(q: Queryable, id: string, stage: StageName, code: string, message: string, final: boolean): Promise<void> {
  // A failure reported for a stage already done (a late duplicate) changes nothing.
  if (!(await patchStage(q, id, stage, { state: final ? 'failed' : 'retrying', finishedAt: new Date().toISOString(), code, error: message }, {}, true))) return;
  if (final) {
    await q.query(
      `UPDATE ouk_meta.imports SET state = 'failed', error_code = $2, error = $3, updated_at = now()
        WHERE id = $1 AND NOT state = ANY($4::text[])`,
      [id, code, message, FINISHED_STATES],
    );
  }
}

/**
 * What a stage produced is gone (its schema dropped by hand, say): the stage
 * is marked failed so a retry runs it again. The only way a done stage stops
 * being done, and only the system's own check makes it.
 */
export async function stageLost(q: Queryable, id: string, stage: StageName, why: string, now = new Date()): Promise<void> {
  await patchStage(q, id, stage, { state: 'failed', finishedAt: now.toISOString(), code: 'IMPORT_FAILED', error: why });
}

/** A stage is made to run again (a retry): its entry says retrying, its error is cleared; `clearResult` forgets what it produced. */
export async function stageRetrying(q: Queryable, id: string, stage: StageName, clearResult = false): Promise<void> {
  await patchStage(q, id, stage, clearResult ? { state: 'retrying', code: null, error: null, result: null } : { state: 'retrying', code: null, error: null });
}

export function stageIsDone(rec: ImportRecord, stage: StageName): boolean {
  return rec.stages[stage]?.state === 'done';
}

/** The error code a stage's failure left: the stage's own, else the import's (null when none or no such import). */
export async function stageErrorCode(q: Queryable, id: string, stage: StageName): Promise<string | null> {
  const r = await q.query<{ code: string | null }>(`SELECT coalesce(stages -> $2 ->> 'code', error_code) AS code FROM ouk_meta.imports WHERE id = $1`, [id, stage]);
  return r.rows[0]?.code ?? null;
}

/** The state a stage's entry records (null when none or no such import). */
export async function stageState(q: Queryable, id: string, stage: StageName): Promise<StageRecord['state'] | null> {
  const r = await q.query<{ state: StageRecord['state'] | null }>(`SELECT stages -> $2 ->> 'state' AS state FROM ouk_meta.imports WHERE id = $1`, [id, stage]);
  return r.rows[0]?.state ?? null;
}
