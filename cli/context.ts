/**
 * What every `stella` command is given: one `CliContext` per process, made by
 * cli/main.ts before the command runs and closed once after it.
 *
 * It holds the configuration, resolved once (infra/env.ts `resolveEnv`, then
 * lib/config.ts), and opens what a command asks for on first use — the
 * PostgreSQL pool, the object store, the BullMQ queues, a plain Redis
 * connection, the logger — and closes all of it at the end. A command reads
 * no environment and opens no connection of its own:
 *
 *   export function registerOukThing(ouk: Command, cli: CliContext): void {
 *     ouk.command('thing').action(async () => {
 *       const pool = await cli.db();                   // reads only: the schema must be there
 *       const pool = await cli.db({ migrate: true });  // writes: the migrations run first
 *       const queues = await cli.queues();             // QUEUE_UNAVAILABLE at once when Redis is down
 *       const bucket = cli.config.bucket;
 *     });
 *   }
 *
 * A command that only reads (status, jobs, images without --push, sbom
 * list|diff|status, scan) never changes the schema: a database without it is
 * NOTHING_ACTIVE, one whose migrations lag SCHEMA_OUTDATED (infra/db.ts
 * checkSchema). The clients (pg, BullMQ, ioredis, minio, pino) are imported on
 * first use, so `stella --version` or `stella ouk verify` load none of them.
 */
import type { Redis } from 'ioredis';
import type { Pool } from '../infra/db.ts';
import type { ObjectStore } from '../infra/store.ts';
import { loadConfig, pipelineSettings, type Config, type Env, type PipelineSettings } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import type { PipelineQueues } from '../queue/queues.ts';
import { setSm2DistinguishingId } from '../signing/suites/index.ts';

export interface CliContext {
  /** The resolved environment (the process's, over `.env`, over the local stack's `dev.env`). */
  readonly env: Env;
  readonly config: Config;
  /** The pipeline's settings (attempts, backoff, gc grace, …), parsed on first use. */
  settings(): PipelineSettings;
  /** The CLI's JSON logger (pino, on stdout) at LOG_LEVEL, else warn: what the stages it runs log. */
  logger(): Promise<Logger>;
  /**
   * The PostgreSQL pool (DATABASE_URL). By default the schema is checked and
   * nothing is changed; `migrate: true` applies the migrations first (commands
   * that write); `check: false` neither checks nor changes it (a command that
   * reads what is there, and says what is missing itself).
   */
  db(opts?: { migrate?: boolean; check?: boolean }): Promise<Pool>;
  store(): Promise<ObjectStore>;
  /** The pipeline's queues on a connection known to answer, or QUEUE_UNAVAILABLE within 3 s. */
  queues(): Promise<PipelineQueues>;
  /** A plain Redis connection that fails fast (the scan quota), or QUEUE_UNAVAILABLE within 3 s. */
  redis(): Promise<Redis>;
  /** Closes whatever was opened; cli/main.ts calls it once the command has run. */
  close(): Promise<void>;
}

/** A context on the resolved environment `env` (throws when the configuration is malformed). */
export function createCliContext(env: Env): CliContext {
  const config = loadConfig(env);
  // The SM2 distinguishing ID every SM2 signature and check of this process uses (STELLA_SM2_ID).
  setSm2DistinguishingId(config.sm2Id);
  let settings: PipelineSettings | undefined;
  let logger: Promise<Logger> | undefined;
  let pool: Promise<Pool> | undefined;
  let schema: Promise<void> | undefined;
  let migrated: Promise<void> | undefined;
  let store: Promise<ObjectStore> | undefined;
  let queues: Promise<PipelineQueues> | undefined;
  let redis: Promise<Redis> | undefined;
  const closers: Array<() => Promise<unknown> | void> = [];

  const openPool = (): Promise<Pool> =>
    (pool ??= import('../infra/db.ts').then(({ createPool }) => {
      const p = createPool(config.databaseUrl, 4);
      closers.push(() => p.end());
      return p;
    }));

  return {
    env,
    config,
    settings: () => (settings ??= pipelineSettings(env)),
    logger: () => (logger ??= import('../lib/logger.ts').then(({ createLogger }) => createLogger('cli', { level: config.logLevel ?? 'warn' }))),
    async db(opts = {}) {
      const p = await openPool();
      const { checkSchema, migrate } = await import('../infra/db.ts');
      if (opts.migrate) await (migrated ??= migrate(p));
      else if (opts.check === false) return p;
      else await (schema ??= migrated ?? checkSchema(p));
      return p;
    },
    store: () => (store ??= import('../infra/store.ts').then(({ createStore }) => createStore(config.store))),
    queues: () =>
      (queues ??= (async () => {
        const [{ connectRedis, redisTargetOf }, { openPipelineQueues }] = await Promise.all([import('../queue/connection.ts'), import('../queue/queues.ts')]);
        const q = openPipelineQueues(await connectRedis(redisTargetOf(config)), config.queuePrefix);
        closers.push(async () => {
          await q.close();
          q.connection.disconnect();
        });
        return q;
      })()),
    redis: () =>
      (redis ??= (async () => {
        // fails fast: one connection attempt (QUEUE_UNAVAILABLE), no retry of a command once connected
        const { probeRedis, redisTargetOf } = await import('../queue/connection.ts');
        const r = await probeRedis(redisTargetOf(config));
        closers.push(() => r.disconnect());
        return r;
      })()),
    async close() {
      // the last opened first: queues before the pool they were used with
      for (const close of closers.splice(0).reverse()) await Promise.resolve(close()).catch(() => undefined);
    },
  };
}
