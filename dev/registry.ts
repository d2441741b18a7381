/**
 * A local OCI registry: Debian's `docker-registry` package (the reference
 * distribution server, what `registry:2` runs in compose) serving from a
 * directory on a loopback port, for `npm run dev:up` and the tests.
 *
 *   const reg = await startRegistry({ directory, port })   → reg.url = http://127.0.0.1:<port>
 *   await reg.stop(); await reg.start();                    (same port, same storage)
 *
 * Its configuration is written beside its storage (filesystem driver, deletes
 * enabled, no auth unless `auth` gives the section, log level `error`); `serve` runs in the foreground as a
 * child of this process, or detached (dev:up) with its output in a log file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryOptions {
  /** storage root; the config file is written here too */
  directory: string;
  port: number;
  /** detached, output to this file (dev:up); default: a child of this process, output discarded */
  logFile?: string;
  /** the config's `auth:` section, as YAML lines (the tests' htpasswd and token registries); default none */
  auth?: string[];
}

export interface LocalRegistry {
  url: string;
  port: number;
  pid(): number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function registryInstalled(): boolean {
  return fs.existsSync(REGISTRY_BIN);
}

/** Writes the registry's config.yml under `directory`; returns its path. */
export function writeRegistryConfig(directory: string, port: number, auth: string[] = []): string {
  const storage = path.join(directory, 'storage');
  fs.mkdirSync(storage, { recursive: true });
  const file = path.join(directory, 'config.yml');
  fs.writeFileSync(
    file,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(auth.length ? ['auth:', ...auth.map((l) => `  ${l}`)] : []),
      '',
    ].join('\n'),
  );
  return file;
}

/** Whether GET /v2/ answers (200, or 401 from a registry that requires a login): the distribution API's base. */
export async function registryAnswers(url: string): Promise<boolean> {
  try {
    const r = await fetch(new URL('/v2/', url), { signal: AbortSignal.timeout(1000) });
    return r.status === 200 || r.status === 401;
  } catch {
    return false;
  }
}

export async function startRegistry(opts: RegistryOptions): Promise<LocalRegistry> {
  const url = `http://127.0.0.1:${opts.port}`;
  const config = writeRegistryConfig(opts.directory, opts.port, opts.auth);
  let child: ChildProcess | null = null;
  const reg: LocalRegistry = {
    url,
    port: opts.port,
    pid: () => child?.pid,
    async start() {
      if (child && child.exitCode === null) return;
      const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
      child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', out, out], detached: Boolean(opts.logFile) });
      if (opts.logFile) child.unref();
      const end = Date.now() + 15_000;
      while (!(await registryAnswers(url))) {
        if (child.exitCode !== null || Date.now() > end) throw new Error(`docker-registry did not come up on ${url} (config ${config})`);
        await sleep(100);
      }
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    },
  };
  await reg.start();
  return reg;
}
