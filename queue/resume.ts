/**
 * PostgreSQL is the record; the queue is derived from it. An import that is
 * not finished and has no live job (Redis wiped, restored from an older
 * snapshot, failed over, jobs expired) gets its flow again, from the first
 * stage its record does not say is done — the stages already done are never
 * run again.
 *
 *   jobsOf(deps, id)          each stage's job and its BullMQ state, or null
 *   resumeImport(deps, rec)   re-creates the flow from the first stage not done
 *
 * Who calls it: the reconciler (every pass, for every unfinished import),
 * ingest (an object imported again whose import is stranded), and
 * `stella ouk retry`. A PostgreSQL advisory lock per import keeps two callers
 * from re-creating the same flow at once.
 */
import type { Job } from 'bullmq';
import { STAGES, type StageName } from '../functions/context.ts';
import { connect } from '../infra/db.ts';
import { getImport, stageIsDone, type ImportRecord } from '../infra/import-records.ts';
import { addImportFlow, type FlowDeps } from './flow.ts';
import { jobIdFor } from './identity.ts';

/** Imports in these states need nothing more (failed ones wait for an operator's retry). */
export const FINISHED_STATES = ['active', 'superseded', 'rolled-back', 'quarantined', 'removed'] as const;

/** BullMQ states in which a job will still run (or is running) without anyone's help. */
export const LIVE_STATES: ReadonlySet<string> = new Set(['waiting', 'wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused']);

export interface StageJob {
  job: Job;
  state: string;
}

export async function jobsOf(deps: Pick<FlowDeps, 'queues'>, importId: string): Promise<Record<StageName, StageJob | null>> {
  const out = {} as Record<StageName, StageJob | null>;
  for (const stage of STAGES) {
    const job = await deps.queues.queues[stage].getJob(jobIdFor(importId, stage));
    out[stage] = job ? { job, state: await job.getState() } : null;
  }
  return out;
}

/**
 * The stage an import resumes from, or null when it needs nothing: its first
 * stage not done — for a finished import, only the images stage of the
 * active one (the DB is live; its push to the registry is still owed).
 */
export function resumeFrom(rec: ImportRecord): StageName | null {
  const from = firstStageNotDone(rec);
  if (!from) return null;
  if ((FINISHED_STATES as readonly string[]).includes(rec.state)) return rec.state === 'active' && from === 'images' ? from : null;
  return from;
}

/** The first stage the record does not say is done, or null when all are. */
export function firstStageNotDone(rec: ImportRecord): StageName | null {
  return STAGES.find((s) => !stageIsDone(rec, s)) ?? null;
}

export function isLive(j: StageJob | null): boolean {
  return j !== null && LIVE_STATES.has(j.state);
}

/**
 * Whether any of `stages` has a job that will still run. A parent stage
 * waiting on a child that failed (or whose job is gone) waits forever — e.g.
 * the images step after an activate that failed — so it does not count.
 */
export function anyLive(jobs: Record<StageName, StageJob | null>, stages: readonly StageName[]): boolean {
  const stuck = new Set<StageName>();
  STAGES.forEach((s, i) => {
    if (i === 0 || jobs[s]?.state !== 'waiting-children') return;
    const below = STAGES[i - 1]!;
    const child = jobs[below];
    if (!child || child.state === 'failed' || stuck.has(below)) stuck.add(s);
  });
  return stages.some((s) => isLive(jobs[s]) && !stuck.has(s));
}

export type ResumeOutcome =
  | { resumed: true; from: StageName }
  | { resumed: false; reason: 'finished' | 'live' | 'busy' };

/**
 * Re-creates the import's flow from its first stage not done when none of
 * the remaining stages has a live job. Leftover jobs of those stages (failed,
 * completed, unknown) are removed first so the new flow's ids are free.
 */
export async function resumeImport(deps: FlowDeps, rec: ImportRecord): Promise<ResumeOutcome> {
  const from = resumeFrom(rec);
  if (!from) return { resumed: false, reason: 'finished' };
  const client = await connect(deps.pool);
  try {
    const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`ouk-resume:${rec.id}`]);
    if (!locked.rows[0]?.ok) return { resumed: false, reason: 'busy' };
    try {
      const jobs = await jobsOf(deps, rec.id);
      // The record again, read after the jobs: a stage writes its done before
      // its job completes, so a job seen completed is done here. The record
      // the caller read earlier may predate that, and would call a stage that
      // has just finished stranded and run it again.
      const now = await getImport(deps.pool, rec.id);
      const current = now ? resumeFrom(now) : null;
      if (!current) return { resumed: false, reason: 'finished' };
      const remaining = STAGES.slice(STAGES.indexOf(current));
      if (anyLive(jobs, remaining)) return { resumed: false, reason: 'live' };
      // The root first: removing a parent removes its children with it.
      for (const s of [...remaining].reverse()) await jobs[s]?.job.remove({ removeChildren: true }).catch(() => undefined);
      await addImportFlow(deps, now!, current);
      return { resumed: true, from: current };
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`ouk-resume:${rec.id}`]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}
