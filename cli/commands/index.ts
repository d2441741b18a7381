/**
 * Every command of `stella`, and where it lives. A command module is imported
 * only when its command runs (or for the full help listing): `stella ouk
 * verify` does not load BullMQ, PostgreSQL or the scanner, so it starts in a
 * fraction of the time.
 *
 * Each entry names the words that select it (`ouk verify`) and the module that
 * registers it on `stella` (group: ''), `stella ouk` (group: 'ouk') or
 * `stella sbom` (group: 'sbom'), `stella feeds` (group: 'feeds') or `stella auth` (group: 'auth'). A command is given the process's
 * `CliContext` (cli/context.ts) along with its parent: its configuration and
 * its connections come from there, never from the environment.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

type Register = (parent: Command, cli: CliContext) => void;

interface CommandEntry {
  group: '' | 'ouk' | 'sbom' | 'feeds' | 'auth';
  name: string;
  load(): Promise<Register>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { group: 'ouk', name: 'keygen', load: async () => (await import('./ouk-keygen.ts')).registerOukKeygen },
  { group: 'ouk', name: 'build', load: async () => (await import('./ouk-build.ts')).registerOukBuild },
  { group: 'ouk', name: 'verify', load: async () => (await import('./ouk-verify.ts')).registerOukVerify },
  { group: 'ouk', name: 'import', load: async () => (await import('./ouk-import.ts')).registerOukImport },
  { group: 'ouk', name: 'status', load: async () => (await import('./ouk-status.ts')).registerOukStatus },
  { group: 'ouk', name: 'jobs', load: async () => (await import('./ouk-jobs.ts')).registerOukJobs },
  { group: 'ouk', name: 'retry', load: async () => (await import('./ouk-retry.ts')).registerOukRetry },
  { group: 'ouk', name: 'rollback', load: async () => (await import('./ouk-rollback.ts')).registerOukRollback },
  { group: 'ouk', name: 'images', load: async () => (await import('./ouk-images.ts')).registerOukImages },
  { group: 'ouk', name: 'gc', load: async () => (await import('./ouk-gc.ts')).registerOukGc },
  { group: 'ouk', name: 'quarantine', load: async () => (await import('./ouk-quarantine.ts')).registerOukQuarantine },
  { group: 'ouk', name: 'audit', load: async () => (await import('./ouk-audit.ts')).registerOukAudit },
  { group: 'ouk', name: 'mirror', load: async () => (await import('./ouk-mirror.ts')).registerOukMirror },
  { group: '', name: 'scan', load: async () => (await import('./scan.ts')).registerScan },
  { group: '', name: 'token', load: async () => (await import('./token.ts')).registerToken },
  { group: '', name: 'trust', load: async () => (await import('./trust.ts')).registerTrust },
  { group: 'sbom', name: 'add', load: async () => (await import('./sbom.ts')).registerSbomAdd },
  { group: 'sbom', name: 'list', load: async () => (await import('./sbom.ts')).registerSbomList },
  { group: 'sbom', name: 'rm', load: async () => (await import('./sbom.ts')).registerSbomRm },
  { group: 'sbom', name: 'diff', load: async () => (await import('./sbom.ts')).registerSbomDiff },
  { group: 'sbom', name: 'status', load: async () => (await import('./sbom.ts')).registerSbomStatus },
  { group: '', name: 'publish', load: async () => (await import('./publish.ts')).registerPublish },
  { group: 'feeds', name: 'sync', load: async () => (await import('./feeds.ts')).registerFeedsSync },
  { group: 'auth', name: 'test-ldap', load: async () => (await import('./auth.ts')).registerAuthTestLdap },
];

/** The entries `argv` selects: the one its command words name, or all of them (help, an unknown command). */
export function selectCommands(argv: string[]): readonly CommandEntry[] {
  if (argv[2] === '--version' || argv[2] === '-V') return []; // `stella --version` needs no command (`ouk build --version TAG` is the kit's)
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  const hit = COMMANDS.filter((c) => (c.group === '' ? words[0] === c.name : words[0] === c.group && words[1] === c.name));
  return hit.length === 1 ? hit : COMMANDS;
}

/** Registers the commands `argv` needs on `program` (`stella ouk`, `stella sbom`, `stella feeds` and `stella auth` as groups), each given `cli`. */
export async function registerCommands(program: Command, cli: CliContext, argv: string[] = []): Promise<void> {
  const groups: Record<CommandEntry['group'], Command> = {
    '': program,
    ouk: program.command('ouk').description('build, verify and import Offline Update Kit bundles'),
    sbom: program.command('sbom').description('stored SBOMs, re-scanned after every activation, with the diff of their findings'),
    feeds: program.command('feeds').description('the publisher: fetch the upstream feeds (NVD, OSV, GHSA, KEV, EPSS, EUVD) into a feeds directory'),
    auth: program.command('auth').description('signing in: check the directory (LDAP, Active Directory) configuration'),
  };
  for (const entry of selectCommands(argv)) (await entry.load())(groups[entry.group], cli);
}
