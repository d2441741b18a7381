/**
 * The credential checks that the API's sign-in (api/access.ts) and the
 * webhook share: HTTP Basic parsing, constant-time comparison (hash first,
 * so lengths do not leak either), and `createOperatorAuthenticator`, which
 * checks a Basic pair against DASHBOARD_USER / DASHBOARD_PASSWORD or an
 * operator JWT (`role: "operator"` or `"admin"`, lib/tokens.ts) — kept for
 * callers that need a yes/no on one Authorization header. Who may use the
 * dashboard and the operator routes, with sessions, roles and CSRF, is
 * api/access.ts; the shared account is break-glass only there.
 *
 * JWTs go through lib/tokens.ts, the scan tokens' verifier: the algorithm is
 * pinned to the key's type, `alg: none`, HMAC (key confusion), a wrong issuer,
 * a missing `sub`/`exp` or an expired token are refused.
 */
import crypto from 'node:crypto';
import { hasRole, loadPublicTokenKey, verifyToken, type PublicTokenKey, type Role } from '../lib/tokens.ts';
import type { CryptoPolicy } from '../lib/crypto-policy.ts';

export const OPERATOR_ROLE: Role = 'operator';

export interface OperatorAuthConfig {
  dashboardUser?: string;
  dashboardPassword?: string;
  /** PEM text of the public key, or the path of a PEM file. */
  jwtPublicKey?: string;
  jwtIssuer?: string;
  /** STELLA_JWT_MAX_DAYS */
  jwtMaxDays?: number;
  /** STELLA_CRYPTO_POLICY: a token outside it is refused */
  cryptoPolicy?: CryptoPolicy;
}

export type Principal = { method: 'basic'; user: string } | { method: 'jwt'; subject: string };

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: string };

function sha256(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time string equality (hash first so lengths do not leak either). */
export function safeEqual(a: string, b: string): boolean {
  return crypto.timingSafeEqual(sha256(a), sha256(b));
}

export function basicConfigured(cfg: OperatorAuthConfig): boolean {
  return Boolean(cfg.dashboardUser && cfg.dashboardPassword);
}

export function jwtConfigured(cfg: OperatorAuthConfig): boolean {
  return Boolean(cfg.jwtPublicKey);
}

/** Whether any operator credential is configured; without one the dashboard stays off. */
export function operatorAuthConfigured(cfg: OperatorAuthConfig): boolean {
  return basicConfigured(cfg) || jwtConfigured(cfg);
}

export function parseBasic(header: string): { user: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return null;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** An authenticator bound to a configuration (the key is loaded once). */
export function createOperatorAuthenticator(cfg: OperatorAuthConfig): (authorization: string | undefined) => Promise<AuthResult> {
  let key: PublicTokenKey | undefined;
  let keyError: string | undefined;
  if (cfg.jwtPublicKey) {
    try {
      key = loadPublicTokenKey(cfg.jwtPublicKey);
    } catch (e) {
      keyError = e instanceof Error ? e.message : String(e);
    }
  }
  return async (authorization) => {
    if (!authorization) return { ok: false, reason: 'no credentials' };
    if (/^Basic\s/i.test(authorization)) {
      if (!basicConfigured(cfg)) return { ok: false, reason: 'basic authentication is not configured' };
      const creds = parseBasic(authorization);
      if (!creds) return { ok: false, reason: 'malformed basic credentials' };
      // Evaluate both comparisons: no early exit on the user name.
      const userOk = safeEqual(creds.user, cfg.dashboardUser as string);
      const passOk = safeEqual(creds.password, cfg.dashboardPassword as string);
      return userOk && passOk ? { ok: true, principal: { method: 'basic', user: creds.user } } : { ok: false, reason: 'wrong user or password' };
    }
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (bearer) {
      if (!key) return { ok: false, reason: keyError ?? 'JWT authentication is not configured' };
      try {
        // the same offline verification as scan tokens (lib/tokens.ts): pinned algorithm, issuer, expiry, subject
        const verified = await verifyToken(bearer[1], key, { ...(cfg.jwtIssuer ? { issuer: cfg.jwtIssuer } : {}), ...(cfg.jwtMaxDays ? { maxDays: cfg.jwtMaxDays } : {}), ...(cfg.cryptoPolicy ? { policy: cfg.cryptoPolicy } : {}) });
        if (!hasRole(verified, OPERATOR_ROLE)) return { ok: false, reason: 'token is valid but not an operator token (role "operator" or "admin" missing)' };
        return { ok: true, principal: { method: 'jwt', subject: verified.claims.sub } };
      } catch (e) {
        return { ok: false, reason: `token refused: ${e instanceof Error ? e.message : String(e)}` };
      }
    }
    return { ok: false, reason: 'unsupported authorization scheme' };
  };
}
