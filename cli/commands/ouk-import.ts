/**
 * `stella ouk import FILE|URL [--dry-run] [--allow-downgrade|--force --reason TEXT] [--no-wait] [--json]`
 *
 * An override (--allow-downgrade, --force) requires --reason (REASON_REQUIRED
 * otherwise) and writes one audit row each, with the import's outcome.
 *
 *  1. preflight: the manifest (read from the start of the tarball) against the
 *     free space of the object store and of PostgreSQL (INSUFFICIENT_SPACE);
 *  2. uploads the files beside it first (when present: FILE.sig,
 *     FILE.sigs.json — every kit key's signature —, FILE.sigstore.json,
 *     FILE.intoto.json — the release attestation), then the
 *     tarball, streamed with its known size (a URL — an intranet mirror over
 *     HTTP/S — is streamed too, or spooled to a temporary file when the server
 *     sends no Content-Length: the store needs the size up front);
 *  3. ingests the object itself (idempotent: works with or without bucket
 *     notifications), with the flags stored on the import;
 *  4. follows verify → unpack → load → activate with a progress bar per stage,
 *     and ends with `activated <version>` (exit 0), or the failing stage and
 *     its reason (exit code = the error's code, see docs/exit-codes.md).
 *
 * Importing a bundle that failed before retries it from its failed stage. One
 * that was quarantined is refused from its record, unless the override that
 * lifts its refusal is given, or its refusal came from the files beside it or
 * the site's trust (lib/quarantine.ts REVERIFIED_ON_IMPORT): then it is
 * verified again with the files uploaded beside it now (a
 * `quarantine.release` audit row).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { getImport, isReplaced, type ImportRecord } from '../../infra/import-records/index.ts';
import { exitCodeOf, isOukError, OukError, type ErrorCode } from '../../lib/errors.ts';
import { REVERIFIED_ON_IMPORT } from '../../lib/quarantine.ts';
import type { ImagesResult } from '../../functions/images.ts';
import type { VerifyResult } from '../../functions/verify.ts';
import { verifiedLines } from '../import/verified-lines.ts';
import { ingestObject } from '../../queue/ingest.ts';
import { LIFTED_BY } from '../../queue/flow.ts';
import { releaseQuarantined } from '../../functions/quarantine/quarantine.ts';
import { reactivateImport, retryImport } from '../../queue/retry.ts';
import { readActivePointer } from '../../infra/active-db.ts';
import { followImport, imagesFailure, importFailure, stageSummary } from '../import/follow.ts';
import type { CliContext } from '../context.ts';
import { openCliPipeline } from '../import/pipeline.ts';
import { requireBucket } from '../import/bucket.ts';
import { readManifestOf, sourceOf, type Source } from '../import/source.ts';
import { downloadKit, type DownloadedKit } from '../import/download.ts';
import { DryRunRefusal, dryRunImport, dryRunJson, dryRunLines, dryRunRefusalJson } from '../import/dry-run.ts';
import { openDryRunSite } from '../import/dry-run-site.ts';
import { preflight, uploadSmall, uploadTarball, type Say } from '../import/upload.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import { audited, reasonOf } from '../audit.ts';
import { BOTH_TRUSTS_WARNING } from '../../signing/index.ts';

interface ImportOptions {
  dryRun?: boolean;
  allowDowngrade?: boolean;
  force?: boolean;
  /** required with --allow-downgrade or --force: on the audit trail */
  reason?: string;
  wait: boolean;
  json?: boolean;
  timeout: number;
}

