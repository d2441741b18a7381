/**
 * The one HTTP service, as a fastify app that is not yet listening:
 *
 *   const app = await buildServer(deps);
 *   await app.register(somePlugin, opts);   // more routes: scan API, dashboard, metrics
 *   await app.listen({ port: 0, host: '127.0.0.1' });
 *
 * It carries the MinIO webhook (POST /hooks/minio) and /healthz, /readyz.
 * Without a webhook token it refuses to build unless `insecureWebhook` is set
 * (STELLA_INSECURE_WEBHOOK=true): an unauthenticated ingest endpoint would let
 * anyone on the network start imports.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config, PipelineSettings } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pool } from '../infra/db.ts';
import type { ObjectStore } from '../infra/store.ts';
import type { PipelineQueues } from '../queue/queues.ts';
import { healthRoutes } from './health-routes.ts';
import { currentRootSummary } from '../functions/common/site-trust.ts';
import { ingestRoutes } from './ingest-routes.ts';

export interface ServerDeps {
  config: Pick<Config, 'webhookToken' | 'bucket' | 'freshness' | 'airgap'> & Partial<Pick<Config, 'trustRoot' | 'trustedKeys' | 'trustProxy'>>;
  pool: Pool;
  store: ObjectStore;
  queues: PipelineQueues;
  /** Redis for the readiness check (default: the queues' connection). */
  redis?: Redis;
  settings: PipelineSettings;
  logger: Logger;
  /** Accept webhooks without a token (STELLA_INSECURE_WEBHOOK=true). */
  insecureWebhook?: boolean;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  if (!deps.config.webhookToken && !deps.insecureWebhook) {
    throw new OukError(
      'USAGE',
      'OUK_WEBHOOK_TOKEN is not set: the bucket webhook at POST /hooks/minio would accept anyone. Set OUK_WEBHOOK_TOKEN (and the same token in MinIO\'s MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_*), or STELLA_INSECURE_WEBHOOK=true to run without one',
    );
  }
  if (!deps.config.webhookToken) deps.logger.warn('STELLA_INSECURE_WEBHOOK=true: POST /hooks/minio accepts events without a token');
  // return503OnClosing off: while the API stops (SIGTERM, a restart, an upgrade) a request still
  // gets the API's own envelope — 503 API_STOPPING with Retry-After — rather than fastify's bare 503.
  // STELLA_TRUST_PROXY: behind a reverse proxy, request.ip is the client's (sign-in lockout and the anonymous quota count by it)
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    return503OnClosing: false,
    ...(deps.config.trustProxy !== undefined ? { trustProxy: deps.config.trustProxy } : {}),
  }) as unknown as FastifyInstance;
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
  });
  app.addHook('onRequest', async (_req, reply) => {
    if (!stopping) return;
    reply.header('Retry-After', '2').header('Connection', 'close');
    await reply.code(503).send({ error: { code: 'API_STOPPING', message: 'the API is stopping (a restart or an upgrade): send the request again in a moment' } });
  });
  await app.register(ingestRoutes, {
    pool: deps.pool,
    queues: deps.queues,
    settings: deps.settings,
    logger: deps.logger,
    store: deps.store,
    bucket: deps.config.bucket,
    webhookToken: deps.config.webhookToken,
  });
  await app.register(healthRoutes, {
    pool: deps.pool,
    redis: deps.redis ?? deps.queues.connection,
    store: deps.store,
    bucket: deps.config.bucket,
    freshness: deps.config.freshness,
    airgap: deps.config.airgap,
    trustRoot: () => currentRootSummary({ trustRoot: deps.config.trustRoot, trustedKeys: deps.config.trustedKeys ?? [] }, deps.pool),
  });
  return app;
}
