/**
 * Process plumbing for the local stack (npm run dev:up / dev:down): probes for
 * Redis, PostgreSQL and HTTP services, starting the system Redis and PostgreSQL
 * when installed but not running, and detached `node --import tsx <file>`
 * services with a log file and a pid file under `.stella/`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { DevPaths, Env } from '../infra/env.ts';

/** Starts a Debian system service the way .ci/run does (the commands live in that script only). */
const START_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'start-system-service.sh');

export function hostPort(url: string, dfltPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : dfltPort };
}

/** Sends `payload` over TCP and resolves with the first bytes answered, or null on error/timeout. */
function tcpExchange(host: string, port: number, payload: string | null, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let done = false;
    const finish = (v: string | null): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(timeoutMs, () => finish(null));
    sock.on('error', () => finish(null));
    sock.on('connect', () => {
      if (payload === null) finish('');
      else sock.write(payload);
    });
    sock.on('data', (d: Buffer) => finish(d.toString('utf8')));
  });
}

export async function portAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return (await tcpExchange(host, port, null, timeoutMs)) !== null;
}

export async function redisAnswers(url: string): Promise<boolean> {
  const { host, port } = hostPort(url, 6379);
  const r = await tcpExchange(host, port, 'PING\r\n', 1000);
  return r !== null && r.startsWith('+PONG');
}

export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function httpAnswers(url: string, wantOk = true): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer().catch(() => undefined);
    return wantOk ? res.ok : true;
  } catch {
    return false;
  }
}

/** Polls `probe` until it is true; false after `timeoutMs`. */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}

function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: readonly string[]): { ok: boolean; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

export type SystemServiceState = 'running' | 'started' | 'not installed' | 'failed' | 'remote';

/** Starts the Debian redis-server on 127.0.0.1:6379 when it is installed and not answering. */
export async function ensureRedis(url: string, loopback: boolean): Promise<{ state: SystemServiceState; detail: string }> {
  if (await redisAnswers(url)) return { state: 'running', detail: url };
  if (!loopback) return { state: 'remote', detail: `${url} does not answer; start it there` };
  if (hostPort(url, 6379).port !== 6379) return { state: 'failed', detail: `${url} does not answer; dev:up only starts the system Redis on port 6379` };
  if (!commandExists('redis-server')) return { state: 'not installed', detail: 'install redis-server (apt-get install redis-server) or set REDIS_URL' };
  const r = run('bash', [START_SCRIPT, 'redis']);
  if (!r.ok) return { state: 'failed', detail: `redis-server: ${r.output}` };
  if (!(await waitUntil(() => redisAnswers(url), 15_000))) return { state: 'failed', detail: 'redis-server started but does not answer PING; see /var/log/redis/ci.log' };
  return { state: 'started', detail: url };
}

/** Starts the Debian PostgreSQL cluster `main` when it is installed and not answering. */
export async function ensurePostgres(url: string, loopback: boolean): Promise<{ state: SystemServiceState; detail: string }> {
  if (await postgresAnswers(url)) return { state: 'running', detail: redactUrl(url) };
  if (!loopback) return { state: 'remote', detail: `${redactUrl(url)} does not answer; start it there` };
  if (hostPort(url, 5432).port !== 5432) return { state: 'failed', detail: `${redactUrl(url)} does not answer; dev:up only starts the system PostgreSQL on port 5432` };
  if (!commandExists('pg_ctlcluster') || !fs.existsSync('/etc/postgresql')) {
    return { state: 'not installed', detail: 'install postgresql (apt-get install postgresql) or set DATABASE_URL' };
  }
  const r = run('bash', [START_SCRIPT, 'postgres']);
  if (!r.ok) return { state: 'failed', detail: r.output };
  if (!(await waitUntil(() => postgresAnswers(url), 30_000))) {
    return { state: 'failed', detail: `PostgreSQL started but ${redactUrl(url)} does not answer; see /var/log/postgresql/` };
  }
  return { state: 'started', detail: redactUrl(url) };
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

// ---- detached node services -------------------------------------------------

export interface ServiceSpec {
  /** pid file `<runDir>/<name>.pid`, log `<logsDir>/<name>.log` */
  name: string;
  /** entry file, relative to the repository root */
  entry: string;
  /** resolves true when the service answers */
  ready: () => Promise<boolean>;
  /** shown in the status table */
  address: string;
  timeoutMs: number;
}

export function pidFile(paths: DevPaths, name: string): string {
  return path.join(paths.runDir, `${name}.pid`);
}
export function logFile(paths: DevPaths, name: string): string {
  return path.join(paths.logsDir, `${name}.log`);
}

interface PidRecord {
  pid: number;
  entry: string;
}

export function readPid(paths: DevPaths, name: string): PidRecord | null {
  try {
    const [pidLine, entry] = fs.readFileSync(pidFile(paths, name), 'utf8').split('\n');
    const pid = Number(pidLine);
    return Number.isInteger(pid) && pid > 1 ? { pid, entry: entry ?? '' } : null;
  } catch {
    return null;
  }
}

/**
 * Whether `pid` is alive AND still the process we started (its command line
 * names the entry file), so a recycled pid is never mistaken for ours.
 */
export function isOurs(rec: PidRecord): boolean {
  try {
    process.kill(rec.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
    return !rec.entry || cmdline.some((a) => a === rec.entry || a.endsWith(`/${rec.entry}`));
  } catch {
    // no /proc: trust the liveness check
    return true;
  }
}

/** Starts `node --import tsx <entry>` detached, output appended to its log, pid recorded. */
export function spawnDetached(paths: DevPaths, repoRoot: string, spec: ServiceSpec, env: Env): number {
  fs.mkdirSync(paths.logsDir, { recursive: true });
  fs.mkdirSync(paths.runDir, { recursive: true });
  const log = logFile(paths, spec.name);
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `\n=== ${new Date().toISOString()} dev:up starting ${spec.entry} ===\n`);
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', spec.entry], {
      cwd: repoRoot,
      env: env as NodeJS.ProcessEnv,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.entry}`);
    child.unref();
    fs.writeFileSync(pidFile(paths, spec.name), `${child.pid}\n${spec.entry}\n`);
    return child.pid;
  } finally {
    fs.closeSync(fd);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM to the service's process group, SIGKILL after `graceMs`; removes the pid file. */
export async function stopService(paths: DevPaths, name: string, graceMs = 10_000): Promise<'stopped' | 'killed' | 'not running'> {
  const rec = readPid(paths, name);
  const file = pidFile(paths, name);
  if (!rec || !isOurs(rec)) {
    fs.rmSync(file, { force: true });
    return 'not running';
  }
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-rec.pid, sig); // the group: spawnDetached made it a group leader
    } catch {
      try {
        process.kill(rec.pid, sig);
      } catch {
        /* gone */
      }
    }
  };
  signal('SIGTERM');
  const gone = await waitUntil(async () => !alive(rec.pid), graceMs, 100);
  if (!gone) {
    signal('SIGKILL');
    await waitUntil(async () => !alive(rec.pid), 5000, 100);
  }
  fs.rmSync(file, { force: true });
  return gone ? 'stopped' : 'killed';
}

/** Names of the services with a pid file, for dev:down. */
export function recordedServices(paths: DevPaths): string[] {
  try {
    return fs
      .readdirSync(paths.runDir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => f.slice(0, -4));
  } catch {
    return [];
  }
}

/** The last `n` lines of a log, for error messages. */
export function tail(file: string, n = 15): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return lines.slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** Prints rows as an aligned table. */
export function printTable(rows: string[][]): void {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}
