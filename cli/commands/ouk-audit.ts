/**
 * `stella ouk audit [--since D] [--json]`: the audit trail (ouk_meta.audit),
 * oldest first. Read-only: it changes no schema (a database without migration
 * 009 is SCHEMA_OUTDATED).
 */
import type { Command } from 'commander';
import { listAudit } from '../../infra/audit.ts';
import { OukError } from '../../lib/errors.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

/** `--since`: an ISO date or time, or a span back from now (`7d`, `12h`, `30m`). */
export function parseSince(v: string, now = new Date()): Date {
  const span = /^(\d{1,5})([dhm])$/.exec(v.trim());
  if (span) return new Date(now.getTime() - Number(span[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[span[2] as 'd' | 'h' | 'm']);
  const t = /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v.trim()) ? Date.parse(v.trim()) : Number.NaN;
  if (Number.isNaN(t)) throw new OukError('USAGE', `--since ${v}: give a date (2026-12-01), a time (2026-12-01T08:00:00Z) or a span back from now (7d, 12h, 30m)`);
  return new Date(t);
}

export function registerOukAudit(ouk: Command, cli: CliContext): void {
  ouk
    .command('audit')
    .description('the audit trail: overrides, rollbacks, retries, quarantine releases and removals, gc with grace 0 — who, when, why, outcome')
    .option('--since <when>', 'only rows from then on: a date, a time or a span back from now (7d, 12h)')
    .option('--limit <n>', 'at most this many rows', (v) => Number.parseInt(v, 10), 1000)
    .option('--json', 'machine-readable rows on stdout', false)
    .action(async (opts: { since?: string; limit: number; json?: boolean }) => {
      const since = opts.since ? parseSince(opts.since) : null;
      if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 100_000) throw new OukError('USAGE', '--limit must be a whole number from 1 to 100000');
      const rows = await listAudit(await cli.db(), { since, limit: opts.limit });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows.map((r) => ({ ...r, at: r.at.toISOString() })), null, 2)}\n`);
        return;
      }
      if (!rows.length) {
        process.stdout.write(`no audit rows${since ? ` since ${since.toISOString()}` : ''}\n`);
        return;
      }
      process.stdout.write(
        terminalLines(rows.map((r) => `${r.at.toISOString()}  ${r.actor}${r.via ? ` (${r.via})` : ''}  ${r.action}  ${r.target ?? '-'}  ${r.outcome}${r.reason ? `  reason: ${r.reason}` : ''}`)),
      );
    });
}
