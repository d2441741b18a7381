/**
 * The publisher worker process: `npm run publisher` (`node --import tsx
 * cli/publisher-main.ts`; `node dist/cli/publisher-main.js` in the build).
 *
 * Configuration from the environment (and `.env`; infra/env.ts), resolved
 * once: `OUK_PUBLISH_SCHEDULE`, `OUK_PUBLISH_FEEDS`, `OUK_PUBLISH_MIRROR`,
 * `OUK_PUBLISH_KEYS` (required), the sync's upstream variables, and the
 * optional rest (lib/config.ts `publishEnv`). Starts the job scheduler and
 * one worker (publisher/worker.ts): each period, sync then publish, one at a
 * time in the cluster. Refuses to start with STELLA_AIRGAP=true (exit 56) or
 * without its settings (PUBLISH_NOT_CONFIGURED, 123). SIGTERM / SIGINT stop
 * taking jobs and let a running one finish (up to OUK_SHUTDOWN_SECONDS, then
 * exit: the mirror's lock a killed publish leaves is taken over by the
 * next), and exit 0.
 */
import { childProcessEnv, resolveEnv } from '../infra/env.ts';
import { loadConfig, publishEnv, syncSettings, type Env } from '../lib/config.ts';
import { describeError, EXIT_CODES, isOukError, OukError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { runNightly } from '../publisher/nightly.ts';
import { airgapRefusal, parseDays, parsePublicUrl, type PublishOptions } from '../publisher/publish/index.ts';
import { parseSources, type SyncOptions } from '../publisher/sync/index.ts';
import { startPublisherWorker } from '../publisher/worker.ts';
import { createRedis, redisTargetOf } from '../queue/connection.ts';
import { describeRedisTarget } from '../lib/redis-target.ts';
import { setSm2DistinguishingId } from '../signing/suites/index.ts';

function notConfigured(why: string): OukError {
  return new OukError('PUBLISH_NOT_CONFIGURED', `${why} — set it as .env.example's "Publisher" section describes (docs/publishing.md, "A nightly chain")`);
}

function settingsOf(env: Env): { schedule: { every: number } | { pattern: string }; deadlineMs: number; sync: Omit<SyncOptions, 'now'> | null; publish: Omit<PublishOptions, 'now'> } {
  const config = loadConfig(env);
  if (config.airgap) throw airgapRefusal();
  let pe: ReturnType<typeof publishEnv>;
  try {
    pe = publishEnv(env);
  } catch (e) {
    throw notConfigured((e as Error).message);
  }
  if (!pe.schedule) throw notConfigured('OUK_PUBLISH_SCHEDULE is not set: give an interval (1d) or a cron pattern ("30 2 * * *")');
  if (!pe.feedsDir) throw notConfigured('OUK_PUBLISH_FEEDS is not set: the feeds directory the job syncs and builds from');
  if (!pe.mirror) throw notConfigured('OUK_PUBLISH_MIRROR is not set: the mirror directory the job publishes into');
  if (pe.keys.length === 0) throw notConfigured('OUK_PUBLISH_KEYS is not set: the kit keys, comma-separated paths');
  const days = (raw: string | undefined, dflt: number, name: string): number => {
    try {
      return raw === undefined ? dflt : parseDays(raw, name);
    } catch (e) {
      throw notConfigured((e as Error).message);
    }
  };
  let sync: SyncOptions['settings'];
  try {
    sync = syncSettings(env);
  } catch (e) {
    throw notConfigured((e as Error).message);
  }
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw isOukError(e) ? notConfigured(e.message) : e;
    }
  };
  return {
    schedule: pe.schedule,
    deadlineMs: pe.deadlineSeconds * 1000,
    // OUK_PUBLISH_SOURCES=none: another tool fills the feeds directory; the job only publishes.
    sync:
      pe.sources?.toLowerCase() === 'none'
        ? null
        : { out: pe.feedsDir, sources: pe.sources ? wrap(() => parseSources(pe.sources!)) : undefined, settings: sync, airgap: false, childEnv: childProcessEnv({}) },
    publish: {
      feedsDir: pe.feedsDir,
      keyPaths: pe.keys,
      mirror: pe.mirror,
      roots: pe.roots,
      settings: {
        fullEveryDays: days(pe.fullEvery, 7, 'OUK_PUBLISH_FULL_EVERY'),
        keepDays: days(pe.keepDays, 30, 'OUK_PUBLISH_KEEP_DAYS'),
        expiresDays: days(pe.expiresDays, 45, 'OUK_PUBLISH_EXPIRES_DAYS'),
      },
      torrent: pe.torrent ? { publicUrl: wrap(() => parsePublicUrl(pe.publicUrl)) } : undefined,
      airgap: false,
      password: config.keyPassword,
      sourceDateEpoch: config.sourceDateEpoch,
    },
  };
}

const env = resolveEnv();
const config = loadConfig(env);
// The SM2 distinguishing ID every SM2 signature and check of this process uses (STELLA_SM2_ID).
setSm2DistinguishingId(config.sm2Id);
const logger = createLogger('publisher', { level: config.logLevel });

async function main(): Promise<void> {
  const s = settingsOf(env);
  const connection = createRedis(redisTargetOf(config));
  const running = await startPublisherWorker({
    connection,
    prefix: config.queuePrefix,
    schedule: s.schedule,
    deadlineMs: s.deadlineMs,
    run: async (job) => {
      logger.info({ job: job.id }, 'nightly: sync, then publish');
      const r = await runNightly({ sync: s.sync, publish: { ...s.publish, onWarning: (w) => logger.warn({ warning: w }, 'feed record skipped') } });
      return { version: r.publish.version, status: r.publish.status, kits: r.publish.kits.map((k) => k.entry.file), pruned: r.publish.pruned };
    },
    onEvent: (e) => (e.kind === 'completed' ? logger.info({ job: e.jobId, result: e.result }, 'nightly done') : logger.error({ job: e.jobId, err: e.error }, 'nightly failed')),
  });
  logger.info({ redis: describeRedisTarget(redisTargetOf(config)), schedule: s.schedule, feeds: s.publish.feedsDir, mirror: s.publish.mirror, deadlineSeconds: s.deadlineMs / 1000 }, 'publisher ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const graceMs = config.shutdownSeconds * 1000;
    logger.info({ signal, graceMs }, 'stopping: finishing the running job');
    const hard = setTimeout(() => {
      logger.warn('the running job did not finish in time; exiting (the next publish takes over its lock)');
      process.exit(0);
    }, graceMs);
    hard.unref();
    void (async () => {
      await running.close();
      connection.disconnect();
      logger.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`${describeError(e)}\n`);
  process.exit(isOukError(e) ? EXIT_CODES[e.code] : 1);
});
