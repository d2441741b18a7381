/**
 * `stella ouk mirror pull [--dry-run] [--json]`: one round of the
 * intranet-mirror pull by hand (functions/mirror/pull.ts; the maintenance queue's
 * `mirror` job runs the same on OUK_MIRROR_SCHEDULE). Prints the plan — the
 * route (delta chain, newest full kit, …) and each step — then, without
 * --dry-run, pulls, verifies and puts each kit into the bucket and waits until
 * it is active before the next (the workers import it). With --dry-run it only
 * reads the mirror's index.json and PostgreSQL: nothing is downloaded or put.
 * Exits non-zero with the error's code when a kit is refused or fails.
 */
import type { Command } from 'commander';
import { mirrorPull, STUCK_ROUTES, type MirrorPlan, type MirrorPullResult } from '../../functions/mirror/pull.ts';
import { loadSiteTrust } from '../../functions/common/site-trust.ts';
import { loadTrustedKeys } from '../../signing/index.ts';
import { OukError } from '../../lib/errors.ts';
import { ingestObject } from '../../queue/ingest.ts';
import { retryImport } from '../../queue/retry.ts';
import type { CliContext } from '../context.ts';
import { openCliPipeline } from '../import/pipeline.ts';
import { terminalLines } from '../../lib/terminal-text.ts';

const ROUTE: Record<MirrorPlan['route'], string> = {
  'up-to-date': 'up to date: the mirror has nothing newer',
  'delta-chain': 'the chain of deltas from the active DB',
  full: 'the newest full kit, then the deltas on top of it',
  'partial-chain': 'the part of the delta chain that applies',
  'nothing-applies': 'nothing applies',
  'ahead-of-mirror': 'the site is ahead of the mirror: nothing can be pulled',
};

export function describePlan(plan: MirrorPlan, mirror: string): string {
  const lines = [`mirror ${mirror}: active ${plan.active ?? 'none'}, newest offered ${plan.newest ?? '-'}: ${ROUTE[plan.route]}`];
  for (const [i, s] of plan.steps.entries()) lines.push(`  ${i + 1}. ${s.action.padEnd(7)} ${s.entry.file}  ${s.why}`);
  for (const n of plan.notes) lines.push(`  note: ${n}`);
  return terminalLines(lines); // file names and versions from the mirror's index.json, escaped
}

export function describeResult(r: MirrorPullResult): string {
  const lines: string[] = [];
  for (const a of r.applied) lines.push(`activated ${a.version} (${a.kind}, ${a.file}, import ${a.importId})`);
  if (r.pending) lines.push(`pending: ${r.pending}`);
  const active = `active ${r.activeAfter ?? 'none'}`;
  if (STUCK_ROUTES.has(r.plan.route)) lines.push(`${active}: nothing pulled — ${ROUTE[r.plan.route]} (the mirror's newest: ${r.plan.offered ?? 'none'})`);
  else lines.push(r.done ? `${active}: up to date with the mirror` : active);
  return terminalLines(lines);
}

export function registerOukMirror(ouk: Command, cli: CliContext): void {
  const mirror = ouk.command('mirror').description('the intranet mirror (OUK_MIRROR_URL): kits pulled on OUK_MIRROR_SCHEDULE by the workers');
  mirror
    .command('pull')
    .description('one round by hand: plan from index.json, download, verify against the site root of trust (OUK_TRUST_ROOT) or OUK_TRUSTED_KEYS, put into the bucket, wait for each kit to be active')
    .option('--dry-run', 'print the plan, download and change nothing', false)
    .option('--json', 'machine-readable result on stdout', false)
    .action(async (opts: { dryRun: boolean; json: boolean }) => {
      const p = await openCliPipeline(cli);
      const cfg = p.config.mirror;
      if (!cfg) throw new OukError('MIRROR_NOT_CONFIGURED', 'OUK_MIRROR_URL is not set: set it to the intranet directory holding the kits and their index.json (e.g. http://mirror.intranet:8000/stella/)');
      const r = await mirrorPull(
        {
          pool: p.pool,
          store: p.store,
          bucket: p.config.bucket,
          mirror: cfg,
          trustedKeys: () => loadTrustedKeys(p.config.trustedKeys),
          trust: async () => (await loadSiteTrust(p.config, { pool: p.pool, trustedKeys: () => loadTrustedKeys(p.config.trustedKeys) })).state,
          requireAttestation: p.config.requireAttestation,
          cryptoPolicy: p.config.cryptoPolicy,
          ingest: (obj) => ingestObject(p.deps, obj, {}, 'mirror'),
          retry: async (id) => {
            await retryImport(p.deps, id);
          },
          logger: await cli.logger(),
          now: () => new Date(),
        },
        // A scheduled round under way ends first: by hand, the operator waits for it rather than get `pending`.
        { dryRun: opts.dryRun, lockWaitMs: cfg.waitSeconds * 1000 },
      );
      if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else process.stdout.write(describePlan(r.plan, r.mirror) + (opts.dryRun ? 'dry run: nothing downloaded, nothing put into the bucket\n' : describeResult(r)));
      // A round that can pull nothing while the site is not up to date with the mirror is not fine: say so where warnings go.
      if (STUCK_ROUTES.has(r.plan.route)) process.stderr.write(`warning: ${r.plan.notes.at(-1) ?? ROUTE[r.plan.route]}\n`);
    });
}
