/**
 * Stored SBOMs over HTTP (the CLI's `stella sbom …` reads and writes the same
 * PostgreSQL tables):
 *
 *   POST   /api/v1/sboms?name=NAME[&replace=true]   body: the CycloneDX/SPDX JSON SBOM
 *          (or {"name", "sbom", "replace"}); stores it and scans it once:
 *          201 (stored), 200 (replaced)                                     role operator
 *   GET    /api/v1/sboms                            every SBOM with counts, DB version, newest changes   role viewer
 *   GET    /api/v1/sboms/:name/diff                 its newest diff (functions/sboms/report.ts)           role viewer
 *   DELETE /api/v1/sboms/:name                      204                                                  role operator
 *
 * Authentication: `Authorization: Bearer <JWT>`, verified offline as the scan
 * API's, or a signed-in session (api/access.ts: the same roles; a write with a
 * session also needs its CSRF token, X-CSRF-Token, else 403 CSRF_REJECTED), and required (stored SBOMs are the site's inventory: what it runs,
 * and what is vulnerable in it). Reads need a token with the `viewer` role or
 * above, writes (add, replace, remove) the `operator` role or above
 * (lib/tokens.ts ROLES); a scan token has neither. All of it is decided in
 * the onRequest hook, before a byte of the body is read: no token is 401
 * TOKEN_REQUIRED, a bad one 401 TOKEN_INVALID, too small a role 403
 * ROLE_REQUIRED, a body over STELLA_SCAN_MAX_BYTES 413, a body the API's
 * budget cannot hold now 503 SCAN_BUSY (api/body-budget.ts). Who added an
 * SBOM is recorded. Neither the first scan nor the re-scans count against the
 * quota. Errors `{error: {code, message}}`: 400 SBOM_INVALID / USAGE (a bad
 * name, echoed as a short escaped excerpt), 401 TOKEN_REQUIRED /
 * TOKEN_INVALID, 403 ROLE_REQUIRED, 404 SBOM_NOT_FOUND, 409 SBOM_EXISTS, 413
 * SBOM_TOO_LARGE (over STELLA_SCAN_MAX_BYTES or scan/sbom.ts MAX_COMPONENTS),
 * 415 not JSON, 503 DATABASE_UNAVAILABLE / SCAN_BUSY, 507 INSUFFICIENT_SPACE
 * (PostgreSQL's disk full: api/space-errors.ts); never a 500 for anything a
 * client sends.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import type { Config } from '../lib/config.ts';
import { type ErrorCode, isOukError, OukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { hasRole, type Role, type VerifiedToken } from '../lib/tokens.ts';
import { addSbom, checkSbomName, sbomNotFound } from '../functions/sboms/rescan.ts';
import { readDiff, readStatus } from '../functions/sboms/report.ts';
import { deleteSbom } from '../infra/sboms.ts';
import { resolveClient } from '../scan/service.ts';
import { storedSbomScanner } from '../scan/stored.ts';
import { type BodyBudget, enforceBodyLimit, holdBody, limitBody } from './body-budget.ts';
import { bearer, budgetFor } from './scan-routes.ts';
import { spaceAnswer } from './space-errors.ts';
import type { Access } from './access.ts';
import { CSRF_HEADER, csrfMatches } from './session-cookie.ts';

export interface SbomRoutesOptions {
  pool: Pool;
  config: Config;
  logger: Logger;
  /** the API's body budget, shared with the scan API (default: one of STELLA_API_BODY_BUDGET_BYTES for these routes) */
  budget?: BodyBudget;
  /** signed-in sessions (api/access.ts): a request with a session cookie and no Authorization header is the person's */
  access?: Access;
}

/** Who made a request: a token's `sub`, or a signed-in person's, and how. */
interface Caller {
  sub: string;
  via: string;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  SBOM_INVALID: 400,
  USAGE: 400,
  TOKEN_INVALID: 401,
  TOKEN_REQUIRED: 401,
  ROLE_REQUIRED: 403,
  CSRF_REJECTED: 403,
  SBOM_NOT_FOUND: 404,
  SBOM_EXISTS: 409,
  SBOM_TOO_LARGE: 413,
  DATABASE_UNAVAILABLE: 503,
  SCAN_BUSY: 503,
};

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  if (status === 401) reply.header('WWW-Authenticate', 'Bearer error="invalid_token"');
  return reply.code(status).send({ error: { code, message } });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The SBOM and its name: `?name=` with the SBOM as the body, or a {"name", "sbom"} wrapper. */
function readAddRequest(req: FastifyRequest): { name: string; document: unknown; replace: boolean } {
  const q = (req.query ?? {}) as Record<string, string | undefined>;
  const body = req.body;
  const wrapped = isObj(body) && 'sbom' in body && body.bomFormat === undefined && body.spdxVersion === undefined;
  const name = wrapped && typeof body.name === 'string' ? body.name : (q.name ?? '');
  const replace = (wrapped && body.replace === true) || /^(1|true|yes)$/i.test(q.replace ?? '');
  return { name, document: wrapped ? body.sbom : body, replace };
}

/** What each method needs: reads the viewer role, writes the operator role (or a role above). */
const NEEDS: Record<string, { role: Role; what: string }> = {
  GET: { role: 'viewer', what: 'read the stored SBOMs' },
  HEAD: { role: 'viewer', what: 'read the stored SBOMs' },
  POST: { role: 'operator', what: 'add or replace a stored SBOM' },
  DELETE: { role: 'operator', what: 'remove a stored SBOM' },
};

/**
 * The caller, who must hold a valid token with the role the method needs:
 * stored SBOMs are the site's inventory (what it runs, and what is vulnerable
 * in it), so unlike a one-off scan nothing here is anonymous, and a scan token
 * neither reads nor changes it.
 */
