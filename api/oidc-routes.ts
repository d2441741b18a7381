/**
 * Single sign-on through the site's OpenID provider: the two routes of the
 * authorization code flow (identity/oidc/ does the protocol).
 *
 *   GET /auth/oidc/login     302 to the provider's authorization endpoint (`?next=` a local
 *                            path to land on afterwards, kept in its own cookie); the pending
 *                            sign-in (PKCE verifier, state, nonce) goes into a sealed,
 *                            HttpOnly, SameSite=Lax cookie for /auth/oidc, 10 minutes
 *   GET /auth/oidc/callback  the provider's answer: the cookie opened, state checked,
 *                            the code redeemed, the ID token verified, the groups
 *                            mapped to roles; then `startSession(request, reply, person)`
 *                            (the API's sessions) answers
 *
 * Failures answer `{ error: { code, message } }`, never a session: 503
 * OIDC_UNAVAILABLE (with Retry-After), 401 OIDC_REJECTED or LOGIN_FAILED, 400
 * OIDC_LOGIN_EXPIRED. The cookie is cleared at the callback whatever happens: a
 * pending sign-in is used once.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OukError, type ErrorCode } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { OidcSettings } from '../lib/config.ts';
import type { Person } from '../identity/person.ts';
import type { RoleMap } from '../identity/role-map.ts';
import { LOGIN_TTL_SECONDS, loginSealKey, oidcClientFromSettings, openLogin, sealLogin, type OidcClient } from '../identity/oidc/index.ts';

export const OIDC_LOGIN_COOKIE = 'ouk_oidc_login';
/** Where to go once signed in (`/auth/oidc/login?next=/a/local/path`), kept beside the pending sign-in. */
export const OIDC_NEXT_COOKIE = 'ouk_oidc_next';
const COOKIE_PATH = '/auth/oidc';

/** `next`: the local path the person asked for before signing in (the sign-in page's `next`), if any. */
export type StartSession = (request: FastifyRequest, reply: FastifyReply, person: Person, next?: string) => Promise<unknown> | unknown;

export interface OidcRoutesOptions {
  client: OidcClient;
  /** identity/oidc loginSealKey(client secret): seals the pending sign-in. */
  sealKey: Buffer;
  startSession: StartSession;
  /** Cookies marked Secure: true whenever OUK is reached over https (the redirect URI's scheme). */
  secureCookies: boolean;
  now?: () => number;
  logger?: Logger;
}

/**
 * The routes' options from the parsed settings (lib/config.ts oidcSettings) and OUK_ROLE_MAP:
 *
 *   const oidc = oidcSettings(env);
 *   if (oidc) await app.register(oidcRoutes, oidcRouteOptions(oidc, roleMap, startSession, { logger }));
 *
 * `clocks` are for tests: `idToken` checks the ID token's times, `routes` the pending sign-in's expiry.
 */
export function oidcRouteOptions(
  settings: OidcSettings,
  roleMap: RoleMap,
  startSession: StartSession,
  extra: { logger?: Logger; clocks?: { idToken?: () => number; routes?: () => number } } = {},
): OidcRoutesOptions {
  const { client, clientSecret } = oidcClientFromSettings(settings, roleMap, extra.clocks?.idToken);
  return {
    client,
    sealKey: loginSealKey(clientSecret),
    startSession,
    secureCookies: new URL(settings.redirectUri).protocol === 'https:',
    ...(extra.clocks?.routes ? { now: extra.clocks.routes } : {}),
    ...(extra.logger ? { logger: extra.logger } : {}),
  };
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  OIDC_UNAVAILABLE: 503,
  OIDC_REJECTED: 401,
  LOGIN_FAILED: 401,
  OIDC_LOGIN_EXPIRED: 400,
};

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 16 * 1024) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function loginCookie(value: string, maxAge: number, secure: boolean, name = OIDC_LOGIN_COOKIE): string {
  return `${name}=${value}; Path=${COOKIE_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** A local path (checked again by whoever redirects to it), URI-encoded for a cookie; '' for none. */
function nextOf(query: unknown): string {
  const next = typeof query === 'object' && query !== null ? (query as Record<string, unknown>).next : undefined;
  if (typeof next !== 'string' || next.length > 2000 || !/^\/(?![/\\])/.test(next)) return '';
  return encodeURIComponent(next);
}

export const oidcRoutes: FastifyPluginAsync<OidcRoutesOptions> = async (app, opts) => {
  const now = opts.now ?? Date.now;

  const refuse = (request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply => {
    const e = err instanceof OukError && STATUS[err.code] ? err : new OukError('OIDC_UNAVAILABLE', 'sign-in through the OpenID provider failed unexpectedly: try again; the API log has the cause', { cause: err });
    const status = STATUS[e.code] ?? 503;
    const log = { url: request.url.split('?')[0], ip: request.ip, code: e.code, reason: e.message, cause: e.cause instanceof Error ? e.cause.message : undefined };
    if (status >= 500) opts.logger?.error(log, 'OpenID sign-in: provider unavailable');
    else opts.logger?.warn(log, 'OpenID sign-in refused');
    if (status === 503) reply.header('Retry-After', '30');
    return reply.code(status).header('Cache-Control', 'no-store').send({ error: { code: e.code, message: e.message } });
  };

  app.get('/auth/oidc/login', async (request, reply) => {
    try {
      const { authorizationUrl, pending } = await opts.client.beginLogin();
      const next = nextOf(request.query);
      if (next) reply.header('Set-Cookie', loginCookie(next, LOGIN_TTL_SECONDS, opts.secureCookies, OIDC_NEXT_COOKIE));
      return reply
        .header('Set-Cookie', loginCookie(sealLogin(pending, opts.sealKey, now()), LOGIN_TTL_SECONDS, opts.secureCookies))
        .header('Cache-Control', 'no-store')
        .redirect(authorizationUrl.href, 302);
    } catch (err) {
      return refuse(request, reply, err);
    }
  });

  app.get('/auth/oidc/callback', async (request, reply) => {
    reply.header('Set-Cookie', loginCookie('', 0, opts.secureCookies));
    const nextCookie = cookieValue(request.headers.cookie, OIDC_NEXT_COOKIE);
    if (nextCookie !== undefined) reply.header('Set-Cookie', loginCookie('', 0, opts.secureCookies, OIDC_NEXT_COOKIE));
    let person: Person;
    try {
      const pending = openLogin(cookieValue(request.headers.cookie, OIDC_LOGIN_COOKIE), opts.sealKey, now());
      const q = request.url.indexOf('?');
      person = await opts.client.completeLogin(q < 0 ? '' : request.url.slice(q + 1), pending);
    } catch (err) {
      return refuse(request, reply, err);
    }
    opts.logger?.info({ sub: person.sub, roles: person.roles, via: person.via }, 'OpenID sign-in');
    let next: string | undefined;
    try {
      next = nextCookie ? decodeURIComponent(nextCookie) : undefined;
    } catch {
      next = undefined;
    }
    return opts.startSession(request, reply, person, next);
  });
};
