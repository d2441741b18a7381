/**
 * `stella ouk gc [--dry-run] [--grace-hours N] [--json]`: garbage collection by
 * hand (functions/gc.ts; the maintenance queue runs the same every
 * OUK_GC_SECONDS). Lists what it removes — staged members and DB schemas no
 * import needs — and why; with --dry-run it removes nothing.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { collectGarbage, type GcResult } from '../../functions/gc.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';
import { audited, reasonOf } from '../audit.ts';

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '' : ` (${(bytes / 1048576).toFixed(1)} MiB)`;
}

export function describeGc(r: GcResult): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines: string[] = [];
  for (const s of r.staged) lines.push(`${verb} staged ${s.name}${mib(s.bytes)}: ${s.why}`);
  for (const s of r.schemas) lines.push(`${verb} schema ${s.name}: ${s.why}`);
  for (const b of r.busy) lines.push(`kept schema ${b}: a reader still uses it (the next pass drops it)`);
  if (!lines.length) lines.push('nothing to remove: every staged member and DB schema is still needed');
  return terminalLines(lines); // object keys and schema names from the bucket and the DB, escaped
}

function hours(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('give a number of hours (0 or more)');
  return n;
}

export function registerOukGc(ouk: Command, cli: CliContext): void {
  ouk
    .command('gc')
    .description('remove staged members and DB schemas that no import needs any more (keeps the active and previous DBs and imports in flight)')
    .option('--dry-run', 'list what would be removed, remove nothing', false)
    .option('--grace-hours <n>', 'keep leftovers of failed or unknown imports younger than this (default OUK_GC_GRACE_HOURS, 24)', hours)
    .option('--reason <text>', 'why (with --grace-hours 0, on the audit trail, `stella ouk audit`)')
    .option('--json', 'machine-readable result on stdout', false)
    .action(async (opts: { dryRun: boolean; graceHours?: number; json: boolean; reason?: string }) => {
      const reason = reasonOf(opts.reason, false, 'gc');
      const graceHours = opts.graceHours ?? cli.settings().gcGraceHours;
      const collect = async (): Promise<GcResult> => collectGarbage({
        pool: await cli.db({ migrate: true }),
        store: await cli.store(),
        bucket: cli.config.bucket,
        logger: await cli.logger(),
        now: new Date(),
        graceHours,
        dryRun: opts.dryRun,
      });
      // Grace 0 removes what a failed import left a moment ago (no waiting for a retry): on the record.
      const r = graceHours === 0 && !opts.dryRun ? await audited(cli, { action: 'gc.grace-0', target: cli.config.bucket, reason }, collect) : await collect();
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : describeGc(r));
    });
}
