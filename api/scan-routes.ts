/**
 * POST /api/v1/scan: the body is a CycloneDX (1.4-1.6) or SPDX 2.3 JSON SBOM;
 * `Authorization: Bearer <JWT>` is optional (verified offline; a bad token is
 * 401, never silently anonymous). Without a token the client is its remote
 * address. Each scan served counts in `ouk_scans_total{mode,over_quota}`. The answer is the scan (findings with the DB version they were
 * matched against, what was not checked, a summary) plus `quota` (count,
 * limit, remaining, banner, the delay applied), and X-Quota-* headers.
 *
 *   app.register(scanRoutes, { pool, redis, config, budget })
 *
 * Everything about the caller is decided in the onRequest hook, before a
 * byte of the body is read: the token (401), the body's size (413; without a
 * token at most STELLA_SCAN_ANON_MAX_BYTES, with one STELLA_SCAN_MAX_BYTES),
 * the scan slots (429/503 SCAN_BUSY) and the API's body budget (503
 * SCAN_BUSY, api/body-budget.ts). A slot is held until the answer is sent.
 *
 * `redis` should be a normal connection (commands fail rather than wait while
 * Redis is down), not a BullMQ blocking one. Errors: 400 SBOM_INVALID, 401
 * TOKEN_INVALID, 413 SBOM_TOO_LARGE (body over its limit, or more components
 * than scan/sbom.ts MAX_COMPONENTS), 415 not JSON, 429 SCAN_BUSY (this client
 * already runs STELLA_SCAN_PER_CLIENT scans), 503 SCAN_BUSY
 * (STELLA_SCAN_CONCURRENCY scans run already, or the body budget is spent) /
 * NOTHING_ACTIVE / DATABASE_UNAVAILABLE / QUOTA_UNAVAILABLE / DB_STALE (a
 * feed over its OUK_MAX_AGE budget under OUK_STALE_POLICY=refuse-scans), 507
 * INSUFFICIENT_SPACE (PostgreSQL's disk full: api/space-errors.ts);
 * body `{error: {code, message}}`; never a 500 for anything a client sends.
 * A scan's answer carries `feeds` (each feed's age and budget) and
 * `freshness` (the clock check, the stale feeds, the warnings).
 *
 * The answer is bounded: at most STELLA_SCAN_MAX_FINDINGS findings and as
 * many not-checked entries (most severe first); `summary` counts them all and
 * `truncated` says what was left out.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from '../lib/config.ts';
import { type ErrorCode, isOukError, OukError } from '../lib/errors.ts';
import type { QuotaOptions } from '../lib/quota.ts';
import { parseSbom } from '../scan/sbom.ts';
import { countedScan, resolveClient } from '../scan/service.ts';
import { spaceAnswer } from './space-errors.ts';
import { countScan } from '../lib/metrics.ts';
import type { QuotaClient } from '../lib/quota.ts';
import type { VerifiedToken } from '../lib/tokens.ts';
import { BodyBudget, enforceBodyLimit, holdBody, limitBody } from './body-budget.ts';

export interface ScanRoutesOptions {
  pool: Pool;
  redis: Redis;
  config: Config;
  /** quota overrides (tests: key prefix, throttle) */
  quota?: Partial<QuotaOptions>;
  sleep?: (ms: number) => Promise<void>;
  /** the API's body budget, shared with the stored-SBOM routes (default: one of STELLA_API_BODY_BUDGET_BYTES for these routes) */
  budget?: BodyBudget;
  /** this host's clock (tests inject one) */
  now?: () => Date;
}

/** The largest body the scan API may hold at once: the budget never stops a single body of the largest size. */
export function budgetFor(config: Pick<Config, 'apiBodyBudgetBytes' | 'scanMaxBytes'>): BodyBudget {
  return new BodyBudget(Math.max(config.apiBodyBudgetBytes, config.scanMaxBytes));
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  SBOM_INVALID: 400,
  SBOM_TOO_LARGE: 413,
  USAGE: 400,
  TOKEN_INVALID: 401,
  NOTHING_ACTIVE: 503,
  DATABASE_UNAVAILABLE: 503,
  QUOTA_UNAVAILABLE: 503,
  SCAN_BUSY: 503,
  DB_STALE: 503,
};

/** The answer with at most `max` findings and not-checked entries; `truncated` says what was left out. */
export function bounded<T extends { findings: unknown[]; notChecked: unknown[] }>(result: T, max: number): T & { truncated: { findings: number; notChecked: number } | null } {
  if (result.findings.length <= max && result.notChecked.length <= max) return { ...result, truncated: null };
  return {
    ...result,
    findings: result.findings.slice(0, max),
    notChecked: result.notChecked.slice(0, max),
    truncated: { findings: Math.max(0, result.findings.length - max), notChecked: Math.max(0, result.notChecked.length - max) },
  };
}

