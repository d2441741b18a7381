/**
 * The `stella` command line. Each command lives in cli/commands/<name>.ts and
 * registers itself on the program (loaded only when it runs: see
 * cli/commands/index.ts); errors become one line
 * (`error[CODE]: what happened and what to do`) and the code's exit status.
 *
 * The process's environment is resolved here, once (infra/env.ts), into the
 * `CliContext` every command is given (cli/context.ts): its configuration and
 * its connections, opened on first use and closed here when the command ends.
 *
 * Started by bin/stella.js (the package's bin), or directly:
 * `node dist/cli/main.js …` (the build), `node --import tsx cli/main.ts …`.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { resolveEnv } from '../infra/env.ts';
import { enforceAirgap } from '../lib/airgap.ts';
import { describeError, exitCodeOf } from '../lib/errors.ts';
import { packageVersion } from '../lib/package-version.ts';
import { terminalLines } from '../lib/terminal-text.ts';
import { registerCommands } from './commands/index.ts';
import { createCliContext, type CliContext } from './context.ts';

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

/** Whether this module is the process's entry point (`node dist/cli/main.js`), not imported by bin/stella.js. */
function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv);