export async function runImport(cli: CliContext, arg: string, opts: ImportOptions): Promise<number> {
  const src = sourceOf(arg);
  if (!src.isUrl && !fs.existsSync(arg)) throw new OukError('INPUT_NOT_FOUND', `${arg} does not exist`);
  if (opts.dryRun) return runDryRun(cli, src, opts);
  const tty = Boolean(process.stderr.isTTY) && !opts.json;
  // what the CLI says carries versions, keys and error codes from the kit and the record: each line escaped
  const say: Say = { info: (line) => process.stderr.write(terminalLines([line])) };
  const p = await openCliPipeline(cli);
  await requireBucket(p.store, p.config);

  if (p.config.trustRoot && p.config.trustedKeys.length) say.info(`warning: ${BOTH_TRUSTS_WARNING}`);
  const manifest = await readManifestOf(src);
  if (manifest) {
    const size = src.isUrl ? 0 : fs.statSync(src.name).size;
    const check = await preflight(p, manifest, size);
    for (const n of check.notes) say.info(`preflight: ${n}`);
    say.info(`bundle ${manifest.bundleVersion} (${manifest.kind}), ${manifest.members.length} members`);
  } else {
    say.info('preflight: could not read the manifest ahead of the upload; space not checked (verify will still check everything)');
  }

  const sig = await uploadSmall(p, src, '.sig', say);
  const sigs = await uploadSmall(p, src, '.sigs.json', say);
  // Against a root FILE.sigs.json alone is enough; bare keys (OUK_TRUSTED_KEYS) read FILE.sig only.
  if (p.config.trustRoot ? !sig && !sigs : !sig) {
    const what = p.config.trustRoot ? `${src.key}.sigs.json (or ${src.key}.sig)` : `${src.key}.sig`;
    say.info(`warning: no ${what} beside the tarball: verify refuses the import until it is in bucket ${p.config.bucket} (it resumes by itself once it arrives)`);
  }
  await uploadSmall(p, src, '.sigstore.json', say);
  await uploadSmall(p, src, '.intoto.json', say);
  const up = await uploadTarball(p, src, tty);
  say.info(`uploaded ${src.key} (${up.size} bytes) to bucket ${p.config.bucket}`);

  const flags = { allowDowngrade: opts.allowDowngrade, force: opts.force };
  const ing = await ingestObject(p.deps, { bucket: p.config.bucket, key: src.key, etag: up.etag, size: up.size }, flags, 'cli');
  const before = await getImport(p.pool, ing.importId);
  if (!ing.created && before && isReplaced(before.state)) {
    // Imported before and no longer active: never answer "activated" for a kit that is not.
    if (!opts.allowDowngrade) {
      const active = (await readActivePointer(p.pool)).activeVersion;
      throw new OukError(
        'DOWNGRADE_REFUSED',
        `bundle ${before.version} was imported before and is now ${before.state}; the active DB is ${active ?? 'none'}, and ${before.version} was NOT activated — pass --allow-downgrade to make it the active DB again (or use \`stella ouk rollback\`)`,
      );
    }
    say.info(`bundle ${before.version} was imported before and is now ${before.state}: activating it again (--allow-downgrade)`);
    await reactivateImport(p.deps, ing.importId);
  } else if (!ing.created && before?.state === 'quarantined') {
    // Refused and quarantined before: only the override that lifts its refusal imports it again (released from quarantine).
    // Refused for its signature files or the site's trust: the files uploaded beside it now are verified again.
    const lifted = before.errorCode ? LIFTED_BY[before.errorCode] : undefined;
    const deps = { pool: p.pool, store: p.store, now: () => new Date(), logger: await cli.logger() };
    if (lifted && flags[lifted]) {
      say.info(`this kit was quarantined (${before.errorCode}); ${lifted === 'force' ? '--force' : '--allow-downgrade'} lifts that: importing it again`);
      await releaseQuarantined(deps, ing.importId);
    } else if (before.errorCode && REVERIFIED_ON_IMPORT.has(before.errorCode as ErrorCode)) {
      say.info(`this kit was quarantined (${before.errorCode}); verifying it again with the files beside it now`);
      await audited(cli, { action: 'quarantine.release', target: ing.importId, reason: opts.reason?.trim() || 'imported again with the files beside it' }, () =>
        releaseQuarantined(deps, ing.importId, { inPlace: true }),
      );
    } else throw importFailure(before);
    await retryImport(p.deps, ing.importId);
  } else if (!ing.created && before?.state === 'failed' && !ing.retried) {
    say.info(`this bundle failed before (${before.errorCode}); retrying it from its failed stage`);
    await retryImport(p.deps, ing.importId);
  }
  say.info(`import ${ing.importId}${origin(ing.created, before)}`);
  if (!opts.wait) {
    process.stdout.write(opts.json ? `${JSON.stringify({ importId: ing.importId, key: src.key, state: before?.state ?? 'queued' })}\n` : `${ing.importId}\n`);
    return 0;
  }

  const done = await followImport(p, ing.importId, { tty, timeoutSeconds: opts.timeout, flags });
  const rec = done.record;
  if (rec.stages.activate?.state !== 'done') throw importFailure(rec);
  const already = !ing.created && before?.state === 'active';
  const verified = rec.stages.verify?.result as VerifyResult | null | undefined;
  for (const line of verifiedLines(verified)) say.info(line);
  // How the load went about a full kit: whole, or its difference onto the DB of its lineage.
  const loadMode = (rec.stages.load?.result as { mode?: unknown } | null | undefined)?.mode;
  if (typeof loadMode === 'string') say.info(`load: ${loadMode}`);
  if (opts.json) {
    const trust = { trust: verified?.trust ?? null, attestation: verified?.attestation ?? null };
    process.stdout.write(`${JSON.stringify({ importId: rec.id, version: rec.version, kind: rec.kind, state: rec.state, already, stages: stageSummary(rec), ...trust }, null, 2)}\n`);
  } else {
    process.stdout.write(terminalLines([`activated ${rec.version}${already ? ' (it was already the active DB)' : ''}`]));
    const pushed = rec.stages.images?.state === 'done' ? (rec.stages.images.result as ImagesResult | null) : null;
    if (pushed?.skipped) {
      if (pushed.images.length) process.stdout.write(terminalLines([`images: ${pushed.skipped}`])); // a kit without images says nothing about them
    }
    else if (pushed) for (const i of pushed.images) process.stdout.write(terminalLines([`image ${i.repository}:${i.tag} ${i.indexDigest} pushed (${i.blobs.pushed} blobs pushed, ${i.blobs.skipped} already held)`]));
  }
  if (rec.stages.images?.state === 'failed') throw imagesFailure(rec);
  return 0;
}

