/**
 * The job dashboard: bull-board at /admin/queues with the stage queues in flow
 * order (lib/stages.ts: verify, unpack, load, activate, images; then the re-scans of stored SBOMs and the periodic
 * jobs: reconcile, maintenance, mirror), retries enabled, behind operator
 * authentication (see api/auth.ts). With no operator credential configured it is never served
 * open: it answers 404 and says so in the log.
 *
 * Register with `app.register(dashboardPlugin, { queues, config, logger, pool })`.
 * With `pool`, a retry made here is on the audit trail (infra/audit.ts; the
 * actor is the operator: the Basic user or the token's `sub`), and the
 * quarantined kits are listed read-only at /admin/queues/quarantine (and
 * /admin/queues/api/quarantine as JSON).
 * The plugin is encapsulated (not wrapped in fastify-plugin): its auth hook
 * guards the dashboard routes only, never the webhook or scan endpoints.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../lib/config.ts';
import { STAGES, type StageName } from '../lib/stages.ts';
import { readStageProgress } from '../functions/context.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { operatorAuthConfigured, operatorAuthHook, type OperatorAuthConfig } from './auth.ts';
import type { Pool } from '../infra/db.ts';
import { appendAudit } from '../infra/audit.ts';
import { quarantinedImports } from '../infra/import-records/index.ts';

type BoardServerAdapter = Parameters<typeof createBullBoard>[0]['serverAdapter'];

export const DASHBOARD_PATH = '/admin/queues';
/** What each stage's queue does (a new stage fails to compile here until it is described). */
const STAGE_DESCRIPTIONS: Record<StageName, string> = {
  verify: 'signature over the whole tarball against the trusted keys, manifest sanity',
  unpack: 'stream the tar, check every member against the manifest, stage members in the store',
  load: 'COPY staged members into a PostgreSQL staging schema',
  activate: 'atomic switch of the active DB, previous DB kept for rollback',
  images: "push the kit's OCI images to the site's registry (after activation: a registry outage never holds the DB back)",
};

/** Every queue's description: the stages', then the other queues'. */
const DESCRIPTIONS: Record<string, string> = {
  ...STAGE_DESCRIPTIONS,
  rescan: 'stored SBOMs re-scanned after each activation (full, delta, rollback), diffed against their previous findings',
  reconcile: 'the reconciler: lost notifications, stranded imports, unrecorded failures, missing .sig arrived, re-scan planning owed',
  maintenance: 'garbage collection: staged members and DB schemas no import needs',
  mirror: 'intranet-mirror rounds (OUK_MIRROR_URL): download, verify, put into the bucket, wait until active',
};

export interface DashboardOptions {
  queues: Queue[];
  config: Pick<Config, 'dashboardUser' | 'dashboardPassword' | 'jwtPublicKey' | 'jwtIssuer'> & Partial<Pick<Config, 'cryptoPolicy'>>;
  logger?: Logger;
  /** Default /admin/queues. */
  basePath?: string;
  /**
   * PostgreSQL: a retry made in the dashboard goes on the audit trail (actor:
   * the operator), and the quarantined kits are listed at
   * `<basePath>/api/quarantine` (JSON) and `<basePath>/quarantine` (a page), read-only.
   */
  pool?: Pool;
  now?: () => Date;
}

/** bull-board's retry routes: all failed (or completed) jobs of a queue, or one job. */
const RETRY_ALL = /\/api\/queues\/([^/?]+)\/retry\/([^/?]+)(?:[?]|$)/;
const RETRY_ONE = /\/api\/queues\/([^/?]+)\/([^/?]+)\/retry(?:[?]|$)/;

