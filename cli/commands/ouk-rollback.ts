/**
 * `stella ouk rollback [--json]`: re-activate the previous DB, atomically (see
 * functions/rollback.ts). Scans already running finish on the DB they started
 * with; new ones see the previous DB. The stored SBOMs' re-scans are then
 * enqueued (queue/rescan.ts); with Redis unreachable the rollback still stands
 * and the reconciler enqueues them once Redis answers. Each rollback (and
 * each refused one) is on the audit trail, with `--reason` when given.
 */
import type { Command } from 'commander';
import { rollback } from '../../functions/rollback.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Pool } from '../../infra/db.ts';
import type { PipelineQueues } from '../../queue/queues.ts';
import { enqueueRescans, type EnqueuedRescans } from '../../queue/rescan.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';
import { audited, reasonOf } from '../audit.ts';

/** Enqueues the re-scans a rollback needs; null (with a warning on stderr) when Redis does not answer. */
async function enqueueAfterRollback(cli: CliContext, pool: Pool, logger: Logger): Promise<EnqueuedRescans | null> {
  let queues: PipelineQueues;
  try {
    queues = await cli.queues();
  } catch (e) {
    process.stderr.write(terminalLines([`warning: ${(e as Error).message}; the stored SBOMs are re-scanned once the reconciler runs again`]));
    return null;
  }
  return await enqueueRescans({ pool, queue: queues.rescan, settings: cli.settings(), logger });
}

export function registerOukRollback(ouk: Command, cli: CliContext): void {
  ouk
    .command('rollback')
    .description('re-activate the previous DB atomically (after a full or a delta import)')
    .option('--reason <text>', 'why (on the audit trail, `stella ouk audit`)')
    .option('--json', 'machine-readable result on stdout', false)
    .action(async (opts: { json?: boolean; reason?: string }) => {
      const reason = reasonOf(opts.reason, false, 'rollback');
      const pool = await cli.db({ migrate: true });
      const logger = await cli.logger();
      const r = await audited(cli, { action: 'rollback', target: null, reason }, () => rollback(pool, logger), (x) => `${x.from.version ?? x.from.importId} -> ${x.to.version}`);
      const rescans = await enqueueAfterRollback(cli, pool, logger);
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ ...r, rescans }, null, 2)}\n`
          : terminalLines([`rolled back to ${r.to.version} (was ${r.from.version ?? r.from.importId})${rescans?.jobs ? `; ${rescans.jobs} stored SBOM${rescans.jobs === 1 ? '' : 's'} queued for re-scan` : ''}`]),
      );
    });
}
