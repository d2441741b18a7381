/**
 * Every way of signing in, mounted together (docs/operations.md, "Signing in"):
 * the sign-in page and POST /auth/login (the directory, or the break-glass
 * account: api/session-routes.ts) and, when OUK_OIDC_ISSUER is set, single
 * sign-on (api/oidc-routes.ts), whose callback starts the session the same way
 * (api/session-start.ts). The sign-in page then offers "Sign in with <provider>".
 */
import type { FastifyInstance } from 'fastify';
import type { OidcSettings } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { parseRoleMap } from '../identity/role-map.ts';
import type { Access } from './access.ts';
import { oidcRouteOptions, oidcRoutes } from './oidc-routes.ts';
import { sessionRoutes } from './session-routes.ts';
import { sessionStarter } from './session-start.ts';

export async function registerSignIn(app: FastifyInstance, opts: { access: Access; logger: Logger; oidc?: OidcSettings | undefined }): Promise<void> {
  const { access, logger, oidc } = opts;
  const startSession = sessionStarter(access, logger);
  await app.register(sessionRoutes, { access, logger, startSession, ...(oidc ? { singleSignOn: { name: oidc.displayName } } : {}) });
  if (oidc) await app.register(oidcRoutes, oidcRouteOptions(oidc, parseRoleMap(oidc.roleMap), startSession, { logger }));
}
