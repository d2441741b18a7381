/**
 * `npm run dev:down`: stops exactly what `npm run dev:up` started — the
 * processes recorded in .stella/run/*.pid (workers first, then the API, then
 * s3rver). The system Redis and PostgreSQL are left running; data under
 * .stella/ (objects, keys, logs) is kept.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { devPaths, loadDotEnv } from '../infra/env.ts';
import { printTable, readPid, recordedServices, stopService } from './services.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function order(name: string): number {
  if (name.startsWith('worker')) return 0;
  if (name === 'api') return 1;
  if (name === 's3rver') return 3;
  return 2;
}

async function main(): Promise<number> {
  process.chdir(repoRoot);
  loadDotEnv(path.join(repoRoot, '.env'));
  const paths = devPaths(process.env, repoRoot);
  const names = recordedServices(paths).sort((a, b) => order(a) - order(b) || a.localeCompare(b));
  const rows: string[][] = [['SERVICE', 'PID', 'STATE']];
  for (const name of names) {
    const pid = readPid(paths, name)?.pid;
    const state = await stopService(paths, name);
    rows.push([name, pid ? String(pid) : '-', state]);
  }
  if (names.length === 0) {
    console.log(`dev:down: nothing to stop (no pid files in ${paths.runDir}).`);
    return 0;
  }
  printTable(rows);
  console.log(`Redis and PostgreSQL were left running; objects, keys and logs are kept in ${paths.stateDir}.`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`dev:down: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
