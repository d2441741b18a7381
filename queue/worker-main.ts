/**
 * The worker process: `node dist/queue/worker-main.js` (the build; `node
 * --import tsx queue/worker-main.ts` from the sources).
 *
 * Configuration from the environment (and `.env`, and the dev defaults under
 * `.stella/`, see infra/env.ts); runs the migrations, one worker per stage
 * queue, the re-scan worker of stored SBOMs (with the scanner of
 * scan/stored.ts: this entry point wires it, as api/main.ts wires the scan
 * API), and the maintenance worker (reconcile, gc, and the mirror pull when
 * OUK_MIRROR_URL is set). SIGTERM / SIGINT stop taking jobs, let running
 * ones finish (up to OUK_SHUTDOWN_SECONDS, default 60; a job cut short is run
 * again by another worker — every stage is idempotent), and exit.
 *
 * Scale out by running more of these, on any host, against the same Redis,
 * PostgreSQL and object store.
 */
import { resolveEnv } from '../infra/env.ts';
import { createPool, migrate } from '../infra/db.ts';
import { createStore } from '../infra/store.ts';
import { enforceAirgap } from '../lib/airgap.ts';
import { BOTH_TRUSTS_WARNING, loadTrustedKeys, requireConfiguredTrust } from '../signing/index.ts';
import { loadConfig, pipelineSettings } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';
import { createLogger, safeUrl } from '../lib/logger.ts';
import { describeRedisTarget } from '../lib/redis-target.ts';
import { createRedis, redisTargetOf } from './connection.ts';
import { openPipelineQueues } from './queues.ts';
import { startMaintenance } from './maintenance.ts';
import { startWorkers } from './workers.ts';
import { storedSbomScanner } from '../scan/stored.ts';
import { setSm2DistinguishingId } from '../signing/suites/index.ts';

// The process's environment, resolved once: everything below is given `config` and `settings`.
const env = resolveEnv();
const config = loadConfig(env);
// The SM2 distinguishing ID every SM2 signature and check of this process uses (STELLA_SM2_ID).
setSm2DistinguishingId(config.sm2Id);
// STELLA_AIRGAP=true: refuse every connection but Redis, PostgreSQL and the store.
enforceAirgap(config);
const settings = pipelineSettings(env);
const logger = createLogger('worker', { level: config.logLevel });

async function main(): Promise<void> {
  // Trust is configured, never defaulted: a pinned root (OUK_TRUST_ROOT, the only trust when set) signed by its
  // own threshold, else OUK_TRUSTED_KEYS; an unreadable root or key, or neither, and the service does not start.
  await requireConfiguredTrust(config);
  if (config.trustRoot && config.trustedKeys.length) logger.warn(BOTH_TRUSTS_WARNING);
  const pool = createPool(config.databaseUrl);
  await migrate(pool);
  const store = createStore(config.store);
  const workers = startWorkers(config, { pool, store, settings, logger, scanner: storedSbomScanner(pool) });
  const queues = openPipelineQueues(createRedis(redisTargetOf(config)), config.queuePrefix);
  // Reconcile and gc: job schedulers, one job per interval for the whole cluster.
  // With OUK_MIRROR_URL: the mirror job too, pulling kits verified against the same trusted keys.
  const maintenance = await startMaintenance({
    pool,
    queues,
    settings,
    logger,
    store,
    bucket: config.bucket,
    mirror: config.mirror,
    trustedKeys: () => loadTrustedKeys(config.trustedKeys),
    trust: config,
  });
  logger.info(
    {
      redis: describeRedisTarget(redisTargetOf(config)),
      database: safeUrl(config.databaseUrl),
      store: config.s3Endpoint,
      bucket: config.bucket,
      reconcileSeconds: settings.reconcileSeconds,
      mirror: config.mirror ? { url: safeUrl(config.mirror.url), schedule: config.mirror.schedule } : null,
    },
    'worker ready',
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const graceMs = config.shutdownSeconds * 1000;
    logger.info({ signal, graceMs }, 'stopping: finishing running jobs');
    const hard = setTimeout(() => {
      logger.warn('running jobs did not finish in time; exiting (they will run again elsewhere)');
      process.exit(0);
    }, graceMs);
    hard.unref();
    void (async () => {
      await maintenance.close();
      await workers.close();
      await queues.close();
      queues.connection.disconnect();
      await pool.end();
      logger.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  logger.fatal({ err: e }, 'worker failed to start');
  process.stderr.write(describeError(e) + '\n');
  process.exit(1);
});
