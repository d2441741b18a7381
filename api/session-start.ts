/**
 * Starting a session for a person who has just proved who they are, whichever
 * way they signed in: the password form or JSON (api/session-routes.ts: the
 * directory or the break-glass account) and single sign-on (api/oidc-routes.ts,
 * the provider's callback). One place records the session (infra/sessions.ts),
 * puts a break-glass sign-in on the audit
 * trail, sets the cookie and answers:
 *
 *   POST, JSON            200 {sub, username, roles, via, csrfToken} + the cookie
 *   POST, the page's form 303 to `next`
 *   GET (the callback)    200, a page that moves on to `next` itself: the session
 *                         cookie is SameSite=Strict, and a redirect at the end of a
 *                         chain that began at the provider's site would not carry it
 *
 * A session that cannot be stored answers 503 DATABASE_UNAVAILABLE, never a sign-in.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../lib/logger.ts';
import { appendAudit } from '../infra/audit.ts';
import { createSession, pruneSessions } from '../infra/sessions.ts';
import type { Person } from '../identity/person.ts';
import { AccessError, sendAccessError, type Access } from './access.ts';
import { csrfTokenFor, newSessionId, sessionCookie, sessionIdHash } from './session-cookie.ts';
import { safeNext, signInPage } from './sign-in-page.ts';

export const FORM = 'application/x-www-form-urlencoded';

/** `next`: where the browser goes once signed in (a local path; anything else is the dashboard). */
export type StartSession = (request: FastifyRequest, reply: FastifyReply, person: Person, next?: string) => Promise<FastifyReply>;

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function isForm(request: FastifyRequest): boolean {
  return String(request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM);
}

export function personJson(p: Person, sessionId: string | null): Record<string, unknown> {
  return { sub: p.sub, username: p.username, roles: p.roles, via: p.via, ...(sessionId ? { csrfToken: csrfTokenFor(sessionId) } : {}) };
}

/** A page that goes on to `next` at once (and a link, should the browser not follow). */
function onwardPage(next: string): string {
  const to = escapeHtml(next);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${to}"><title>Signed in — Stella OUK</title></head><body><p>Signed in. <a href="${to}">Continue</a></p></body></html>`;
}

export function sessionStarter(access: Access, logger: Logger): StartSession {
  return async (request, reply, person, nextRaw) => {
    const json = request.method !== 'GET' && !isForm(request);
    const next = safeNext(nextRaw);
    const at = access.now();
    const address = request.ip;
    const id = newSessionId();
    try {
      if (!access.pool) throw new Error('this API has no database');
      await createSession(access.pool, {
        idHash: sessionIdHash(id),
        sub: person.sub,
        username: person.username,
        displayName: person.displayName ?? null,
        roles: person.roles,
        via: person.via,
        address,
        now: at,
        expiresAt: new Date(at.getTime() + access.signIn.sessionMaxSeconds * 1000),
      });
      // sessions that ended more than a day ago go, a few at a time as people sign in
      await pruneSessions(access.pool, at, access.signIn.sessionIdleSeconds);
      if (person.via === 'break-glass') {
        await appendAudit(access.pool, { at, actor: person.sub, via: person.via, action: 'auth.break-glass', target: address, reason: null, outcome: 'ok' });
      }
    } catch (e) {
      const err = new AccessError(503, 'DATABASE_UNAVAILABLE', `the session could not be stored (${e instanceof Error ? e.message : String(e)}): try again in a moment`);
      if (json) return sendAccessError(reply, err);
      return reply.code(503).header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(signInPage({ next, message: err.message }));
    }
    logger.info({ sub: person.sub, via: person.via, roles: person.roles, ip: address }, 'signed in');
    reply.header('Set-Cookie', sessionCookie(id, access.signIn.secureCookies)).header('Cache-Control', 'no-store');
    if (json) return reply.send(personJson(person, id));
    if (request.method === 'GET') return reply.type('text/html; charset=utf-8').send(onwardPage(next));
    return reply.redirect(next, 303);
  };
}
