/**
 * What the operator-side import commands (`stella ouk import`, `retry`,
 * `mirror pull`) talk to, taken from the command's `CliContext`: PostgreSQL
 * (migrated), the object store and the pipeline queues, failing fast with a
 * clear error when one is down. The context closes them when the command ends.
 */
import type { Pool } from '../../infra/db.ts';
import type { ObjectStore } from '../../infra/store.ts';
import type { Config, Env, PipelineSettings } from '../../lib/config.ts';
import type { IngestDeps } from '../../queue/ingest.ts';
import type { PipelineQueues } from '../../queue/queues.ts';
import type { CliContext } from '../context.ts';

export interface CliPipeline {
  config: Config;
  env: Env;
  settings: PipelineSettings;
  pool: Pool;
  store: ObjectStore;
  queues: PipelineQueues;
  deps: IngestDeps;
}

/** PostgreSQL (migrated), the store, and the queues — failing fast with a clear error when one is down. */
export async function openCliPipeline(cli: CliContext): Promise<CliPipeline> {
  const settings = cli.settings();
  const pool = await cli.db({ migrate: true });
  const queues = await cli.queues();
  const store = await cli.store();
  return { config: cli.config, env: cli.env, settings, pool, store, queues, deps: { pool, queues, settings } };
}
