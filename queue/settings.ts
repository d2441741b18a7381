/**
 * Queue tuning from the environment, with production defaults. Job options
 * (attempts, backoff) are fixed when a flow is added, so the ingesting process
 * (API, CLI, reconciler) and the workers read the same variables.
 *
 *   OUK_VERIFY_ATTEMPTS / OUK_VERIFY_BACKOFF_MS  verify, which also waits for a late .sig:
 *                                                8 attempts, 2 s doubling (about 4 minutes in all)
 *   OUK_STAGE_ATTEMPTS / OUK_STAGE_BACKOFF_MS    unpack, load, activate: 5 attempts, 2 s doubling
 *   OUK_LOCK_MS / OUK_STALLED_MS                 job lock and stalled-job check (30 s each): how soon
 *                                                a job whose worker died runs again elsewhere
 *   OUK_WORKER_CONCURRENCY                       jobs per stage per worker process (default 1;
 *                                                activate always runs one at a time)
 *   OUK_RECONCILE_SECONDS                        bucket listing interval of the reconciler (60)
 *   OUK_KEEP_COMPLETED_DAYS                      how long finished jobs stay in Redis (7)
 */
import type { StageName } from '../functions/context.ts';

type Env = Record<string, string | undefined>;

export interface PipelineSettings {
  attempts: Record<StageName, number>;
  backoffMs: Record<StageName, number>;
  lockMs: number;
  stalledMs: number;
  concurrency: number;
  reconcileSeconds: number;
  keepCompletedSeconds: number;
  keepFailedSeconds: number;
}

function num(env: Env, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}=${raw} is not a number >= ${min}`);
  return n;
}

export function pipelineSettings(env: Env = process.env): PipelineSettings {
  const verifyAttempts = num(env, 'OUK_VERIFY_ATTEMPTS', 8, 1);
  const verifyBackoff = num(env, 'OUK_VERIFY_BACKOFF_MS', 2000);
  const attempts = num(env, 'OUK_STAGE_ATTEMPTS', 5, 1);
  const backoff = num(env, 'OUK_STAGE_BACKOFF_MS', 2000);
  return {
    attempts: { verify: verifyAttempts, unpack: attempts, load: attempts, activate: attempts },
    backoffMs: { verify: verifyBackoff, unpack: backoff, load: backoff, activate: backoff },
    lockMs: num(env, 'OUK_LOCK_MS', 30_000, 1000),
    stalledMs: num(env, 'OUK_STALLED_MS', 30_000, 500),
    concurrency: num(env, 'OUK_WORKER_CONCURRENCY', 1, 1),
    reconcileSeconds: num(env, 'OUK_RECONCILE_SECONDS', 60, 1),
    keepCompletedSeconds: num(env, 'OUK_KEEP_COMPLETED_DAYS', 7) * 86400,
    keepFailedSeconds: 30 * 86400,
  };
}
