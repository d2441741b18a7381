/**
 * Following an import to its end: polls the import record and its stage jobs,
 * draws a bar per stage (a line per change when stderr is not a terminal),
 * retries once a refusal that the operator's flags lift, hints when no worker
 * serves a queue, and ends with the record once activate is done or a stage
 * failed for good, or once activate and images are done (or images failed:
 * the DB is live, the push is owed).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { STAGES, type StageName } from '../../functions/context.ts';
import { getImport, type ImportRecord } from '../../infra/import-records.ts';
import { EXIT_CODES, OukError, type ErrorCode } from '../../lib/errors.ts';
import { LIFTED_BY } from '../../queue/flow.ts';
import { jobIdFor } from '../../queue/identity.ts';
import { retryImport } from '../../queue/retry.ts';
import type { CliPipeline } from './pipeline.ts';
import { terminalText } from '../../lib/terminal-text.ts';
import { QUARANTINE_CODES } from '../../lib/quarantine.ts';

export interface FollowResult {
  record: ImportRecord;
  stages: Record<StageName, { state: string; progress: unknown }>;
}

function failedStage(rec: ImportRecord): StageName | null {
  return STAGES.find((s) => rec.stages[s]?.state === 'failed') ?? null;
}

export function importFailure(rec: ImportRecord): OukError {
  const code = (rec.errorCode && rec.errorCode in EXIT_CODES ? rec.errorCode : 'IMPORT_FAILED') as ErrorCode;
  const stage = failedStage(rec) ?? 'import';
  const quarantined = rec.state === 'quarantined' && rec.quarantineKey ? ` — the kit was quarantined as ${rec.quarantineKey} and is not retried: \`stella ouk quarantine show ${rec.id}\`` : '';
  return new OukError(code, `${stage} failed for import ${rec.id} (${rec.objectKey}): ${rec.error ?? 'no reason recorded'}${quarantined}`);
}

/** An import whose DB is active but whose images step failed: the images' code (REGISTRY_UNAVAILABLE, …) and what to do. */
export function imagesFailure(rec: ImportRecord): OukError {
  const images = rec.stages.images;
  const code = (images?.code && images.code in EXIT_CODES ? images.code : 'IMPORT_FAILED') as ErrorCode;
  return new OukError(code, `${rec.version} is the active DB, but pushing its images failed: ${images?.error ?? 'no reason recorded'} — fix it, then \`stella ouk retry ${rec.id}\` (or \`stella ouk images --push\`)`);
}

interface Bars {
  update(stage: StageName, state: string, progress: unknown): void;
  stop(): void;
}

function progressOf(p: unknown): { done: number; total: number; unit: string } | null {
  if (!p || typeof p !== 'object') return null;
  const o = p as { done?: unknown; total?: unknown; unit?: unknown };
  if (typeof o.done !== 'number') return null;
  return { done: o.done, total: typeof o.total === 'number' && o.total > 0 ? o.total : o.done, unit: typeof o.unit === 'string' ? o.unit : '' };
}

function stageBars(tty: boolean): Bars {
  const last = new Map<StageName, string>();
  if (!tty) {
    return {
      update(stage, state) {
        if (last.get(stage) === state) return;
        last.set(stage, state);
        process.stderr.write(`${stage}: ${state}\n`);
      },
      stop: () => undefined,
    };
  }
  const multi = new cliProgress.MultiBar(
    { format: '{stage} [{bar}] {percentage}% | {state} {detail}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<StageName, cliProgress.SingleBar>();
  for (const s of STAGES) bars.set(s, multi.create(1, 0, { stage: s.padEnd(8), state: 'waiting', detail: '' }));
  return {
    update(stage, state, progress) {
      const bar = bars.get(stage)!;
      const p = progressOf(progress);
      if (state === 'done' || state === 'completed') {
        bar.setTotal(1);
        bar.update(1, { state: 'done', detail: '' });
      } else if (p) {
        bar.setTotal(p.total);
        bar.update(p.done, { state, detail: terminalText(`${p.done}/${p.total} ${p.unit}`) });
      } else bar.update(0, { state, detail: '' });
    },
    stop: () => multi.stop(),
  };
}

/** Polls the import record and its jobs until it is active or failed (or the timeout). */
export async function followImport(p: CliPipeline, importId: string, opts: { tty: boolean; timeoutSeconds: number; flags?: { allowDowngrade?: boolean; force?: boolean } }): Promise<FollowResult> {
  const bars = stageBars(opts.tty);
  const end = Date.now() + opts.timeoutSeconds * 1000;
  let retriedForFlags = false;
  let quarantineWait: number | undefined;
  let hinted = false;
  const started = Date.now();
  try {
    for (;;) {
      const rec = await getImport(p.pool, importId);
      if (!rec) throw new OukError('IMPORT_NOT_FOUND', `import ${importId} disappeared`);
      const stages = {} as FollowResult['stages'];
      for (const s of STAGES) {
        const job = await p.queues.queues[s].getJob(jobIdFor(importId, s));
        const recState = rec.stages[s]?.state;
        const jobState = job ? await job.getState() : undefined;
        const state = recState === 'done' ? 'done' : recState === 'failed' ? 'failed' : (jobState ?? recState ?? 'waiting');
        stages[s] = { state, progress: job?.progress ?? null };
        bars.update(s, state === 'waiting-children' ? 'waiting' : state, job?.progress);
      }
      // Activated, and the images step (after activation) has pushed or failed: the import's end.
      if (rec.stages.activate?.state === 'done' && ['done', 'failed'].includes(rec.stages.images?.state ?? '')) return { record: rec, stages };
      // A stage waiting a while with nobody to run it: say so once (the CLI keeps waiting).
      const pending = STAGES.find((s) => stages[s].state === 'waiting');
      if (pending && !hinted && Date.now() - started > 10_000) {
        hinted = true;
        if ((await p.queues.queues[pending].getWorkersCount().catch(() => 1)) === 0) {
          process.stderr.write(`note: no worker is serving the ${pending} queue (prefix ${p.queues.prefix}): start one (node dist/queue/worker-main.js, the compose worker service, or npm run dev:up in a checkout); the import continues when it runs\n`);
        }
      }
      // Quarantined (functions/quarantine.ts): a refusal no retry lifts; removed: deleted from quarantine.
      if (rec.state === 'quarantined' || rec.state === 'removed') return { record: rec, stages };
      if (rec.state === 'failed') {
        // A refusal our flags lift may have raced with the flags being stored: retry it once.
        const flag = rec.errorCode ? LIFTED_BY[rec.errorCode] : undefined;
        if (!retriedForFlags && flag && opts.flags?.[flag] && rec[flag]) {
          retriedForFlags = true;
          await retryImport(p.deps, importId);
        } else if (rec.errorCode && QUARANTINE_CODES.has(rec.errorCode as ErrorCode) && (quarantineWait ??= Date.now() + 5000) > Date.now()) {
          // A refusal that quarantines: give the worker a moment to move the kit, so the answer says where it is.
        } else {
          // Give a retry BullMQ still has in hand a moment to show up.
          return { record: rec, stages };
        }
      }
      if (Date.now() > end) {
        throw new OukError('IMPORT_FAILED', `import ${importId} is still running after ${opts.timeoutSeconds} s (now ${rec.state}); follow it with \`stella ouk status\``);
      }
      await sleep(300);
    }
  } finally {
    bars.stop();
  }
}

export function stageSummary(rec: ImportRecord): Record<string, unknown> {
  return Object.fromEntries(STAGES.map((s) => [s, rec.stages[s] ?? null]));
}

