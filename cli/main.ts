/**
 * The `stella` command line. Each command lives in cli/commands/<name>.ts and
 * registers itself on the program (loaded only when it runs: see
 * cli/commands/index.ts); errors become one line
 * (`error[CODE]: what happened and what to do`) and the code's exit status.
 *
 * The process's environment is resolved here, once (infra/env.ts), into the
 * `CliContext` every command is given (cli/context.ts): its configuration and
 * its connections, opened on first use and closed here when the command ends.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { resolveEnv } from '../infra/env.ts';
import { enforceAirgap } from '../lib/airgap.ts';
import { describeError, exitCodeOf } from '../lib/errors.ts';
import { terminalLines } from '../lib/terminal-text.ts';
import { registerCommands } from './commands/index.ts';
import { createCliContext, type CliContext } from './context.ts';

/** This package's version (package.json), for `stella --version`. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** The program with the commands `argv` needs (all of them when `argv` names none), each given `cli`. */
export async function buildProgram(cli: CliContext, argv: string[] = []): Promise<Command> {
  const program = new Command('stella')
    .description('Stella OUK: offline vulnerability-DB kits for air-gapped scanners')
    .enablePositionalOptions() // stella's own options go before the command: `ouk build --version TAG` is the kit's
    .version(packageVersion(), '-V, --version', 'print the version of stella')
    .showHelpAfterError()
    .exitOverride();
  await registerCommands(program, cli, argv);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let cli: CliContext | undefined;
  try {
    cli = createCliContext(resolveEnv());
    const program = await buildProgram(cli, argv);
    // STELLA_AIRGAP=true: from here on, no connection to any host but the
    // configured Redis, PostgreSQL and object store (lib/airgap.ts).
    enforceAirgap(cli.config);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; parse errors were already printed by commander
      return e.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(describeError(e) + '\n');
    // the stack's frames (its first line repeats the message describeError printed, escaped)
    if (cli?.config.debug && e instanceof Error) process.stderr.write(terminalLines((e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l))));
    return exitCodeOf(e);
  } finally {
    await cli?.close();
  }
}
