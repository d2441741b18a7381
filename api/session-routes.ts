/**
 * Signing in and out (docs/operations.md, "Signing in"):
 *
 *   GET  /auth/login    the sign-in page (api/sign-in-page.ts)
 *   POST /auth/login    {"username","password"} (JSON) or the page's form →
 *                       200 {sub, username, roles, via, csrfToken} + the session cookie (JSON),
 *                       303 to `next` (form); 401 LOGIN_FAILED (one answer for an unknown user,
 *                       a wrong password and a person without a role), 429 LOGIN_LOCKED with
 *                       Retry-After (back-off, lockout: api/login-guard.ts), 503
 *                       DIRECTORY_UNAVAILABLE (the directory is down: never a sign-in)
 *   GET  /auth/me       {sub, username, roles, via, csrfToken?} or 401 SESSION_REQUIRED
 *   POST /auth/logout   ends the session (needs its CSRF token: X-CSRF-Token, or the form's
 *                       `_csrf`), clears the cookie: 204 (JSON) or 303 to the sign-in page (form)
 *
 * A sign-in from another origin (an `Origin` header naming another host) is
 * refused with 403 CSRF_REJECTED: no site can sign a browser in as someone
 * else. Passwords never reach a log; a break-glass sign-in is on the audit trail.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isOukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { hasTerminalControl } from '../lib/terminal-text.ts';
import { endSession } from '../infra/sessions.ts';
import type { Person } from '../identity/person.ts';
import { LOGIN_FAILED_MESSAGE } from '../identity/break-glass.ts';
import { AccessError, sendAccessError, SIGN_IN_PATH, type Access } from './access.ts';
import { clearedSessionCookie, CSRF_FIELD, CSRF_HEADER, csrfMatches, sessionIdHash } from './session-cookie.ts';
import { FORM, isForm, personJson, sessionStarter, type StartSession } from './session-start.ts';
import { safeNext, signInPage } from './sign-in-page.ts';

export interface SessionRoutesOptions {
  access: Access;
  logger: Logger;
  /** Single sign-on is configured: the sign-in page offers "Sign in with <name>" (GET /auth/oidc/login). */
  singleSignOn?: { name: string };
  /** How a session starts (api/session-start.ts); the OIDC callback is given the same one. */
  startSession?: StartSession;
}

const MAX_FORM_BYTES = 8 * 1024;

type Fields = Record<string, unknown>;

/** The Origin of a request names this server (or there is none: a script, curl). */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function credentials(body: unknown): { username: string; password: string } | null {
  if (typeof body !== 'object' || body === null) return null;
  const { username, password } = body as Fields;
  if (typeof username !== 'string' || typeof password !== 'string') return null;
  if (!username.trim() || username.length > 256 || hasTerminalControl(username)) return null;
  if (!password || password.length > 1024) return null;
  return { username: username.trim(), password };
}

