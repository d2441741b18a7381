import type { Command } from 'commander';
import { registerOukKeygen } from './ouk-keygen.ts';
import { registerOukBuild } from './ouk-build.ts';
import { registerOukVerify } from './ouk-verify.ts';
import { registerOukJobs } from './ouk-jobs.ts';
import { registerOukPipeline } from './ouk-pipeline.ts';
import { registerScan } from './scan.ts';
import { registerToken } from './token.ts';

/** Every command module; each adds its subcommands to `stella` or `stella ouk`. */
export function registerCommands(program: Command): void {
  const ouk = program.command('ouk').description('build, verify and import Offline Update Kit bundles');
  void ouk;
  registerOukKeygen(ouk);
  registerOukBuild(ouk);
  registerOukVerify(ouk);
  registerOukJobs(ouk);
  registerOukPipeline(ouk);
  registerScan(program);
  registerToken(program);
}
