/**
 * `stella ouk retry ID [--no-wait] [--json]`: re-run a failed import from the
 * stage that failed (a unique prefix of the id is enough), then follow it like
 * `stella ouk import` does. It exits 0 only when everything it retried is
 * done: an images step that fails again exits with the images' code
 * (REGISTRY_UNAVAILABLE, REGISTRY_REJECTED), the DB active all the same.
 */
import type { Command } from 'commander';
import { OukError } from '../../lib/errors.ts';
import { findImports } from '../../infra/import-records.ts';
import { retryImport } from '../../queue/retry.ts';
import { followImport, imagesFailure, importFailure, stageSummary } from '../import/follow.ts';
import type { CliContext } from '../context.ts';
import { openCliPipeline } from '../import/pipeline.ts';
import { audited, reasonOf } from '../audit.ts';
import { terminalLines } from '../../lib/terminal-text.ts';

export function registerOukRetry(ouk: Command, cli: CliContext): void {
  ouk
    .command('retry')
    .description('retry a failed import from its failed stage; the chain continues from there')
    .argument('<id>', 'the import id (or a unique prefix), as `stella ouk status` shows it')
    .option('--reason <text>', 'why (on the audit trail, `stella ouk audit`)')
    .option('--no-wait', 'return once the stage is queued again')
    .option('--json', 'machine-readable result on stdout', false)
    .option('--timeout <seconds>', 'give up following after this long', (v) => Number.parseInt(v, 10), 3600)
    .action(async (id: string, opts: { wait: boolean; json?: boolean; timeout: number; reason?: string }) => {
      const reason = reasonOf(opts.reason, false, 'retry');
      const p = await openCliPipeline(cli);
      const found = await findImports(p.pool, id);
      if (found.length === 0 || !/^[0-9a-f]+$/i.test(id)) throw new OukError('IMPORT_NOT_FOUND', `no import ${id}: list imports with \`stella ouk status\``);
      if (found.length > 1) throw new OukError('USAGE', `${id} matches ${found.length} imports (${found.map((f) => f.id).join(', ')}): give more of the id`);
      const rec = found[0];
      const r = await audited(cli, { action: 'retry', target: rec.id, reason }, () => retryImport(p.deps, rec.id));
      process.stderr.write(r.stage ? `retrying ${rec.id} from ${r.stage}\n` : `the jobs of ${rec.id} were gone; its flow was added again\n`);
      if (!opts.wait) {
        process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${rec.id}\n`);
        return;
      }
      const done = await followImport(p, rec.id, { tty: Boolean(process.stderr.isTTY) && !opts.json, timeoutSeconds: opts.timeout });
      if (done.record.stages.activate?.state !== 'done') throw importFailure(done.record);
      const images = done.record.stages.images;
      // The DB is active either way; say "activated" only when this retry activated it.
      const activatedNow = r.stage !== 'images';
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ importId: rec.id, version: done.record.version, state: done.record.state, stages: stageSummary(done.record) }, null, 2)}\n`);
      } else if (activatedNow) process.stdout.write(terminalLines([`activated ${done.record.version}`]));
      else if (images?.state === 'done') process.stdout.write(terminalLines([`images of ${done.record.version} pushed`]));
      // The images step failed again: the command failed, with the images' code.
      if (images?.state === 'failed') throw imagesFailure(done.record);
    });
}
