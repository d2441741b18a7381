/**
 * A Redis and a PostgreSQL of the test's own, on their own loopback ports and
 * in temporary directories, that a fault test may kill, wipe and restart for
 * real without disturbing the shared services other tests use.
 *
 *   const redis = await startPrivateRedis();      // redis-server, no persistence
 *   await redis.restart();                        // a Redis that comes back empty
 *   const pg = await startPrivatePostgres();      // initdb + pg_ctl (as the postgres user when root)
 *   await pg.stop(); await pg.start();            // an immediate shutdown: what a crash looks like
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { postgresAnswers, redisAnswers } from '../../dev/services.ts';
import { freePort, tmpDir } from './services.ts';

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL, then start again with no data: a restart without persistence, or a wipe */
  restart(downMs?: number): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = tmpDir('private-redis');
  let child: ChildProcess | null = null;
  const answers = (): Promise<boolean> => redisAnswers(`redis://127.0.0.1:${port}`);
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    await until(`redis-server on ${port}`, answers);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    kill,
    async restart(downMs = 0) {
      await kill();
      if (downMs) await sleep(downMs);
      await start();
    },
    close: kill,
  };
}

export interface PrivatePostgres {
  url: string;
  port: number;
  /** `pg_ctl stop -m immediate`: no checkpoint, connections cut — a crash */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function pgBin(name: string): string {
  const versions = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const p = `/usr/lib/postgresql/${v}/bin/${name}`;
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${name} not found under /usr/lib/postgresql`);
}

/** Runs a PostgreSQL tool as the postgres user when we are root (initdb refuses root). */
function asPostgres(cmd: string, args: string[]): { status: number | null; output: string } {
  const root = process.getuid?.() === 0;
  const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const dir = tmpDir('private-pg');
  fs.chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  const init = asPostgres(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.output}`);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const answers = (): Promise<boolean> => postgresAnswers(url);
  const start = async (): Promise<void> => {
    const r = asPostgres(pgBin('pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`, 'start']);
    if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.output}`);
    await until(`PostgreSQL on ${port}`, answers);
  };
  const stop = async (): Promise<void> => {
    asPostgres(pgBin('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
  };
  await start();
  return { url, port, start, stop, close: stop };
}
