/**
 * GET /metrics: serves the product's Prometheus registry (lib/metrics.ts),
 * with the active-DB gauges read from ouk_meta.state and the queue depths from
 * BullMQ at scrape time.
 */
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { readActive, type Pool } from '../infra/db.ts';
import type { Logger } from '../lib/logger.ts';
import { registry, setScrapeSources, type ActiveDbSource } from '../lib/metrics.ts';

/** Reads the active DB from ouk_meta.state (the same row readers use). */
export function activeDbFromPostgres(pool: Pool): ActiveDbSource {
  return async () => {
    const a = await readActive(pool);
    return a ? { version: a.version, activatedAt: new Date(a.activatedAt) } : null;
  };
}

export interface MetricsPluginOptions {
  /** PostgreSQL pool: the active-DB gauges are read from ouk_meta.state at scrape time. */
  pool?: Pool;
  /** Queues whose job counts are exported as ouk_queue_jobs. */
  queues?: Queue[];
  warnAgeHours?: number;
  logger?: Logger;
  /** Default /metrics. */
  path?: string;
}

/** Serves the registry at GET /metrics (no auth: it carries no secrets; restrict at the network as usual). */
export const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = async (app: FastifyInstance, opts: MetricsPluginOptions) => {
  const undo = setScrapeSources({
    activeDb: opts.pool ? activeDbFromPostgres(opts.pool) : null,
    queues: opts.queues,
    warnAgeHours: opts.warnAgeHours,
    logger: opts.logger,
  });
  app.addHook('onClose', async () => undo());
  app.get(opts.path ?? '/metrics', async (_req, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });
};