/**
 * `--dry-run`: every check of the import (cli/import/dry-run.ts) against the
 * site opened read-only; a URL is downloaded to a temporary directory, removed
 * at the end. Prints what the import would do (or its refusal) and returns
 * the import's exit code.
 */
async function runDryRun(cli: CliContext, src: Source, opts: ImportOptions): Promise<number> {
  const warn = (line: string): void => void process.stderr.write(terminalLines([line]));
  const flags = { allowDowngrade: Boolean(opts.allowDowngrade), force: Boolean(opts.force) };
  const checks: string[] = [];
  let downloaded: DownloadedKit | null = null;
  try {
    const site = await openDryRunSite(cli, src.key, flags, warn, checks);
    if (src.isUrl) downloaded = await downloadKit(src);
    const report = await dryRunImport(src.key, await site.depsFor(downloaded?.file ?? src.name), site);
    if (opts.json) process.stdout.write(`${JSON.stringify(dryRunJson(report), null, 2)}\n`);
    else process.stdout.write(terminalLines(dryRunLines(report)));
    return 0;
  } catch (e) {
    const refusal = e instanceof DryRunRefusal ? e : isOukError(e) ? new DryRunRefusal(e, checks) : null;
    if (!refusal) throw e;
    if (opts.json) process.stdout.write(`${JSON.stringify(dryRunRefusalJson(refusal, exitCodeOf(refusal.error)), null, 2)}\n`);
    process.stderr.write(terminalLines(['dry run: the import would be refused; nothing was uploaded, queued or written']));
    throw refusal.error;
  } finally {
    await downloaded?.remove();
  }
}

/** What the import line adds about where the import came from. */
function origin(created: boolean, rec: ImportRecord | null): string {
  if (created || !rec) return '';
  if (rec.startedBy === 'webhook' && rec.state !== 'active') return ' (started by the bucket notification for this upload)';
  if (rec.startedBy === 'reconciler' && rec.state !== 'active') return ' (found in the bucket by the reconciler)';
  return ` (imported before: ${rec.state})`;
}

export function registerOukImport(ouk: Command, cli: CliContext): void {
  ouk
    .command('import')
    .description('upload a bundle (FILE or http(s) URL) with its signature files and follow verify → unpack → load → activate')
    .argument('<file-or-url>', 'the bundle tarball (*.tar.gz), a path or an intranet mirror URL')
    .option('--dry-run', 'make every check of the import (services, space, signatures, policy, members) and say what it would do; nothing is uploaded, queued or written; exits with the code the import would', false)
    .option('--allow-downgrade', 'accept a bundle not newer than the active DB', false)
    .option('--force', 'accept an expired bundle', false)
    .option('--reason <text>', 'why (required with --allow-downgrade or --force; on the audit trail, `stella ouk audit`)')
    .option('--no-wait', 'return once the import is queued (prints its id)')
    .option('--json', 'machine-readable result on stdout', false)
    .option('--timeout <seconds>', 'give up following after this long', (v) => Number.parseInt(v, 10), 3600)
    .action(async (arg: string, opts: ImportOptions) => {
      const overrides = [...(opts.allowDowngrade ? (['import.allow-downgrade'] as const) : []), ...(opts.force ? (['import.force'] as const) : [])];
      // An override is on the record or does not happen: --reason first, then one audit row per override, with the import's outcome.
      const reason = reasonOf(opts.reason, overrides.length > 0, overrides.map((o) => `--${o.slice('import.'.length)}`).join(' and ') || 'import');
      let run = (): Promise<number> => runImport(cli, arg, opts);
      // A dry run changes nothing, so it writes no audit row; it still asks for the reason, as the import would.
      for (const action of opts.dryRun ? [] : overrides) {
        const inner = run;
        run = () => audited(cli, { action, target: path.basename(sourceOf(arg).key), reason }, inner);
      }
      process.exitCode = await run();
    });
}
