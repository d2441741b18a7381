/**
 * A Redis primary, one replica and three sentinels of the test's own, as real
 * processes on free loopback ports with their own directories (Debian's
 * `redis-server` and `redis-sentinel`), for failover tests.
 *
 *   const rs = await startSentinelRedis();   // the sentinels answer where the primary is
 *   await rs.ready();                         // they know the replica and each other: a failover can happen
 *   await rs.killPrimary();                   // SIGKILL: what a dead host looks like
 *   await rs.waitForPrimary(rs.replicaPort);  // the sentinels elected the replica
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, tmpDir } from './services.ts';

export const SENTINEL_NAME = 'ouk-test';

export interface SentinelRedis {
  primaryPort: number;
  replicaPort: number;
  sentinelPorts: number[];
  /** REDIS_SENTINELS for a process's environment */
  sentinels: string;
  /** every sentinel knows the replica and its two peers: a failover can happen */
  ready(): Promise<void>;
  /** SIGKILL, once ready(): what a dead host looks like */
  killPrimary(): Promise<void>;
  /** the port the sentinels now name as the primary */
  currentPrimary(): Promise<number | null>;
  waitForPrimary(port: number, timeoutMs?: number): Promise<void>;
  /** a plain connection to one node (no sentinel) */
  node(port: number): Redis;
  close(): Promise<void>;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function onePing(port: number): Promise<boolean> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  return r
    .connect()
    .then(() => r.ping())
    .then((p) => p === 'PONG')
    .finally(() => r.disconnect());
}

async function ask<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

export async function startSentinelRedis(): Promise<SentinelRedis> {
  const dir = tmpDir('sentinel-redis');
  const children: ChildProcess[] = [];
  const server = (port: number, extra: string[]): ChildProcess => {
    const d = path.join(dir, String(port));
    fs.mkdirSync(d, { recursive: true });
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', d, ...extra], { stdio: 'ignore' });
    children.push(c);
    return c;
  };
  const [primaryPort, replicaPort, ...sentinelPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]) as [number, number, number, number, number];
  const primary = server(primaryPort, []);
  server(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]);
  await until('the primary to answer', () => onePing(primaryPort));
  await until('the replica to be in sync', () => ask(replicaPort, async (r) => /master_link_status:up/.test(await r.info('replication'))));
  for (const port of sentinelPorts) {
    const conf = path.join(dir, `sentinel-${port}.conf`);
    fs.writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
        `sentinel failover-timeout ${SENTINEL_NAME} 10000`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
        '',
      ].join('\n'),
    );
    children.push(spawn('redis-sentinel', [conf], { stdio: 'ignore' }));
  }
  // the sentinels answer where the primary is at once; a failover needs them to know each other (hello messages, every 2 s)
  for (const port of sentinelPorts) await until(`sentinel ${port} to answer`, () => ask(port, async (r) => Array.isArray(await r.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME))));
  let quorum: Promise<void> | null = null;
  const ready = (): Promise<void> =>
    (quorum ??= (async () => {
      for (const port of sentinelPorts) {
        await until(`sentinel ${port} to know its peers and the replica`, () =>
          ask(port, async (r) => {
            const peers = (await r.call('SENTINEL', 'sentinels', SENTINEL_NAME)) as unknown[];
            const replicas = (await r.call('SENTINEL', 'replicas', SENTINEL_NAME)) as unknown[];
            return peers.length === 2 && replicas.length === 1;
          }),
        );
      }
    })());
  const currentPrimary = async (): Promise<number | null> => {
    for (const port of sentinelPorts) {
      const addr = await ask(port, (r) => r.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME) as Promise<string[] | null>).catch(() => null);
      if (addr) return Number(addr[1]);
    }
    return null;
  };
  return {
    primaryPort,
    replicaPort,
    sentinelPorts,
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    ready,
    async killPrimary() {
      await ready();
      if (primary.exitCode !== null || primary.signalCode !== null) return;
      const gone = new Promise((r) => primary.once('exit', r));
      primary.kill('SIGKILL');
      await gone;
    },
    currentPrimary,
    async waitForPrimary(port, timeoutMs = 20_000) {
      await until(`the sentinels to elect 127.0.0.1:${port}`, async () => (await currentPrimary()) === port && (await ask(port, async (r) => /role:master/.test(await r.info('replication')))), timeoutMs);
    },
    node(port) {
      const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      r.on('error', () => undefined);
      return r;
    },
    async close() {
      await Promise.all(
        children.map((c) => {
          if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
          const gone = new Promise((r) => c.once('exit', r));
          c.kill('SIGKILL');
          return gone;
        }),
      );
    },
  };
}
