/**
 * POST /api/v1/scan: the body is a CycloneDX (1.4-1.6) or SPDX 2.3 JSON SBOM;
 * `Authorization: Bearer <JWT>` is optional (verified offline; a bad token is
 * 401, never silently anonymous). Without a token the client is its remote
 * address. Each scan served counts in `ouk_scans_total{mode,over_quota}`. The answer is the scan (findings with the DB version they were
 * matched against, what was not checked, a summary) plus `quota` (count,
 * limit, remaining, banner, the delay applied), and X-Quota-* headers.
 *
 *   app.register(scanRoutes, { pool, redis, config })
 *
 * `redis` should be a normal connection (commands fail rather than wait while
 * Redis is down), not a BullMQ blocking one. Errors: 400 SBOM_INVALID, 401
 * TOKEN_INVALID, 413 body too large, 415 not JSON, 503 NOTHING_ACTIVE /
 * DATABASE_UNAVAILABLE / QUOTA_UNAVAILABLE; body `{error: {code, message}}`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from '../lib/config.ts';
import { type ErrorCode, isOukError, OukError } from '../lib/errors.ts';
import type { QuotaOptions } from '../lib/quota.ts';
import { MAX_SBOM_BYTES, parseSbom } from '../scan/sbom.ts';
import { countedScan, resolveClient } from '../scan/service.ts';
import { countScan } from '../lib/metrics.ts';

export interface ScanRoutesOptions {
  pool: Pool;
  redis: Redis;
  config: Config;
  /** quota overrides (tests: key prefix, throttle) */
  quota?: Partial<QuotaOptions>;
  sleep?: (ms: number) => Promise<void>;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  SBOM_INVALID: 400,
  USAGE: 400,
  TOKEN_INVALID: 401,
  NOTHING_ACTIVE: 503,
  DATABASE_UNAVAILABLE: 503,
  QUOTA_UNAVAILABLE: 503,
};

function bearer(req: FastifyRequest): string | undefined {
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
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (isOukError(err)) return sendError(reply, STATUS[err.code] ?? 500, err.code, err.message);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'SBOM_INVALID', `the SBOM is larger than ${MAX_SBOM_BYTES} bytes`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'SBOM_INVALID', 'send the SBOM as JSON (Content-Type: application/json)');
    if (err.statusCode === 400) return sendError(reply, 400, 'SBOM_INVALID', `the body is not valid JSON (${err.message}): send a CycloneDX or SPDX JSON SBOM`);
    app.log.error({ err }, 'scan failed');
    return sendError(reply, 500, 'INTERNAL', 'the scan failed unexpectedly; see the API log');
  });

  app.post('/api/v1/scan', { bodyLimit: MAX_SBOM_BYTES }, async (req, reply) => {
    const sbom = parseSbom(req.body);
    const who = await resolveClient(opts.config, bearer(req), `ip:${req.ip}`);
    const result = await countedScan({ pool: opts.pool, redis: opts.redis, config: opts.config, quota: opts.quota, sleep: opts.sleep }, sbom, who);
    countScan(who.client.kind, result.quota.overLimit);
    reply.header('X-Quota-Limit', String(result.quota.limit));
    reply.header('X-Quota-Used', String(result.quota.count));
    reply.header('X-Quota-Remaining', String(result.quota.remaining));
    reply.header('X-Quota-Reset', result.quota.resetsAt);
    if (result.quota.delayMs > 0) reply.header('X-Quota-Delay-Ms', String(result.quota.delayMs));
    return reply.code(200).send(result);
  });
}
