/**
 * `stella ouk jobs [--failed] [--json] [--limit N]`: recent imports (from
 * the import record) with each stage's state, attempts, duration and error,
 * read live from the BullMQ jobs `${importId}-<stage>` and, where a job is no
 * longer kept in Redis, from the import record's `stages`. An unfinished
 * import none of whose stages has a live job (Redis lost them) carries a hint:
 * the reconciler resumes it, or `stella ouk retry`.
 */
import type { Command } from 'commander';
import type { Queue } from 'bullmq';
import type { Pool } from '../../infra/db.ts';
import { isUnfinished, recentFailedImports, recentImports, type ImportRecord, type StageRecord } from '../../infra/import-records/index.ts';
import { OukError } from '../../lib/errors.ts';
import { importIdOfJobId, jobIdFor } from '../../lib/storage-names.ts';
import { terminalText } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

import { readStageProgress, STAGES, type StageName } from '../../functions/context.ts';
import { LIVE_STATES } from '../../queue/resume.ts';

export interface StageView {
  stage: StageName;
  /** BullMQ job state (waiting, active, delayed, failed, completed, waiting-children, …), the record's state, or `-`. */
  state: string;
  attempts: number;
  maxAttempts: number | null;
  /** Seconds of the last attempt (running time so far while active), or null. */
  durationSeconds: number | null;
  error: string | null;
  progress: unknown;
  /** Where this view came from. */
  source: 'queue' | 'record' | 'none';
}

export interface ImportView {
  id: string;
  objectKey: string;
  version: string | null;
  state: string;
  errorCode: string | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  stages: StageView[];
  /** What to do about it, when the record and the queue disagree (no live job for an unfinished import). */
  hint?: string;
}

/** The hint for an unfinished import without any live stage job (only known when Redis answered). */
export function noLiveJobHint(id: string, state: string, stages: StageView[]): string | undefined {
  // an import under way: some stage job must be live
  if (!isUnfinished(state)) return undefined;
  if (stages.some((s) => s.source === 'queue' && LIVE_STATES.has(s.state))) return undefined;
  return `no live job: the reconciler resumes it, or run \`stella ouk retry ${id}\``;
}

function seconds(from: number | undefined, to: number | undefined): number | null {
  if (!from || !to || to < from) return null;
  return (to - from) / 1000;
}

async function stageFromQueue(queue: Queue, importId: string, stage: StageName): Promise<StageView | null> {
  const job = await queue.getJob(jobIdFor(importId, stage));
  if (!job) return null;
  const state = await job.getState();
  const running = state === 'active';
  return {
    stage,
    state,
    attempts: job.attemptsMade,
    maxAttempts: job.opts.attempts ?? 1,
    durationSeconds: seconds(job.processedOn, running ? Date.now() : job.finishedOn),
    // a completed job keeps the reason of an earlier failed attempt: not an error any more
    error: state === 'completed' ? null : job.failedReason || null,
    progress: job.progress ?? null,
    source: 'queue',
  };
}

function stageFromRecord(rec: StageRecord | undefined, stage: StageName): StageView {
  if (!rec) return { stage, state: '-', attempts: 0, maxAttempts: null, durationSeconds: null, error: null, progress: null, source: 'none' };
  const start = rec.startedAt ? Date.parse(rec.startedAt) : undefined;
  const end = rec.finishedAt ? Date.parse(rec.finishedAt) : undefined;
  return {
    stage,
    state: rec.state ?? '-',
    attempts: rec.attempts ?? 0,
    maxAttempts: null,
    durationSeconds: seconds(start, end),
    error: rec.error ? (rec.code ? `${rec.code}: ${rec.error}` : rec.error) : null,
    progress: null,
    source: 'record',
  };
}

export interface JobsDeps {
  pool: Pool;
  /** One Queue per stage, keyed by stage name; null when Redis is unreachable (record-only view). */
  queues: Record<StageName, Queue> | null;
}

export interface JobsOptions {
  failed?: boolean;
  limit?: number;
}

/** Ids of imports with a stage job in BullMQ's failed set. */
async function failedIdsFromQueues(queues: Record<StageName, Queue>, limit: number): Promise<string[]> {
  const ids = new Set<string>();
  for (const stage of STAGES) {
    const jobs = await queues[stage].getFailed(0, limit - 1);
    for (const j of jobs) {
      const id = importIdOfJobId(j.id ?? '', stage);
      if (id !== null) ids.add(id);
    }
  }
  return [...ids];
}