export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app: FastifyInstance, opts: SessionRoutesOptions) => {
  const { access, logger } = opts;
  const secure = access.signIn.secureCookies;
  const startSession = opts.startSession ?? sessionStarter(access, logger);
  app.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: MAX_FORM_BYTES }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  const page = (reply: FastifyReply, status: number, next: string, message?: string, username?: string): FastifyReply =>
    reply.code(status).header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(signInPage({ next, message, username, ...(opts.singleSignOn ? { singleSignOn: opts.singleSignOn } : {}) }));

  app.get(SIGN_IN_PATH, async (request, reply) => page(reply, 200, safeNext((request.query as Fields | undefined)?.next)));

  app.post(SIGN_IN_PATH, { bodyLimit: MAX_FORM_BYTES }, async (request, reply) => {
    const form = isForm(request);
    const next = safeNext((request.body as Fields | null)?.next);
    const fail = (e: AccessError, username?: string): FastifyReply => {
      if (e.code === 'LOGIN_LOCKED') reply.header('Retry-After', String(Number(/(\d+) s/.exec(e.message)?.[1] ?? access.signIn.lockSeconds)));
      return form ? page(reply, e.status, next, e.message, username) : sendAccessError(reply, e);
    };
    if (!sameOrigin(request)) return fail(new AccessError(403, 'CSRF_REJECTED', 'a sign-in from another site is refused: open the sign-in page of this server'));
    if (!access.pool || !access.guardian) return fail(new AccessError(503, 'DATABASE_UNAVAILABLE', 'sessions need PostgreSQL: this API has no database'));
    const creds = credentials(request.body);
    if (!creds) return fail(new AccessError(400, 'USAGE', 'send {"username": "...", "password": "..."} (a user name of at most 256 characters, a password of at most 1024)'));
    if (!access.authenticator.configured) {
      return fail(new AccessError(401, 'LOGIN_FAILED', 'no password sign-in is configured on this API: set OUK_LDAP_URL (the directory), or OUK_BREAK_GLASS=true with DASHBOARD_USER and DASHBOARD_PASSWORD (with OUK_OIDC_ISSUER, use the page\'s single sign-on link)'));
    }
    const at = access.now();
    const address = request.ip;
    let person: Person;
    try {
      const wait = await access.guardian.waitSeconds(creds.username, address, at);
      if (wait > 0) {
        logger.warn({ ip: address }, 'sign-in refused: locked (back-off or lockout)');
        return fail(new AccessError(429, 'LOGIN_LOCKED', `too many failed sign-ins for this account or from this address: try again in ${wait} s`), creds.username);
      }
      person = await access.authenticator.authenticate(creds.username, creds.password);
    } catch (e) {
      if (isOukError(e) && e.code === 'LOGIN_FAILED') {
        await access.guardian.failed(creds.username, address, at).catch((err: unknown) => logger.error({ err }, 'could not count a failed sign-in'));
        logger.warn({ ip: address }, 'sign-in failed');
        // one fixed text whatever refused it (unknown user, wrong password, no role): the answers cannot differ
        return fail(new AccessError(401, 'LOGIN_FAILED', LOGIN_FAILED_MESSAGE), creds.username);
      }
      if (isOukError(e) && (e.code === 'DIRECTORY_UNAVAILABLE' || e.code === 'DATABASE_UNAVAILABLE')) {
        logger.error({ code: e.code, ip: address }, 'sign-in could not be checked');
        return fail(new AccessError(503, e.code, e.message), creds.username);
      }
      logger.error({ err: e instanceof Error ? { name: e.name, message: e.message } : String(e) }, 'sign-in failed unexpectedly');
      return fail(new AccessError(503, 'DIRECTORY_UNAVAILABLE', 'the sign-in could not be checked: try again in a moment, and tell the administrator if it persists'), creds.username);
    }
    try {
      await access.guardian.succeeded(creds.username);
    } catch (e) {
      return fail(new AccessError(503, 'DATABASE_UNAVAILABLE', `the sign-in could not be recorded (${e instanceof Error ? e.message : String(e)}): try again in a moment`));
    }
    return startSession(request, reply, person, next);
  });

  app.get('/auth/me', async (request, reply) => {
    try {
      const who = await access.identify(request);
      if (!who) return sendAccessError(reply, new AccessError(401, 'SESSION_REQUIRED', 'not signed in (or the session ended): POST /auth/login'));
      return reply.header('Cache-Control', 'no-store').send(personJson(who.person, who.sessionId));
    } catch (e) {
      return sendAccessError(reply, e);
    }
  });

  app.post('/auth/logout', { bodyLimit: MAX_FORM_BYTES }, async (request, reply) => {
    const form = isForm(request);
    let who;
    try {
      who = await access.identify(request);
    } catch (e) {
      return sendAccessError(reply, e);
    }
    if (who?.sessionId) {
      const header = request.headers[CSRF_HEADER];
      const presented = typeof header === 'string' ? header : (request.body as Fields | null)?.[CSRF_FIELD];
      if (!csrfMatches(who.sessionId, typeof presented === 'string' ? presented : undefined)) {
        return sendAccessError(reply, new AccessError(403, 'CSRF_REJECTED', `sign-out needs the session's CSRF token (${CSRF_HEADER}, or the form's ${CSRF_FIELD})`));
      }
      try {
        await endSession(access.pool!, sessionIdHash(who.sessionId), access.now());
      } catch (e) {
        return sendAccessError(reply, e);
      }
      logger.info({ sub: who.person.sub, via: who.person.via }, 'signed out');
    }
    reply.header('Set-Cookie', clearedSessionCookie(secure)).header('Cache-Control', 'no-store');
    return form ? reply.redirect(SIGN_IN_PATH, 303) : reply.code(204).send();
  });
};
