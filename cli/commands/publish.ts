/**
 * `stella publish --feeds DIR --key KEY [--key KEY2 ...] --mirror M [--full-every 7d]
 *  [--keep-days 30] [--expires-days 45] [--torrent [--public-url URL]] [--root R ...]
 *  [--version TAG] [--notes-ids N] [--json]`
 *
 * Tonight's kit into the mirror directory (publisher/publish/): a delta on
 * the newest full DB, a full kit on the roll-up (or when the mirror has
 * none), signatures and attestation beside each kit, release notes
 * (`stella-ouk-V[-full].md`/`.json`), with --torrent a `.torrent` whose web
 * seed is the mirror (`--public-url`, else OUK_MIRROR_PUBLIC_URL), then
 * index.json, then pruning. One publish per mirror at a time
 * (PUBLISH_LOCKED); refuses with STELLA_AIRGAP=true.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { publishEnv } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import {
  DEFAULT_FULL_EVERY_DAYS,
  DEFAULT_KEEP_DAYS,
  DEFAULT_NOTES_ID_LIMIT,
  DEFAULT_PUBLISH_EXPIRES_DAYS,
  parseDays,
  parsePublicUrl,
  publish,
  type PublishResult,
} from '../../publisher/publish/index.ts';
import type { CliContext } from '../context.ts';

interface PublishCliOptions {
  feeds: string;
  key: string[];
  mirror: string;
  fullEvery: string;
  keepDays: string;
  expiresDays: string;
  torrent: boolean;
  publicUrl?: string;
  root: string[];
  version?: string;
  notesIds: string;
  json: boolean;
}

function notesIds(raw: string): number {
  if (!/^\d{1,6}$/.test(raw)) throw new OukError('USAGE', `--notes-ids ${raw} is not a whole number from 0 to 999999`);
  return Number(raw);
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function list(title: string, c: { count: number; ids: string[] }): string {
  const shown = c.ids.slice(0, 5).join(', ');
  return `${c.count} ${title}${c.count ? ` (${shown}${c.count > 5 ? ', …' : ''})` : ''}`;
}

export function formatPublish(r: PublishResult): string {
  if (r.status === 'unchanged') return terminalLines([`nothing published in ${r.mirror}`, ...r.reasons.map((x) => `  ${x}`)]);
  const lines = [`published ${r.version} in ${r.mirror}${r.previous ? ` (previous ${r.previous})` : ''}`];
  for (const x of r.reasons) lines.push(`  ${x}`);
  for (const k of r.kits) {
    const e = k.entry;
    lines.push(`  ${e.kind.padEnd(5)} ${e.file} ${e.size} bytes sha256:${e.sha256}${e.base ? ` on ${e.base.version}` : ''}`);
    lines.push(`        notes ${path.basename(k.notes.md)}, ${path.basename(k.notes.json)}${k.torrent ? `; torrent ${path.basename(k.torrent)}` : ''}`);
  }
  if (r.changes) lines.push(`  advisories since ${r.previous ?? 'nothing'}: ${list('added', r.changes.added)}, ${list('modified', r.changes.modified)}, ${list('withdrawn', r.changes.withdrawn)}`);
  lines.push(`  index ${r.index}${r.pruned.length ? `; pruned ${r.pruned.join(', ')}` : ''}`);
  if (r.tookOverLock) lines.push(`  took over a stale lock (${r.tookOverLock})`);
  return terminalLines(lines);
}

export function registerPublish(program: Command, cli: CliContext): void {
  program
    .command('publish')
    .description("build tonight's kit into a mirror directory: a delta on the newest full DB, a full kit on the roll-up, release notes, index.json, pruning")
    .requiredOption('--feeds <dir>', 'the feeds directory (stella feeds sync --out DIR)')
    .requiredOption('--key <key>', 'kit signing key (PKCS#8 PEM; STELLA_KEY_PASSWORD decrypts it); repeat it for each kit key', collect, [])
    .requiredOption('--mirror <dir>', 'the mirror directory (created when missing), served as it is by any HTTP server')
    .option('--full-every <days>', 'publish a full kit when the newest one is this old (7d, 2w, 10)', `${DEFAULT_FULL_EVERY_DAYS}d`)
    .option('--keep-days <days>', 'prune kits older than this, keeping every kept version reachable from a kept full kit', String(DEFAULT_KEEP_DAYS))
    .option('--expires-days <days>', 'days each kit stays valid: more than --keep-days + --full-every', String(DEFAULT_PUBLISH_EXPIRES_DAYS))
    .option('--torrent', 'write a .torrent per kit with the mirror as web seed', false)
    .option('--public-url <url>', 'with --torrent: the address the mirror is served at (default: OUK_MIRROR_PUBLIC_URL)')
    .option('--root <root.json>', 'a newer root of trust to carry in the kits (repeatable; see stella trust rotate)', collect, [])
    .option('--version <tag>', "the kit version, YYYY-MM-DD[.N] (default: today, UTC, or the next .N when the mirror has today's)")
    .option('--notes-ids <n>', 'advisory ids listed per kind (added, modified, withdrawn) in the release notes; counts are always whole', String(DEFAULT_NOTES_ID_LIMIT))
    .option('--json', 'the result as JSON', false)
    .action(async (opts: PublishCliOptions) => {
      const { config } = cli;
      const env = publishEnv(cli.env);
      const result = await publish({
        feedsDir: opts.feeds,
        keyPaths: opts.key,
        mirror: opts.mirror,
        roots: opts.root,
        settings: { fullEveryDays: parseDays(opts.fullEvery, '--full-every'), keepDays: parseDays(opts.keepDays, '--keep-days'), expiresDays: parseDays(opts.expiresDays, '--expires-days') },
        torrent: opts.torrent ? { publicUrl: parsePublicUrl(opts.publicUrl ?? env.publicUrl) } : undefined,
        version: opts.version,
        idLimit: notesIds(opts.notesIds),
        airgap: config.airgap,
        password: config.keyPassword,
        sourceDateEpoch: config.sourceDateEpoch,
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : formatPublish(result));
    });
}
