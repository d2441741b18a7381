/**
 * `stella ouk rollback [--json]`: re-activate the previous DB, atomically (see
 * functions/rollback.ts). Scans already running finish on the DB they started
 * with; new ones see the previous DB.
 */
import type { Command } from 'commander';
import { createPool, migrate } from '../../infra/db.ts';
import { resolveEnv } from '../../infra/env.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { rollback } from '../../functions/rollback.ts';

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
        const r = await rollback(pool, createLogger('cli', { level: config.logLevel ?? 'warn' }));
        process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `rolled back to ${r.to.version} (was ${r.from.version ?? r.from.importId})\n`);
      } finally {
        await pool.end();
      }
    });
}