/** The bearer token of a request (undefined without one); TOKEN_INVALID for another Authorization scheme. */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new OukError('TOKEN_INVALID', 'the Authorization header is not "Bearer <token>"');
  return m[1];
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  if (status === 401) reply.header('WWW-Authenticate', 'Bearer error="invalid_token"');
  return reply.code(status).send({ error: { code, message } });
}

export async function scanRoutes(app: FastifyInstance, opts: ScanRoutesOptions): Promise<void> {
  const running = new Map<string, number>();
  let total = 0;
  const budget = opts.budget ?? budgetFor(opts.config);
  const callers = new WeakMap<FastifyRequest, { client: QuotaClient; token: VerifiedToken | null }>();
  const { config } = opts;

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    // A full disk first, typed or not (PostgreSQL's 53100 arrives as a plain pg error): 507, never a 500.
    const space = spaceAnswer(err, 'the scan');
    if (space) {
      app.log.error({ err, fix: space.cause.message }, 'scan failed: out of disk space');
      return sendError(reply, space.status, space.code, space.message);
    }
    if (isOukError(err)) return sendError(reply, STATUS[err.code] ?? 500, err.code, err.message);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'SBOM_TOO_LARGE', `the SBOM is larger than ${config.scanMaxBytes} bytes (STELLA_SCAN_MAX_BYTES): split it, or scan it with \`stella scan\` on the host`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'SBOM_INVALID', 'send the SBOM as JSON (Content-Type: application/json)');
    if (err.statusCode === 400) return sendError(reply, 400, 'SBOM_INVALID', `the body is not valid JSON (${err.message}): send a CycloneDX or SPDX JSON SBOM`);
    app.log.error({ err }, 'scan failed');
    return sendError(reply, 500, 'INTERNAL', 'the scan failed unexpectedly; see the API log');
  });

  /** Who asks, how much they may send, and a scan slot: all before the body is read. */
  const admit = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const who = await resolveClient(config, bearer(req), `ip:${req.ip}`);
    const max = who.token ? config.scanMaxBytes : Math.min(config.scanAnonMaxBytes, config.scanMaxBytes);
    limitBody(req, max, () =>
      who.token || max === config.scanMaxBytes
        ? new OukError('SBOM_TOO_LARGE', `the SBOM is larger than ${max} bytes (STELLA_SCAN_MAX_BYTES): split it, or scan it with \`stella scan\` on the host`)
        : new OukError('SBOM_TOO_LARGE', `a scan without a token may send at most ${max} bytes (STELLA_SCAN_ANON_MAX_BYTES): send a token (Authorization: Bearer, from \`stella token issue\`) for up to ${config.scanMaxBytes} bytes, or scan it with \`stella scan\` on the host`),
    );
    const client = `${who.client.kind}:${who.client.id}`;
    const mine = running.get(client) ?? 0;
    if (mine >= config.scanPerClient) {
      reply.header('Retry-After', '1');
      sendError(reply, 429, 'SCAN_BUSY', `this client already runs ${mine} scan${mine === 1 ? '' : 's'} (STELLA_SCAN_PER_CLIENT=${config.scanPerClient}): wait for it to finish`);
      return;
    }
    if (total >= config.scanConcurrency) {
      reply.header('Retry-After', '2');
      sendError(reply, 503, 'SCAN_BUSY', `${total} scans are running (STELLA_SCAN_CONCURRENCY=${config.scanConcurrency}): try again in a moment`);
      return;
    }
    holdBody(budget, req, reply, max);
    running.set(client, mine + 1);
    total++;
    let held = true;
    reply.raw.once('close', () => {
      if (!held) return;
      held = false;
      total--;
      const left = (running.get(client) ?? 1) - 1;
      if (left > 0) running.set(client, left);
      else running.delete(client);
    });
    callers.set(req, who);
  };

  app.post('/api/v1/scan', { bodyLimit: config.scanMaxBytes, onRequest: admit, preParsing: enforceBodyLimit }, async (req, reply) => {
    const who = callers.get(req)!;
    const sbom = parseSbom(req.body);
    const result = await countedScan({ pool: opts.pool, redis: opts.redis, config, quota: opts.quota, sleep: opts.sleep, now: opts.now }, sbom, who);
    countScan(who.client.kind, result.quota.overLimit);
    reply.header('X-Quota-Limit', String(result.quota.limit));
    reply.header('X-Quota-Used', String(result.quota.count));
    reply.header('X-Quota-Remaining', String(result.quota.remaining));
    reply.header('X-Quota-Reset', result.quota.resetsAt);
    if (result.quota.delayMs > 0) reply.header('X-Quota-Delay-Ms', String(result.quota.delayMs));
    return reply.code(200).send(bounded(result, config.scanMaxFindings));
  });
}
