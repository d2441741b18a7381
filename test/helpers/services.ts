/**
 * Test isolation against the REAL services: each test file gets its own
 * PostgreSQL database, its own Redis key prefix and its own s3rver (temp
 * directory, bucket, free loopback port), so files and concurrent runs cannot
 * collide.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig, parseStoreEndpoint, type Config, type StoreConfig } from '../../lib/config.ts';
import { createStore, type ObjectStore } from '../../infra/store.ts';
import type { MinioWebhookEvent } from '../../infra/minio-event.ts';
import { startS3rver, type WebhookTarget } from '../../infra/dev/s3rver.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Real feeds, SBOMs and conformance data, beside the repository (never copied into it). */
export const sharedDir = path.resolve(repoRoot, '../shared');

/** lowercase [a-z0-9-] slice of a tag, usable in database, bucket and key names. */
function slug(tag: string, max: number): string {
  const s = tag.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return (s || 't').slice(0, max);
}

function uniq(): string {
  return `${process.pid.toString(36)}${crypto.randomBytes(4).toString('hex')}`;
}

const tmpDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * `hours` before this process's clock, as a Date to pass to PostgreSQL: tests
 * never write `now() - interval …`, since the code under test compares such
 * times with its own clock, which may differ from the server's (faketime).
 */
export function hoursAgo(hours: number, now = new Date()): Date {
  return new Date(now.getTime() - hours * 3_600_000);
}

/** The project's own configuration variables (see .env.example): never inherited by a test's child process. */
const CONFIG_VAR = /^(REDIS_URL|DATABASE_URL|TEST_DATABASE_URL|S3_|OUK_|STELLA_|QUOTA_|DASHBOARD_|MINIO_|LOG_LEVEL$|NVD_|OSV_|GHSA_|KEV_|EPSS_|EUVD_|CSAF_)/;

/**
 * The environment a test's child process (CLI, API, worker) starts from: this
 * process's own, minus every project configuration variable, so a developer's
 * shell settings cannot leak into a test — while PATH, HOME, the locale and a
 * faketime run's LD_PRELOAD/FAKETIME* pass through, and every process of the
 * test shares one clock.
 */
export function childBaseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!CONFIG_VAR.test(k) && !k.startsWith('NODE_TEST')) out[k] = v;
  return { ...out, ...extra };
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `stella` CLI (bin/stella.js) as a process and collects its exit code and output. */
export function runStella(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/stella.js'), ...args], { cwd: opts.cwd, env: opts.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A fresh temporary directory, removed when the process exits. */
export function tmpDir(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `stella-${slug(tag, 30)}-`));
  tmpDirs.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** The default configuration (no environment) with overrides. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), ...overrides };
}

/** The server that test databases are created on: TEST_DATABASE_URL, DATABASE_URL or the local default. */
function adminDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL || loadConfig(process.env).databaseUrl;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** CREATE DATABASE with a unique name; `drop()` removes it WITH (FORCE), closing leftover connections. */
export async function createTestDatabase(tag: string): Promise<TestDatabase> {
  const admin = adminDatabaseUrl();
  const name = `ouk_test_${slug(tag, 30).replace(/-/g, '_')}_${uniq()}`;
  const run = async <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> => {
    const client = new pg.Client({ connectionString: admin });
    await client.connect();
    try {
      return (await client.query<R>(sql, values)).rows;
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE "${name}"`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  let dropped = false;
  return {
    url: u.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      // A pool's end() resolves once its clients are told to end, not once their
      // backends have gone: give them a moment, so FORCE does not terminate a
      // connection mid-goodbye (its client would raise an error nobody handles).
      for (let i = 0; i < 50; i++) {
        const left = await run<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
        if ((left[0]?.n ?? 0) === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await run(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

export interface TestS3 {
  endpoint: string;
  port: number;
  bucket: string;
  directory: string;
  store: ObjectStore;
  storeConfig: StoreConfig;
  /** every event s3rver forwarded, in order, in MinIO's webhook format */
  events: MinioWebhookEvent[];
  /** resolves when all webhook deliveries started so far are done */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface TestS3Options {
  webhook?: WebhookTarget;
  onEvent?: (ev: MinioWebhookEvent) => void;
  /** only keys with this suffix produce events (like `mc event add --suffix`) */
  suffix?: string;
  bucket?: string;
  /** where delivery failures are reported (default: stderr) */
  log?: (msg: string) => void;
}

/** An s3rver of its own (temp directory, free loopback port) with one bucket. */
export async function startTestS3(tag: string, opts: TestS3Options = {}): Promise<TestS3> {
  const directory = tmpDir(`s3-${tag}`);
  const bucket = opts.bucket ?? `t-${slug(tag, 40)}`;
  const events: MinioWebhookEvent[] = [];
  const server = await startS3rver({
    port: 0,
    host: '127.0.0.1',
    directory,
    buckets: [bucket],
    webhook: opts.webhook,
    suffix: opts.suffix,
    silent: true,
    log: opts.log,
    onEvent: (ev) => {
      events.push(ev);
      opts.onEvent?.(ev);
    },
  });
  const storeConfig = parseStoreEndpoint(server.endpoint, 'S3RVER', 'S3RVER', 5 * 1024 * 1024 * 1024);
  return {
    endpoint: server.endpoint,
    port: server.port,
    bucket,
    directory,
    store: createStore(storeConfig),
    storeConfig,
    events,
    idle: () => server.idle(),
    close: () => server.close(),
  };
}

export interface TestRedisPrefix {
  /** unique, without ':'; use keys `${prefix}:...` (and as BullMQ `prefix`) */
  prefix: string;
  redisUrl: string;
  /** deletes every key starting with the prefix (SCAN + UNLINK) */
  cleanup(): Promise<void>;
}

export function testRedisPrefix(tag: string): TestRedisPrefix {
  const prefix = `test-${slug(tag, 30)}-${uniq()}`;
  const redisUrl = process.env.TEST_REDIS_URL || loadConfig(process.env).redisUrl;
  return {
    prefix,
    redisUrl,
    async cleanup() {
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
      await redis.connect();
      try {
        const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.unlink(...keys);
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    },
  };
}
