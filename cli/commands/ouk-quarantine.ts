/**
 * `stella ouk quarantine list|show|release|rm`: kits refused for integrity or
 * policy, kept under quarantine/ in the bucket (lib/quarantine.ts decides
 * which refusals, functions/quarantine.ts moves them).
 *
 *   list [--json]                 the quarantined imports, newest first
 *   show ID [--json]              one of them, with its reason.json
 *   release ID [--reason T]       put the kit back and import it again: verify
 *                                 checks it against today's trust (after a root
 *                                 update, a trusted key added); refused again,
 *                                 it is quarantined again and the command exits
 *                                 with the refusal's code
 *   rm ID --reason T              delete the kit for good (the record stays)
 *
 * ID is an import id or a unique prefix of one. release and rm are on the
 * audit trail (`stella ouk audit`).
 */
import type { Command } from 'commander';
import { findImports, quarantinedImports, type ImportRecord } from '../../infra/import-records.ts';
import { OukError } from '../../lib/errors.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import { readQuarantineReason, releaseQuarantined, removeQuarantined } from '../../functions/quarantine.ts';
import { ingestObject } from '../../queue/ingest.ts';
import { retryImport } from '../../queue/retry.ts';
import type { Pool } from '../../infra/db.ts';
import { audited, reasonOf } from '../audit.ts';
import type { CliContext } from '../context.ts';
import { followImport, importFailure, stageSummary } from '../import/follow.ts';
import { openCliPipeline } from '../import/pipeline.ts';

/** The one import `id` names among those in `states`, or QUARANTINE_NOT_FOUND. */
async function resolve(pool: Pool, id: string, states: readonly string[] = ['quarantined']): Promise<ImportRecord> {
  const found = /^[0-9a-f]{4,64}$/i.test(id) ? (await findImports(pool, id)).filter((r) => states.includes(r.state)) : [];
  if (found.length === 0) throw new OukError('QUARANTINE_NOT_FOUND', `no quarantined import ${id}: list them with \`stella ouk quarantine list\``);
  if (found.length > 1) throw new OukError('USAGE', `${id} matches ${found.length} quarantined imports (${found.map((f) => f.id).join(', ')}): give more of the id`);
  return found[0];
}

function summary(rec: ImportRecord): Record<string, unknown> {
  return {
    importId: rec.id,
    version: rec.version,
    key: rec.objectKey,
    quarantinedAs: rec.quarantineKey,
    quarantinedAt: rec.quarantinedAt?.toISOString() ?? null,
    code: rec.quarantineCode ?? rec.errorCode,
    message: rec.error,
    startedBy: rec.startedBy,
  };
}