/** What a dashboard request retried (`queue/job id`, or `queue/all-<status>`), or null when it retried nothing. */
export function retryTarget(method: string, url: string): string | null {
  if (method !== 'PUT') return null;
  const all = RETRY_ALL.exec(url);
  if (all) return `${decodeURIComponent(all[1]!)}/all-${decodeURIComponent(all[2]!)}`;
  const one = RETRY_ONE.exec(url);
  return one ? `${decodeURIComponent(one[1]!)}/${decodeURIComponent(one[2]!)}` : null;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function quarantineList(pool: Pool): Promise<Array<Record<string, string | null>>> {
  return (await quarantinedImports(pool, 200)).map((r) => ({
    importId: r.id,
    version: r.version,
    code: r.quarantineCode ?? r.errorCode,
    message: r.error,
    quarantinedAt: r.quarantinedAt?.toISOString() ?? null,
    quarantinedAs: r.quarantineKey,
    key: r.objectKey,
  }));
}

function queueRank(q: Queue): number {
  // the stages in flow order, then the rest
  const i = (STAGES as readonly string[]).indexOf(q.name);
  return i < 0 ? STAGES.length : i;
}

/**
 * bull-board draws a progress ring for a number, or for an object with a numeric
 * `progress`; stages report `{done, total, unit}` style objects, so derive the
 * percentage when it is missing. The Progress tab still shows the whole object.
 */
export function formatProgress(progress: unknown): unknown {
  if (progress === null || typeof progress !== 'object' || Array.isArray(progress)) return progress;
  const fields = progress as Record<string, unknown>;
  if (typeof fields.progress === 'number') return fields;
  const percent = readStageProgress(fields)?.percent ?? null;
  return percent === null ? fields : { ...fields, progress: percent };
}

export function queueAdapters(queues: Queue[]): BullMQAdapter[] {
  return [...queues]
    .sort((a, b) => queueRank(a) - queueRank(b))
    .map((q) => {
      const adapter = new BullMQAdapter(q, {
        readOnlyMode: false,
        allowRetries: true,
        description: DESCRIPTIONS[q.name] ?? '',
      });
      adapter.setFormatter('progress', formatProgress);
      return adapter;
    });
}

export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app: FastifyInstance, opts: DashboardOptions) => {
  const logger = opts.logger ?? createLogger('dashboard');
  const basePath = opts.basePath ?? DASHBOARD_PATH;
  const authConfig: OperatorAuthConfig = {
    dashboardUser: opts.config.dashboardUser,
    dashboardPassword: opts.config.dashboardPassword,
    jwtPublicKey: opts.config.jwtPublicKey,
    jwtIssuer: opts.config.jwtIssuer,
    cryptoPolicy: opts.config.cryptoPolicy,
  };

  if (!operatorAuthConfigured(authConfig)) {
    logger.warn(
      { path: basePath },
      'job dashboard disabled: no operator credential configured (set DASHBOARD_USER and DASHBOARD_PASSWORD, or STELLA_JWT_PUBLIC_KEY for operator JWTs)',
    );
    const body = {
      error: 'not found',
      message: 'the job dashboard is disabled: set DASHBOARD_USER and DASHBOARD_PASSWORD (or STELLA_JWT_PUBLIC_KEY) on the API service',
    };
    app.get(basePath, (_req, reply) => reply.code(404).send(body));
    app.get(`${basePath}/*`, (_req, reply) => reply.code(404).send(body));
    return;
  }

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queueAdapters(opts.queues),
    // @bull-board/fastify pins its own copy of @bull-board/api: same interface, distinct declarations.
    serverAdapter: serverAdapter as unknown as BoardServerAdapter,
    options: {
      uiConfig: {
        boardTitle: 'Stella OUK imports',
        hideDocsLink: true,
        sortQueues: false,
        jobDetails: { defaultTab: 'Progress' },
      },
    },
  });

  // An encapsulated child: the hooks below guard only the dashboard's routes. Its request log is
  // quiet (the UI polls every few seconds); what an operator changes is logged once, with who did it.
  await app.register(
    async (scoped) => {
      scoped.addHook('onRequest', operatorAuthHook(authConfig, logger, 'Stella OUK dashboard'));
      scoped.addHook('onResponse', async (request, reply) => {
        if (request.method === 'GET' || !request.operator) return;
        const who = request.operator.method === 'basic' ? request.operator.user : request.operator.subject;
        logger.info({ operator: who, method: request.method, url: request.url, status: reply.statusCode }, 'dashboard action');
        const target = retryTarget(request.method, request.url);
        if (target && opts.pool) {
          const outcome = reply.statusCode < 400 ? 'ok' : `HTTP_${reply.statusCode}`;
          await appendAudit(opts.pool, { at: (opts.now ?? (() => new Date()))(), actor: who, action: 'dashboard.retry', target, reason: null, outcome }).catch((e: unknown) =>
            logger.error({ err: e, operator: who, target }, 'could not write the audit row of a dashboard retry'),
          );
        }
      });
      if (opts.pool) {
        const pool = opts.pool;
        scoped.get(`${basePath}/api/quarantine`, async () => ({ quarantined: await quarantineList(pool) }));
        scoped.get(`${basePath}/quarantine`, async (_req, reply) => {
          const rows = await quarantineList(pool);
          const cells = rows.map((r) => `<tr>${['quarantinedAt', 'code', 'version', 'importId', 'quarantinedAs', 'message'].map((k) => `<td>${escapeHtml(r[k] ?? '')}</td>`).join('')}</tr>`);
          return reply
            .type('text/html; charset=utf-8')
            .send(
              `<!doctype html><meta charset="utf-8"><title>Quarantined kits</title><h1>Quarantined kits (${rows.length})</h1>` +
                `<p>Refused for integrity or policy, never retried. Release or remove with <code>stella ouk quarantine release|rm ID</code>.</p>` +
                `<table border="1" cellpadding="4"><tr><th>quarantined</th><th>code</th><th>version</th><th>import</th><th>in the bucket</th><th>message</th></tr>${cells.join('')}</table>`,
            );
        });
      }
      await scoped.register(serverAdapter.registerPlugin(), { prefix: basePath });
    },
    { logLevel: 'warn' },
  );
  logger.info({ path: basePath, queues: opts.queues.map((q) => q.name) }, 'job dashboard mounted (operator authentication required)');
};
