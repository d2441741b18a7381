/**
 * The API and the worker as real processes (`api/main.ts`, `queue/worker-main.ts`
 * through tsx), their output in a log file the test prints when it fails.
 *
 *   const worker = startService('worker', env, dir);
 *   ... worker.log() ...
 *   await worker.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './services.ts';

export interface ServiceProcess {
  child: ChildProcess;
  /** The last `chars` of its output. */
  log(chars?: number): string;
  /** SIGTERM, then SIGKILL after 20 s. */
  stop(): Promise<void>;
}

export function startService(name: 'api' | 'worker', env: NodeJS.ProcessEnv, dir: string): ServiceProcess {
  const file = path.join(dir, `${name}.log`);
  const fd = fs.openSync(file, 'a');
  const entry = name === 'api' ? 'api/main.ts' : 'queue/worker-main.ts';
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  return {
    child,
    log: (chars = 6000) => `--- ${name}\n${fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(-chars) : ''}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(20_000).then(() => child.kill('SIGKILL'))]);
    },
  };
}