async function authorize(config: Config, req: FastifyRequest, access: Access | undefined): Promise<Caller> {
  const need = NEEDS[req.method] ?? NEEDS.POST;
  const session = !req.headers.authorization && access ? await access.identify(req) : null;
  if (session?.sessionId) {
    if (!hasRole({ roles: [...session.person.roles] }, need.role)) {
      throw new OukError('ROLE_REQUIRED', `to ${need.what} you need the ${need.role} role or above; ${session.person.username} has ${session.person.roles.join(', ') || 'none'}: ask an administrator to map your group to ${need.role} (OUK_ROLE_MAP)`);
    }
    const presented = req.headers[CSRF_HEADER];
    if (req.method !== 'GET' && req.method !== 'HEAD' && !csrfMatches(session.sessionId, typeof presented === 'string' ? presented : undefined)) {
      throw new OukError('CSRF_REJECTED', `a change made with a session cookie must carry the session's CSRF token in ${CSRF_HEADER} (GET /auth/me gives it)`);
    }
    return { sub: session.person.sub, via: session.person.via };
  }
  return { sub: (await authorizeToken(config, req, need)).claims.sub, via: 'token' };
}

async function authorizeToken(config: Config, req: FastifyRequest, need: { role: Role; what: string }): Promise<VerifiedToken> {
  const who = await resolveClient(config, bearer(req), `ip:${req.ip}`);
  if (!who.token) {
    throw new OukError('TOKEN_REQUIRED', "the stored-SBOM API needs a bearer token (stored SBOMs are the site's inventory): send Authorization: Bearer <token>, issued with `stella token issue --role viewer` (reads) or `--role operator` (changes) and verified against STELLA_JWT_PUBLIC_KEY");
  }
  if (!hasRole(who.token, need.role)) {
    const has = who.token.roles.length ? `the role ${who.token.roles.join(', ')}` : 'no role (a scan token)';
    throw new OukError('ROLE_REQUIRED', `to ${need.what} a token needs the ${need.role} role or above; this token (sub ${JSON.stringify(who.token.claims.sub)}) has ${has}: ask the operator for one issued with \`stella token issue --role ${need.role}\``);
  }
  return who.token;
}

export async function sbomRoutes(app: FastifyInstance, opts: SbomRoutesOptions): Promise<void> {
  const scanner = storedSbomScanner(opts.pool);
  const deps = { pool: opts.pool, scanner, logger: opts.logger, now: () => new Date() };
  const budget = opts.budget ?? budgetFor(opts.config);
  const callers = new WeakMap<FastifyRequest, Caller>();
  const maxBytes = opts.config.scanMaxBytes;

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    // A full disk first, typed or not (PostgreSQL's 53100 arrives as a plain pg error): 507, never a 500.
    const space = spaceAnswer(err, 'the request');
    if (space) {
      app.log.error({ err, fix: space.cause.message }, 'stored-SBOM request failed: out of disk space');
      return sendError(reply, space.status, space.code, space.message);
    }
    if (isOukError(err)) {
      if (err.code === 'SCAN_BUSY') reply.header('Retry-After', '2');
      return sendError(reply, STATUS[err.code] ?? 500, err.code, err.message);
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'SBOM_TOO_LARGE', `the SBOM is larger than ${maxBytes} bytes (STELLA_SCAN_MAX_BYTES): split it`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'SBOM_INVALID', 'send the SBOM as JSON (Content-Type: application/json)');
    if (err.statusCode === 400) return sendError(reply, 400, 'SBOM_INVALID', `the body is not valid JSON (${err.message}): send a CycloneDX or SPDX JSON SBOM`);
    app.log.error({ err }, 'stored-SBOM request failed');
    return sendError(reply, 500, 'INTERNAL', 'the request failed unexpectedly; see the API log');
  });

  // Token, role, size and budget before the body is read: an anonymous 32 MiB body is refused unread.
  app.addHook('onRequest', async (req, reply) => {
    callers.set(req, await authorize(opts.config, req, opts.access));
    limitBody(req, maxBytes, () => new OukError('SBOM_TOO_LARGE', `the SBOM is larger than ${maxBytes} bytes (STELLA_SCAN_MAX_BYTES): split it`));
    holdBody(budget, req, reply, maxBytes);
  });
  app.addHook('preParsing', enforceBodyLimit);

  app.post('/api/v1/sboms', { bodyLimit: maxBytes }, async (req, reply) => {
    const caller = callers.get(req)!;
    const { name, document, replace } = readAddRequest(req);
    checkSbomName(name);
    const length = Number(req.headers['content-length']);
    const bytes = Number.isFinite(length) && length > 0 ? length : Buffer.byteLength(JSON.stringify(document ?? null));
    const addedBy = `${caller.via}:${caller.sub}`;
    const r = await addSbom(deps, { name, document, bytes, maxBytes, replace, addedBy });
    return reply.code(r.state === 'inserted' ? 201 : 200).send(r);
  });

  app.get('/api/v1/sboms', async (_req, reply) => reply.send(await readStatus(opts.pool)));

  app.get<{ Params: { name: string } }>('/api/v1/sboms/:name/diff', async (req, reply) => reply.send(await readDiff(opts.pool, req.params.name)));

  app.delete<{ Params: { name: string } }>('/api/v1/sboms/:name', async (req, reply) => {
    const name = checkSbomName(req.params.name);
    if (!(await deleteSbom(opts.pool, name))) throw sbomNotFound(name);
    opts.logger.info({ sbom: name, by: callers.get(req)?.sub, via: callers.get(req)?.via }, 'stored SBOM removed');
    return reply.code(204).send();
  });
}
