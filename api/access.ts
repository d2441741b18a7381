/**
 * Who is asking, and may they: one resolver for every route that a person
 * uses (the dashboard, the operator routes, /auth/me).
 *
 *   Authorization: Bearer <JWT>   a personal or operator token (lib/tokens.ts), roles from its claims,
 *                                 no CSRF token needed (a browser never sends it by itself)
 *   Authorization: Basic …        the break-glass account, only with OUK_BREAK_GLASS=true
 *                                 (identity/break-glass.ts), counted by the login guard like a sign-in
 *   Cookie: ouk_session=…         a session (infra/sessions.ts), idle and absolute timeouts; every
 *                                 state-changing request must carry its CSRF token (X-CSRF-Token)
 *
 * `guard(role)` is an onRequest hook: no one → a page request (GET, Accept:
 * text/html) is sent to the sign-in page, anything else gets 401
 * SESSION_REQUIRED; a bad credential 401; too small a role 403 ROLE_REQUIRED
 * naming the role needed; a missing or wrong CSRF token 403 CSRF_REJECTED.
 * Errors are `{error: {code, message}}`; a database that is down is 503, never a 500.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Config, SignInConfig } from '../lib/config.ts';
import { signInConfig } from '../lib/config.ts';
import { isOukError, OukError, type ErrorCode } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { hasRole, loadPublicTokenKey, verifyToken, type PublicTokenKey, type Role } from '../lib/tokens.ts';
import type { Pool } from '../infra/db.ts';
import { appendAudit, type AuditAction } from '../infra/audit.ts';
import { touchSession } from '../infra/sessions.ts';
import type { PasswordAuthenticator, Person } from '../identity/person.ts';
import { passwordSignIn } from '../identity/password-sign-in.ts';
import { LOGIN_FAILED_MESSAGE } from '../identity/break-glass.ts';
import { parseBasic } from './auth.ts';
import { loginGuard, type LoginGuard } from './login-guard.ts';
import { CSRF_HEADER, csrfMatches, sessionIdFrom, sessionIdHash } from './session-cookie.ts';

export const SIGN_IN_PATH = '/auth/login';

declare module 'fastify' {
  interface FastifyRequest {
    /** the person a guard let through */
    person?: Person;
    /** the session id, when the person came with a session cookie */
    sessionId?: string;
  }
}

export interface AccessOptions {
  config: Pick<Config, 'dashboardUser' | 'dashboardPassword' | 'jwtPublicKey' | 'jwtIssuer'> & Partial<Pick<Config, 'jwtMaxDays' | 'signIn' | 'cryptoPolicy'>>;
  /** Sessions, lockout counts and the audit trail; without it only Bearer and break-glass Basic work. */
  pool?: Pool;
  /** The directory (LDAP) when one is configured. */
  directory?: PasswordAuthenticator;
  /** Single sign-on (OUK_OIDC_ISSUER) is configured: people can sign in without a password this API checks. */
  singleSignOn?: boolean;
  now?: () => Date;
  logger?: Logger;
}

export type Identified = { person: Person; sessionId: string | null };

export class AccessError extends OukError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

