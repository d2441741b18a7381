/**
 * The API process: `node dist/api/main.js` (the build; `node --import tsx
 * api/main.ts` from the sources), listening on
 * STELLA_API_PORT (8080) on STELLA_API_HOST (default 0.0.0.0).
 *
 * Runs the migrations, then serves the MinIO webhook, /healthz, /readyz, the
 * job dashboard (/admin/queues), /metrics, and whatever other route plugins are
 * listed in PLUGINS below. SIGTERM / SIGINT close it gracefully.
 */
import type { FastifyInstance } from 'fastify';
import { resolveEnv } from '../infra/env.ts';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import { createStore } from '../infra/store.ts';
import { enforceAirgap } from '../lib/airgap.ts';
import { BOTH_TRUSTS_WARNING, requireConfiguredTrust } from '../signing/index.ts';
import { ldapSettings, loadConfig, oidcSettings, pipelineSettings, type Config, type LdapSettings } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { bullConnection, createCommandRedis, createRedis, redisTargetOf } from '../queue/connection.ts';
import { watchQueueMetrics } from '../queue/metrics-hooks.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { dashboardPlugin } from './dashboard.ts';
import { metricsPlugin } from './metrics.ts';
import { currentRootSummary } from '../functions/common/site-trust.ts';
import type { BodyBudget } from './body-budget.ts';
import { budgetFor, scanRoutes } from './scan-routes.ts';
import { sbomRoutes } from './sbom-routes.ts';
import { buildServer } from './server.ts';
import { createAccess, type Access } from './access.ts';
import { operatorRoutes } from './operator-routes.ts';
import { tokenRoutes } from './token-routes.ts';
import type { PasswordAuthenticator } from '../identity/person.ts';
import { LdapAuthenticator } from '../identity/ldap/index.ts';
import { setSm2DistinguishingId } from '../signing/suites/index.ts';
import { registerSignIn } from './sign-in.ts';

/**
 * The directory people sign in with (LDAP / Active Directory, when OUK_LDAP_URL is set), or
 * undefined. Settings that do not hold together (DIRECTORY_NOT_CONFIGURED: a missing base, an
 * unreadable bind password or CA file, a bad role map) stop the API at start with their message.
 */
async function directoryFor(settings: LdapSettings | undefined): Promise<PasswordAuthenticator | undefined> {
  return settings ? LdapAuthenticator.create(settings) : undefined;
}

// The process's environment, resolved once: everything below is given `config` (and the settings).
const env = resolveEnv();
const config = loadConfig(env);
// The SM2 distinguishing ID every SM2 signature and check of this process uses (STELLA_SM2_ID).
setSm2DistinguishingId(config.sm2Id);
// Single sign-on through the site's OpenID provider (OUK_OIDC_ISSUER), or undefined; bad settings stop the API at start.
const oidc = oidcSettings(env);
// STELLA_AIRGAP=true: refuse every connection but Redis, PostgreSQL and the store.
enforceAirgap(config);
const logger = createLogger('api', { level: config.logLevel });

interface PluginContext {
  app: FastifyInstance;
  config: Config;
  pool: Pool;
  queues: PipelineQueues;
  logger: Logger;
  /** STELLA_API_BODY_BUDGET_BYTES: request bodies held at once (api/body-budget.ts) */
  budget: BodyBudget;
  /** who is signed in, and with which roles (api/access.ts) */
  access: Access;
}

/** Route plugins beyond the webhook and health: add one line per plugin. */
const PLUGINS: Array<(c: PluginContext) => Promise<unknown>> = [
  // Signing in and out (sessions: the directory, the break-glass account, single sign-on — one way a
  // session starts for all three), then what a signed-in person uses: the dashboard, the operator routes.
  async ({ app, access, logger }) => registerSignIn(app, { access, logger, oidc }),
  async ({ app, config, access, logger }) => app.register(tokenRoutes, { access, config, logger }),
  async ({ app, config, pool, queues, logger, access }) => app.register(dashboardPlugin, { queues: [...Object.values(queues.queues), queues.rescan, queues.reconcile, queues.maintenance, queues.mirror], config, logger, pool, access }),
  async ({ app, pool, queues, logger, access }) => app.register(operatorRoutes, { access, pool, queues, settings: pipelineSettings(env), logger }),
  async ({ app, config, pool, queues, logger }) => app.register(metricsPlugin, { pool, queues: [...Object.values(queues.queues), queues.rescan], freshness: config.freshness, logger, trustRoot: () => currentRootSummary(config, pool) }),
  // The scan API counts quota on its own, ordinary Redis connection (commands
  // fail fast while Redis is down instead of queueing as BullMQ's connection does).
  // Both take SBOM bodies of up to STELLA_SCAN_MAX_BYTES, and share one budget of the bytes held at once.
  async ({ app, config, pool, budget }) => app.register(scanRoutes, { pool, redis: createCommandRedis(redisTargetOf(config)), config, budget }),
  // Stored SBOMs: added and scanned once here, re-scanned by the workers after every activation.
  async ({ app, config, pool, logger, budget, access }) => app.register(sbomRoutes, { pool, config, logger, budget, access }),
];

async function main(): Promise<void> {
  // Trust is configured, never defaulted: a pinned root (OUK_TRUST_ROOT, the only trust when set) signed by its
  // own threshold, else OUK_TRUSTED_KEYS; an unreadable root or key, or neither, and the service does not start.
  await requireConfiguredTrust(config);
  if (config.trustRoot && config.trustedKeys.length) logger.warn(BOTH_TRUSTS_WARNING);
  const pool = createPool(config.databaseUrl);
  await migrate(pool);
  const store = createStore(config.store);
  const queues = openPipelineQueues(createRedis(redisTargetOf(config)), config.queuePrefix);
  const app = await buildServer({
    config,
    pool,
    store,
    queues,
    settings: pipelineSettings(env),
    logger,
    insecureWebhook: config.insecureWebhook,
  });
  const budget = budgetFor(config);
  const directory = await directoryFor(ldapSettings(env));
  const access = createAccess({ config, pool, directory, singleSignOn: Boolean(oidc), logger });
  if (config.signIn.breakGlass) logger.warn('OUK_BREAK_GLASS=true: the shared DASHBOARD_USER account may sign in (role admin); every use is on the audit trail');
  for (const plugin of PLUGINS) await plugin({ app, config, pool, queues, logger, budget, access });
  const watcher = await watchQueueMetrics({ connection: bullConnection(redisTargetOf(config)), prefix: config.queuePrefix, queues: [...Object.values(queues.queues), queues.rescan], periodic: queues, pool, logger });

  await app.listen({ port: config.apiPort, host: config.apiHost });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    void (async () => {
      await app.close().catch(() => undefined);
      await watcher.close().catch(() => undefined);
      await queues.close();
      queues.connection.disconnect();
      await pool.end().catch(() => undefined);
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  logger.fatal({ err: e }, 'API failed to start');
  process.stderr.write(describeError(e) + '\n');
  process.exit(1);
});
