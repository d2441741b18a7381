/**
 * GET /metrics: serves the product's Prometheus registry (lib/metrics.ts),
 * with the active-DB, feed-age and clock gauges read from PostgreSQL
 * (infra/freshness.ts) and the queue depths from BullMQ at scrape time.
 */
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Pool } from '../infra/db.ts';
import { readFreshnessSnapshot } from '../infra/freshness.ts';
import { countQuarantinedByCode } from '../infra/import-records.ts';
import type { FreshnessRule } from '../lib/freshness.ts';
import type { Logger } from '../lib/logger.ts';
import { registry, setScrapeSources, type ActiveDbSource } from '../lib/metrics.ts';
import type { RootSummary } from '../lib/root-expiry.ts';

/** Reads the active DB and its freshness (one snapshot: the pointer, its manifest's feeds, the newest signed time). */
export function activeDbFromPostgres(pool: Pool, rule: FreshnessRule, now: () => Date = () => new Date()): ActiveDbSource {
  return async () => {
    const f = await readFreshnessSnapshot(pool, rule, now());
    if (!f.activeDb) return { none: true, freshness: f };
    return { version: f.activeDb.version, activatedAt: new Date(f.activeDb.activatedAt ?? 0), freshness: f };
  };
}

/** Kits ever quarantined per code (ouk_quarantined_total). */
export function quarantineFromPostgres(pool: Pool): () => Promise<Record<string, number>> {
  return () => countQuarantinedByCode(pool);
}

export interface MetricsPluginOptions {
  /** PostgreSQL pool: the active-DB gauges are read from ouk_meta.state at scrape time. */
  pool?: Pool;
  /** Queues whose job counts are exported as ouk_queue_jobs. */
  queues?: Queue[];
  /** OUK_MAX_AGE, OUK_STALE_POLICY and the clock tolerance (config.freshness) */
  freshness: FreshnessRule;
  /** this host's clock (tests inject one) */
  now?: () => Date;
  logger?: Logger;
  /** Default /metrics. */
  path?: string;
  /** The site's current root of trust (null: bare keys): ouk_trust_root_expires_timestamp_seconds. */
  trustRoot?: () => Promise<RootSummary | null>;
}

/** Serves the registry at GET /metrics (no auth: it carries no secrets; restrict at the network as usual). */
export const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = async (app: FastifyInstance, opts: MetricsPluginOptions) => {
  const undo = setScrapeSources({
    activeDb: opts.pool ? activeDbFromPostgres(opts.pool, opts.freshness, opts.now) : null,
    queues: opts.queues,
    quarantine: opts.pool ? quarantineFromPostgres(opts.pool) : null,
    logger: opts.logger,
    trustRoot: opts.trustRoot ?? null,
  });
  app.addHook('onClose', async () => undo());
  app.get(opts.path ?? '/metrics', async (_req, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });
};
