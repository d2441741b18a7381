/**
 * What the operator-side import commands (`stella ouk import`, `retry`) talk
 * to: PostgreSQL (migrated), the object store and the pipeline queues, opened
 * from the resolved environment and failing fast with a clear error when one
 * is down.
 */
import { createPool, migrate, type Pool } from '../../infra/db.ts';
import { resolveEnv } from '../../infra/env.ts';
import { createStore, type ObjectStore } from '../../infra/store.ts';
import { loadConfig, pipelineSettings, type Config, type PipelineSettings } from '../../lib/config.ts';
import { connectRedis } from '../../queue/connection.ts';
import type { IngestDeps } from '../../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../../queue/queues.ts';

export interface CliPipeline {
  config: Config;
  env: Record<string, string | undefined>;
  settings: PipelineSettings;
  pool: Pool;
  store: ObjectStore;
  queues: PipelineQueues;
  deps: IngestDeps;
  close(): Promise<void>;
}

/** PostgreSQL (migrated), the store, and the queues — failing fast with a clear error when one is down. */
export async function openCliPipeline(): Promise<CliPipeline> {
  const env = resolveEnv();
  const config = loadConfig(env);
  const settings = pipelineSettings(env);
  const pool = createPool(config.databaseUrl, 3);
  try {
    await migrate(pool);
    const redis = await connectRedis(config.redisUrl);
    const queues = openPipelineQueues(redis, config.queuePrefix);
    const store = createStore(config.store);
    return {
      config,
      env,
      settings,
      pool,
      store,
      queues,
      deps: { pool, queues, settings },
      async close() {
        await queues.close();
        redis.disconnect();
        await pool.end();
      },
    };
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
}