export interface Access {
  readonly signIn: SignInConfig;
  readonly pool: Pool | undefined;
  readonly authenticator: PasswordAuthenticator & { readonly configured: boolean };
  readonly guardian: LoginGuard | undefined;
  /** Whether anyone at all can be let in (a password sign-in, single sign-on or a token key is configured). */
  readonly configured: boolean;
  now(): Date;
  /** The person behind the request, null for no credential; AccessError for a refused one. */
  identify(request: FastifyRequest): Promise<Identified | null>;
  /** The onRequest hook that lets through `need` (or a role above it). */
  guard(need: Role | ((request: FastifyRequest) => Role)): onRequestHookHandler;
  /** An audit row for what `request.person` did. */
  audit(request: FastifyRequest, action: AuditAction, target: string | null, outcome: string, reason?: string | null): Promise<void>;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function sendAccessError(reply: FastifyReply, e: unknown, challenges: string[] = []): FastifyReply {
  const err = e instanceof AccessError ? e : isOukError(e) && e.code === 'DATABASE_UNAVAILABLE' ? new AccessError(503, e.code, e.message) : new AccessError(503, 'DATABASE_UNAVAILABLE', 'the session store (PostgreSQL) did not answer: try again in a moment');
  if (err.status === 401 && challenges.length) reply.header('WWW-Authenticate', challenges.length === 1 ? challenges[0] : challenges);
  return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
}

function wantsPage(request: FastifyRequest): boolean {
  return request.method === 'GET' && /text\/html/i.test(String(request.headers.accept ?? ''));
}

export function createAccess(opts: AccessOptions): Access {
  const signIn = opts.config.signIn ?? signInConfig({});
  const now = opts.now ?? (() => new Date());
  const breakGlass = signIn.breakGlass && opts.config.dashboardUser && opts.config.dashboardPassword ? { user: opts.config.dashboardUser, password: opts.config.dashboardPassword } : undefined;
  const authenticator = passwordSignIn({ directory: opts.directory, breakGlass });
  const guardian = opts.pool ? loginGuard(opts.pool, signIn) : undefined;
  let key: PublicTokenKey | undefined;
  let keyError: string | undefined;
  if (opts.config.jwtPublicKey) {
    try {
      key = loadPublicTokenKey(opts.config.jwtPublicKey);
    } catch (e) {
      keyError = e instanceof Error ? e.message : String(e);
    }
  }
  const challenges: string[] = [];
  if (breakGlass) challenges.push('Basic realm="Stella OUK", charset="UTF-8"');
  if (opts.config.jwtPublicKey) challenges.push('Bearer realm="Stella OUK"');

  async function fromBasic(header: string, address: string): Promise<Person> {
    const refused = new AccessError(401, 'LOGIN_FAILED', LOGIN_FAILED_MESSAGE);
    if (!breakGlass) throw new AccessError(401, 'SESSION_REQUIRED', 'HTTP Basic is only for the break-glass account (OUK_BREAK_GLASS=true), which is off: sign in at /auth/login or send a personal token as Bearer');
    const creds = parseBasic(header);
    if (!creds) throw refused;
    const at = now();
    const wait = (await guardian?.waitSeconds(creds.user, address, at)) ?? 0;
    if (wait > 0) throw new AccessError(429, 'LOGIN_LOCKED', `too many failed sign-ins for this account or from this address: try again in ${wait} s`);
    try {
      const person = await authenticator.authenticate(creds.user, creds.password);
      if (person.via !== 'break-glass') throw refused;
      await guardian?.succeeded(creds.user);
      // every use of the shared account is visible: a warn line per request (its changes are audit rows)
      opts.logger?.warn({ sub: person.sub, ip: address }, 'break-glass account used (HTTP Basic)');
      return person;
    } catch (e) {
      if (isOukError(e) && e.code === 'LOGIN_FAILED') {
        await guardian?.failed(creds.user, address, at);
        throw refused;
      }
      throw e;
    }
  }

  async function fromBearer(token: string): Promise<Person> {
    if (!key) throw new AccessError(401, 'TOKEN_INVALID', keyError ? `tokens cannot be checked: ${keyError}` : 'tokens are not accepted here: STELLA_JWT_PUBLIC_KEY is not set on the API');
    try {
      const verified = await verifyToken(token, key, { issuer: opts.config.jwtIssuer, now: now(), ...(opts.config.jwtMaxDays ? { maxDays: opts.config.jwtMaxDays } : {}), ...(opts.config.cryptoPolicy ? { policy: opts.config.cryptoPolicy } : {}) });
      return { sub: verified.claims.sub, username: verified.claims.sub, roles: verified.roles, via: 'token' };
    } catch (e) {
      throw new AccessError(401, 'TOKEN_INVALID', isOukError(e) ? e.message : 'the token cannot be verified');
    }
  }

  async function identify(request: FastifyRequest): Promise<Identified | null> {
    const authorization = request.headers.authorization;
    if (authorization) {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (bearer) return { person: await fromBearer(bearer[1]!), sessionId: null };
      if (/^Basic\s/i.test(authorization)) return { person: await fromBasic(authorization, request.ip), sessionId: null };
      throw new AccessError(401, 'SESSION_REQUIRED', 'unsupported Authorization scheme: send a token as Bearer, or sign in at /auth/login');
    }
    const id = sessionIdFrom(request.headers.cookie);
    if (!id || !opts.pool) return null;
    const s = await touchSession(opts.pool, sessionIdHash(id), now(), signIn.sessionIdleSeconds);
    if (!s) return null;
    const roles = s.roles.filter((r): r is Role => r === 'viewer' || r === 'operator' || r === 'admin');
    return { person: { sub: s.sub, username: s.username, ...(s.displayName ? { displayName: s.displayName } : {}), roles, via: s.via as Person['via'] }, sessionId: id };
  }

  return {
    signIn,
    pool: opts.pool,
    authenticator,
    guardian,
    configured: authenticator.configured || Boolean(opts.singleSignOn) || Boolean(opts.config.jwtPublicKey),
    now,
    identify,
    guard(need) {
      return async (request, reply) => {
        let who: Identified | null;
        try {
          who = await identify(request);
        } catch (e) {
          if (e instanceof AccessError) opts.logger?.warn({ url: request.url, ip: request.ip, code: e.code }, 'access refused');
          return sendAccessError(reply, e, challenges);
        }
        if (!who) {
          if (wantsPage(request)) return reply.redirect(`${SIGN_IN_PATH}?next=${encodeURIComponent(request.url)}`, 303);
          return sendAccessError(reply, new AccessError(401, 'SESSION_REQUIRED', 'sign in first: POST /auth/login (or the page at /auth/login), or send a personal token as Bearer'), challenges);
        }
        const role = typeof need === 'function' ? need(request) : need;
        if (!hasRole({ roles: [...who.person.roles] }, role)) {
          opts.logger?.warn({ url: request.url, method: request.method, sub: who.person.sub, need: role }, 'role refused');
          return sendAccessError(reply, new AccessError(403, 'ROLE_REQUIRED', `this needs the ${role} role (or one above it); ${who.person.username} has ${who.person.roles.join(', ') || 'none'}: ask an administrator to map your group to ${role} (OUK_ROLE_MAP)`));
        }
        if (who.sessionId && !SAFE_METHODS.has(request.method)) {
          const presented = request.headers[CSRF_HEADER];
          if (!csrfMatches(who.sessionId, typeof presented === 'string' ? presented : undefined)) {
            opts.logger?.warn({ url: request.url, method: request.method, sub: who.person.sub }, 'CSRF token missing or wrong');
            return sendAccessError(reply, new AccessError(403, 'CSRF_REJECTED', `a state-changing request with a session cookie must carry the session's CSRF token in ${CSRF_HEADER} (GET /auth/me gives it): reload the page and try again`));
          }
        }
        request.person = who.person;
        if (who.sessionId) request.sessionId = who.sessionId;
      };
    },
    async audit(request, action, target, outcome, reason = null) {
      if (!opts.pool) return;
      const person = request.person;
      await appendAudit(opts.pool, { at: now(), actor: person?.sub ?? 'unknown', via: person?.via ?? null, action, target, reason, outcome });
    },
  };
}