export function registerOukQuarantine(ouk: Command, cli: CliContext): void {
  const q = ouk.command('quarantine').description('kits refused for integrity or policy, kept under quarantine/ in the bucket: list, show, release (verify again), rm');

  q.command('list')
    .description('the quarantined imports, newest first')
    .option('--json', 'machine-readable list on stdout', false)
    .action(async (opts: { json?: boolean }) => {
      const rows = await quarantinedImports(await cli.db());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows.map(summary), null, 2)}\n`);
        return;
      }
      if (!rows.length) {
        process.stdout.write('no kit is quarantined\n');
        return;
      }
      process.stdout.write(
        terminalLines(rows.map((r) => `${r.id}  ${r.quarantinedAt?.toISOString() ?? '?'}  ${r.quarantineCode ?? r.errorCode}  ${r.version ?? '-'}  ${r.quarantineKey}`)),
      );
    });

  q.command('show')
    .description('one quarantined import: why, when, how it arrived, where its kit is')
    .argument('<id>', 'the import id (or a unique prefix)')
    .option('--json', 'machine-readable on stdout', false)
    .action(async (id: string, opts: { json?: boolean }) => {
      const rec = await resolve(await cli.db(), id);
      const reason = await readQuarantineReason({ store: await cli.store() }, rec);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...summary(rec), reason }, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        terminalLines([
          `import       ${rec.id}`,
          `version      ${rec.version ?? '-'}`,
          `refused      ${rec.quarantineCode ?? rec.errorCode}: ${rec.error ?? ''}`,
          `quarantined  ${rec.quarantinedAt?.toISOString() ?? '?'} as ${rec.bucket}/${rec.quarantineKey}`,
          `arrived      ${reason?.via ?? rec.startedBy ?? 'unknown'}, as ${rec.objectKey}`,
          `objects      ${reason ? reason.objects.join(', ') : '(reason.json missing from the bucket)'}`,
          `next         fix the cause, then \`stella ouk quarantine release ${rec.id}\`; or \`stella ouk quarantine rm ${rec.id} --reason TEXT\``,
        ]),
      );
    });

  q.command('release')
    .description("put the kit back and import it again: verify checks it now, against today's trust")
    .argument('<id>', 'the import id (or a unique prefix)')
    .option('--reason <text>', 'why (on the audit trail)')
    .option('--no-wait', 'return once the import is queued again')
    .option('--json', 'machine-readable result on stdout', false)
    .option('--timeout <seconds>', 'give up following after this long', (v) => Number.parseInt(v, 10), 3600)
    .action(async (id: string, opts: { reason?: string; wait: boolean; json?: boolean; timeout: number }) => {
      const reason = reasonOf(opts.reason, false, 'quarantine release');
      const p = await openCliPipeline(cli);
      const rec = await resolve(p.pool, id);
      const logger = await cli.logger();
      const done = await audited(cli, { action: 'quarantine.release', target: rec.id, reason }, async () => {
        const back = await releaseQuarantined({ pool: p.pool, store: p.store, now: () => new Date(), logger }, rec.id);
        let importId = rec.id;
        if (back.etag === rec.etag) await retryImport(p.deps, rec.id);
        else {
          // The store gave the copy a new ETag: to the pipeline it is a new upload.
          importId = (await ingestObject(p.deps, { bucket: rec.bucket, key: rec.objectKey, etag: back.etag, size: back.size }, { allowDowngrade: rec.allowDowngrade, force: rec.force }, 'cli')).importId;
        }
        process.stderr.write(terminalLines([`released ${rec.quarantineKey} back to ${rec.objectKey}; import ${importId} checks it again`]));
        if (!opts.wait) return { importId, record: null };
        const followed = await followImport(p, importId, { tty: Boolean(process.stderr.isTTY) && !opts.json, timeoutSeconds: opts.timeout });
        if (followed.record.stages.activate?.state !== 'done') throw importFailure(followed.record);
        return { importId, record: followed.record };
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(done.record ? { importId: done.importId, version: done.record.version, state: done.record.state, stages: stageSummary(done.record) } : { importId: done.importId, state: 'queued' }, null, 2)}\n`);
      else process.stdout.write(terminalLines([done.record ? `activated ${done.record.version}` : done.importId]));
    });

  q.command('rm')
    .description('delete a quarantined kit for good (the import record stays, as removed)')
    .argument('<id>', 'the import id (or a unique prefix)')
    .option('--reason <text>', 'why (required: on the audit trail)')
    .option('--json', 'machine-readable result on stdout', false)
    .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
      const reason = reasonOf(opts.reason, true, 'quarantine rm');
      const pool = await cli.db({ migrate: true });
      const rec = await resolve(pool, id, ['quarantined', 'removed']);
      const store = await cli.store();
      const logger = await cli.logger();
      const removed = await audited(cli, { action: 'quarantine.rm', target: rec.id, reason }, () => removeQuarantined({ pool, store, now: () => new Date(), logger }, rec.id));
      process.stdout.write(opts.json ? `${JSON.stringify(summary(removed), null, 2)}\n` : terminalLines([`removed ${rec.bucket}/${removed.quarantineKey} (import ${rec.id})`]));
    });
}
