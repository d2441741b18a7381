/**
 * Single sign-on: what openid-client's failures mean to an operator. Two answers,
 * neither of them a sign-in:
 *
 * - OIDC_REJECTED (the answer does not hold): the provider refused the person
 *   (`error=access_denied`), the token endpoint refused the code (used twice,
 *   expired, another client's: `invalid_grant`), or the callback or the ID token
 *   fails a check — state, issuer, audience, nonce, expiry, signature.
 * - OIDC_UNAVAILABLE (the provider cannot be read): everything else — down, slow,
 *   a 5xx, not JSON, metadata missing an endpoint. Retrying later may work.
 */
import { AuthorizationResponseError, ResponseBodyError } from 'openid-client';
import { OukError } from '../../lib/errors.ts';

/** openid-client's codes for a callback or an ID token that fails a check. */
const REJECTING_CODES = new Set([
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
  'OAUTH_INVALID_RESPONSE',
]);

/** Our own failure (identity/oidc/http.ts), when openid-client wrapped it. */
function ours(err: unknown): OukError | undefined {
  if (err instanceof OukError) return err;
  return err instanceof Error && err.cause instanceof OukError ? err.cause : undefined;
}

function codeOf(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The ID token claim a check failed on (openid-client names it in the cause), for the message. */
function claimOf(err: unknown): string | undefined {
  let at: unknown = err;
  for (let depth = 0; depth < 3 && typeof at === 'object' && at !== null; depth++) {
    const claim = (at as { claim?: unknown }).claim;
    if (typeof claim === 'string' && /^[a-z_]{1,32}$/.test(claim)) return claim;
    at = (at as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

export function rejected(why: string, cause?: unknown): OukError {
  return new OukError('OIDC_REJECTED', `sign-in through the OpenID provider refused: ${why}. Sign in again from the start`, { cause });
}

/** The OukError for a failure while discovering the provider or reading its keys. */
export function providerUnavailable(err: unknown, issuer: string): OukError {
  const own = ours(err);
  if (own) return own;
  return new OukError(
    'OIDC_UNAVAILABLE',
    `the OpenID provider ${issuer} cannot be used (${describe(err)}): check the provider, OUK_OIDC_ISSUER and OUK_CA_FILE; sign in again once it answers`,
    { cause: err, retryable: true },
  );
}

/** The OukError for a failure while completing a sign-in at the callback. */
export function callbackFailure(err: unknown, issuer: string): OukError {
  const own = ours(err);
  if (own) return own;
  if (err instanceof AuthorizationResponseError) return rejected(`the provider answered ${describe(err.error)}`, err);
  if (err instanceof ResponseBodyError) {
    if (err.status >= 500) return providerUnavailable(err, issuer);
    return rejected(`the provider's token endpoint answered ${describe(err.error)} (a code used twice or expired)`, err);
  }
  const code = codeOf(err);
  if (code && REJECTING_CODES.has(code)) {
    const claim = claimOf(err);
    return rejected(claim ? `the ID token's "${claim}" claim does not hold (${describe(err)})` : describe(err), err);
  }
  return providerUnavailable(err, issuer);
}
