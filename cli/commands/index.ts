import type { Command } from 'commander';

/** Every command module; each adds its subcommands to `stella` or `stella ouk`. */
export function registerCommands(program: Command): void {
  const ouk = program.command('ouk').description('build, verify and import Offline Update Kit bundles');
  void ouk;
}
