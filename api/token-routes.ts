/**
 * Personal API tokens a signed-in person issues for themself, for scripts:
 *
 *   POST /auth/tokens  {"role"?: "viewer"|"operator"|"admin", "ttl"?: "30d"}
 *     → 201 {token, sub, role, jti, expiresAt}
 *
 * The token carries the person's `sub` and one role no higher than theirs
 * (default: their highest), lives at most OUK_PERSONAL_TOKEN_MAX_DAYS, and is
 * signed with OUK_TOKEN_SIGNING_KEY (lib/tokens.ts issueToken), so the API
 * verifies it like any other (STELLA_JWT_PUBLIC_KEY). Only a signed-in session
 * issues one (with its CSRF token): a token never mints another. Every issue
 * is on the audit trail (`token.issue`, target: its jti, role and expiry).
 * Errors: 400 USAGE (a role or ttl that is not one), 403 ROLE_REQUIRED (a
 * role above the person's, or asked with a token), 503 PERSONAL_TOKENS_OFF
 * (no signing key configured).
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../lib/config.ts';
import { isOukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { hasRole, issueToken, ROLES, type Role } from '../lib/tokens.ts';
import { AccessError, sendAccessError, type Access } from './access.ts';

export interface TokenRoutesOptions {
  access: Access;
  config: Pick<Config, 'jwtIssuer' | 'keyPassword'> & Partial<Pick<Config, 'cryptoPolicy'>>;
  logger: Logger;
}

export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (app: FastifyInstance, opts: TokenRoutesOptions) => {
  const { access, logger } = opts;
  await app.register(async (scoped) => {
    scoped.addHook('onRequest', access.guard('viewer'));
    scoped.post('/auth/tokens', { bodyLimit: 4096 }, async (request, reply) => {
      const person = request.person!;
      const key = access.signIn.tokenSigningKey;
      const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as { role?: unknown; ttl?: unknown };
      try {
        if (!key) throw new AccessError(503, 'PERSONAL_TOKENS_OFF', 'personal tokens are off on this API: set OUK_TOKEN_SIGNING_KEY (the private key of STELLA_JWT_PUBLIC_KEY), or ask for a token issued with `stella token issue`');
        if (!request.sessionId) throw new AccessError(403, 'ROLE_REQUIRED', 'a personal token is issued to a signed-in person (POST /auth/login), never to another token');
        const highest = [...ROLES].reverse().find((r) => person.roles.includes(r));
        const role = body.role === undefined ? highest : body.role;
        if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw new AccessError(400, 'USAGE', `"role" must be one of ${ROLES.join(', ')}`);
        if (!hasRole({ roles: [...person.roles] }, role as Role)) throw new AccessError(403, 'ROLE_REQUIRED', `${person.username} holds ${person.roles.join(', ') || 'no role'}: a personal token cannot carry ${role}`);
        const ttl = body.ttl === undefined ? '30d' : body.ttl;
        if (typeof ttl !== 'string' || ttl.length > 32) throw new AccessError(400, 'USAGE', '"ttl" must be a duration like 30d, 12h or 90m');
        const now = access.now();
        const issued = await issueToken({ privateKey: key, passphrase: opts.config.keyPassword, sub: person.sub, role, ttl, issuer: opts.config.jwtIssuer, now, ...(opts.config.cryptoPolicy ? { policy: opts.config.cryptoPolicy } : {}) }).catch((e: unknown) => {
          throw isOukError(e) && e.code === 'USAGE' ? new AccessError(400, 'USAGE', e.message) : e;
        });
        const maxSeconds = access.signIn.personalTokenMaxDays * 86_400;
        if (issued.claims.exp - (issued.claims.iat ?? 0) > maxSeconds) {
          throw new AccessError(400, 'USAGE', `a personal token lives at most ${access.signIn.personalTokenMaxDays} days (OUK_PERSONAL_TOKEN_MAX_DAYS): ask for a shorter ttl`);
        }
        const expiresAt = new Date(issued.claims.exp * 1000).toISOString();
        await access.audit(request, 'token.issue', `jti ${issued.claims.jti} role ${role} until ${expiresAt}`, 'ok');
        logger.info({ sub: person.sub, via: person.via, role, jti: issued.claims.jti, expiresAt }, 'personal token issued');
        return reply.code(201).header('Cache-Control', 'no-store').send({ token: issued.token, sub: person.sub, role, jti: issued.claims.jti, expiresAt });
      } catch (e) {
        if (!(e instanceof AccessError)) logger.error({ err: e instanceof Error ? { name: e.name, message: e.message } : String(e) }, 'personal token not issued');
        return sendAccessError(reply, e instanceof AccessError ? e : new AccessError(503, 'PERSONAL_TOKENS_OFF', `the token could not be signed (${e instanceof Error ? e.message : String(e)}): check OUK_TOKEN_SIGNING_KEY`));
      }
    });
  });
};
