/**
 * The job dashboard: bull-board at /admin/queues with the stage queues in flow
 * order (lib/stages.ts: verify, unpack, load, activate, images; then the re-scans of stored SBOMs and the periodic
 * jobs: reconcile, maintenance, mirror), retries enabled, behind sign-in
 * (api/access.ts): a session from the sign-in page (a page request without one
 * is sent there), a personal token as Bearer, or the break-glass account.
 * Looking needs the `viewer` role; every request that changes something
 * (retry, clean, promote, remove, pause) the `operator` role and, with a
 * session, its CSRF token — the pages get it injected with a sign-out bar
 * (api/sign-in-page.ts sessionBar). With no way to sign in configured it is
 * never served open: it answers 404 and says so in the log.
 *
 * Register with `app.register(dashboardPlugin, { queues, config, logger, pool, access })`.
 * With `pool`, every state-changing request is on the audit trail
 * (infra/audit.ts: a retry as dashboard.retry, anything else as
 * dashboard.action; the actor is the person's `sub`, with how they signed in), and the
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
import { STAGES, type StageName } from '../lib/stages.ts';
import { readStageProgress } from '../functions/context.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { createAccess, type Access, type AccessOptions } from './access.ts';
import { csrfTokenFor } from './session-cookie.ts';
import { sessionBar } from './sign-in-page.ts';
import type { Pool } from '../infra/db.ts';
import { quarantinedImports } from '../infra/import-records/index.ts';

type BoardServerAdapter = Parameters<typeof createBullBoard>[0]['serverAdapter'];

export const DASHBOARD_PATH = '/admin/queues';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
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
  config: AccessOptions['config'];
  /** Who may sign in (api/access.ts); default: one made from `config` and `pool`. */
  access?: Access;
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
  const access = opts.access ?? createAccess({ config: opts.config, pool: opts.pool, now: opts.now, logger });

  if (!access.configured) {
    logger.warn(
      { path: basePath },
      'job dashboard disabled: no way to sign in is configured (set OUK_LDAP_URL for the directory, OUK_OIDC_ISSUER for single sign-on, STELLA_JWT_PUBLIC_KEY for personal tokens, or OUK_BREAK_GLASS=true with DASHBOARD_USER and DASHBOARD_PASSWORD)',
    );
    const body = {
      error: 'not found',
      message: 'the job dashboard is disabled: configure a way to sign in on the API service (OUK_LDAP_URL, OUK_OIDC_ISSUER, STELLA_JWT_PUBLIC_KEY, or OUK_BREAK_GLASS=true with DASHBOARD_USER and DASHBOARD_PASSWORD)',
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
      scoped.addHook('onRequest', access.guard((request) => (SAFE_METHODS.has(request.method) ? 'viewer' : 'operator')));
      scoped.addHook('onSend', async (request, reply, payload) => {
        // the pages carry the session's CSRF token for their own requests, and a sign-out bar
        if (!request.sessionId || !request.person || typeof payload !== 'string' || !/text\/html/.test(String(reply.getHeader('content-type') ?? ''))) return payload;
        const bar = sessionBar({ username: request.person.username, roles: request.person.roles, csrfToken: csrfTokenFor(request.sessionId) });
        return payload.includes('</body>') ? payload.replace('</body>', `${bar}</body>`) : payload + bar;
      });
      scoped.addHook('onResponse', async (request, reply) => {
        if (SAFE_METHODS.has(request.method) || !request.person) return;
        const who = request.person;
        logger.info({ operator: who.sub, via: who.via, method: request.method, url: request.url, status: reply.statusCode }, 'dashboard action');
        if (!opts.pool) return;
        const retried = retryTarget(request.method, request.url);
        const outcome = reply.statusCode < 400 ? 'ok' : `HTTP_${reply.statusCode}`;
        await access
          .audit(request, retried ? 'dashboard.retry' : 'dashboard.action', retried ?? `${request.method} ${request.url.slice(0, 500)}`, outcome)
          .catch((e: unknown) => logger.error({ err: e, operator: who.sub, url: request.url }, 'could not write the audit row of a dashboard action'));
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
  logger.info({ path: basePath, queues: opts.queues.map((q) => q.name) }, 'job dashboard mounted (sign-in required: viewer to look, operator to change)');
};
