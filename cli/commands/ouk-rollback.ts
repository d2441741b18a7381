/**
 * `stella ouk rollback [--json]`: re-activate the previous DB, atomically (see
 * functions/rollback.ts). Scans already running finish on the DB they started
 * with; new ones see the previous DB. The stored SBOMs' re-scans are then
 * enqueued (queue/rescan.ts); with Redis unreachable the rollback still stands
 * and the reconciler enqueues them once Redis answers.
 */
import type { Command } from 'commander';
import { createPool, migrate } from '../../infra/db.ts';
import { resolveEnv } from '../../infra/env.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { rollback } from '../../functions/rollback.ts';
import { pipelineSettings } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Pool } from '../../infra/db.ts';
import { connectRedis } from '../../queue/connection.ts';
import { openPipelineQueues } from '../../queue/queues.ts';
import { enqueueRescans, type EnqueuedRescans } from '../../queue/rescan.ts';
import { terminalLines } from '../../lib/terminal-text.ts';

/** Enqueues the re-scans a rollback needs; null (with a warning on stderr) when Redis does not answer. */
async function enqueueAfterRollback(pool: Pool, redisUrl: string, prefix: string, logger: Logger): Promise<EnqueuedRescans | null> {
  let queues;
  try {
    queues = openPipelineQueues(await connectRedis(redisUrl), prefix);
  } catch (e) {
    process.stderr.write(terminalLines([`warning: ${(e as Error).message}; the stored SBOMs are re-scanned once the reconciler runs again`]));
    return null;
  }
  try {
    return await enqueueRescans({ pool, queue: queues.rescan, settings: pipelineSettings(resolveEnv()), logger });
  } finally {
    await queues.close();
    queues.connection.disconnect();
  }
}

export function registerOukRollback(ouk: Command): void {
  ouk
    .command('rollback')
    .description('re-activate the previous DB atomically (after a full or a delta import)')
    .option('--json', 'machine-readable result on stdout', false)
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig(resolveEnv());
      const pool = createPool(config.databaseUrl, 2);
      try {
        await migrate(pool);
        const logger = createLogger('cli', { level: config.logLevel ?? 'warn' });
        const r = await rollback(pool, logger);
        const rescans = await enqueueAfterRollback(pool, config.redisUrl, config.queuePrefix, logger);
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ ...r, rescans }, null, 2)}\n`
            : terminalLines([`rolled back to ${r.to.version} (was ${r.from.version ?? r.from.importId})${rescans?.jobs ? `; ${rescans.jobs} stored SBOM${rescans.jobs === 1 ? '' : 's'} queued for re-scan` : ''}`]),
        );
      } finally {
        await pool.end();
      }
    });
}