export async function collectImports(deps: JobsDeps, opts: JobsOptions = {}): Promise<ImportView[]> {
  const limit = opts.limit ?? 20;
  let rows: ImportRecord[];
  if (opts.failed) {
    const queueFailed = deps.queues ? await failedIdsFromQueues(deps.queues, 200) : [];
    rows = await recentFailedImports(deps.pool, queueFailed, limit);
  } else {
    rows = await recentImports(deps.pool, limit);
  }
  const out: ImportView[] = [];
  for (const r of rows) {
    const stages: StageView[] = [];
    for (const stage of STAGES) {
      const live = deps.queues ? await stageFromQueue(deps.queues[stage], r.id, stage) : null;
      stages.push(live ?? stageFromRecord(r.stages[stage], stage));
    }
    out.push({
      id: r.id,
      objectKey: r.objectKey,
      version: r.version,
      state: r.state,
      errorCode: r.errorCode,
      error: r.error,
      createdAt: new Date(r.createdAt).toISOString(),
      updatedAt: new Date(r.updatedAt).toISOString(),
      stages,
      hint: deps.queues ? noLiveJobHint(r.id, r.state, stages) : undefined,
    });
  }
  return out;
}

export function formatDuration(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

function progressText(progress: unknown): string {
  const percent = readStageProgress(progress)?.percent ?? null;
  if (percent === null || (typeof progress === 'number' && percent <= 0)) return '';
  return `${Math.round(percent)}%`;
}

/** An outside message on one line: whitespace runs as one space, control characters escaped, at most `max` characters. */
function oneLine(s: string, max: number): string {
  const one = terminalText(s.replace(/[ \t\r\n]+/g, ' ').trim());
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/**
 * The human table: one header line per import, one line per stage. Keys,
 * versions, states and errors come from outside (the bucket, the kit, a job's
 * failed reason): printed through terminalText, so none can move the cursor,
 * retitle the terminal or start a line of its own.
 */
export function renderImports(views: ImportView[], failedOnly = false): string {
  if (views.length === 0) return failedOnly ? 'no failed imports\n' : 'no imports yet: drop a bundle into the bucket or run `stella ouk import FILE`\n';
  const lines: string[] = [];
  for (const v of views) {
    lines.push(`${v.id}  ${v.version === null ? '(version unknown)' : terminalText(v.version)}  ${terminalText(v.state.toUpperCase())}  ${terminalText(v.objectKey)}  created ${v.createdAt}`);
    for (const s of v.stages) {
      const attempts = s.maxAttempts ? `${s.attempts}/${s.maxAttempts}` : String(s.attempts);
      const cols = [
        `  ${s.stage.padEnd(9)}`,
        terminalText(s.state).padEnd(17),
        `attempts ${attempts}`.padEnd(14),
        formatDuration(s.durationSeconds).padStart(8),
        progressText(s.progress).padStart(5),
      ];
      if (s.error) cols.push(` ${oneLine(s.error, 400)}`);
      lines.push(cols.join(' ').trimEnd());
    }
    if (v.state === 'failed') lines.push(`  → retry: stella ouk retry ${v.id}   (or Retry on the failed job at /admin/queues)`);
    if (v.hint) lines.push(`  → ${v.hint}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Registers `jobs` on the `ouk` command (pass `ouk`, or the program to have it found). */
export function registerOukJobs(parent: Command, cli: CliContext): void {
  const ouk = parent.name() === 'ouk' ? parent : (parent.commands.find((c) => c.name() === 'ouk') ?? parent.command('ouk'));
  ouk
    .command('jobs')
    .description('list imports with each stage: state, attempts, duration and error')
    .option('--failed', 'only imports with a failed stage')
    .option('--json', 'machine-readable output')
    .option('--limit <n>', 'how many imports (newest first)', (v) => Number.parseInt(v, 10), 20)
    .action(async (opts: { failed?: boolean; json?: boolean; limit: number }) => {
      const pool = await cli.db();
      const queues = await cli.queues().then(
        (q) => q.queues,
        (e: unknown) => {
          if (!(e instanceof OukError && e.code === 'QUEUE_UNAVAILABLE')) throw e;
          process.stderr.write('warning: Redis is unreachable; showing the stages as recorded in PostgreSQL\n');
          return null;
        },
      );
      const views = await collectImports({ pool, queues }, { failed: opts.failed, limit: opts.limit });
      process.stdout.write(opts.json ? `${JSON.stringify({ imports: views }, null, 2)}\n` : renderImports(views, opts.failed));
    });
}
