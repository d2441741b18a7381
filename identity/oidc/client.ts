/**
 * Single sign-on through the site's OpenID provider: the authorization code flow
 * with PKCE (S256), `state` and `nonce`, built on openid-client.
 *
 *   const oidc = createOidcClient({ settings, clientSecret, roleMap, now });
 *   const { authorizationUrl, pending } = await oidc.beginLogin();   // redirect there; keep `pending`
 *   const person = await oidc.completeLogin(callbackSearch, pending); // at the redirect URI
 *
 * The provider's metadata is discovered at the first sign-in (the API starts while
 * the provider is down) and kept once read; a failed discovery is tried again at
 * the first sign-in 5 s later (those before get the same 503 at once). The ID token is verified by openid-client: signature against
 * the provider's JWKS, issuer, audience (our client id, `azp` when several),
 * expiry and issued-at against the injected clock, nonce; `state` is checked
 * here first and again by openid-client; the code is redeemed once with the PKCE
 * verifier and the client secret (HTTP Basic, or POST when that is all the
 * provider takes).
 *
 * Failures: OIDC_UNAVAILABLE (the provider cannot be read), OIDC_REJECTED (its
 * answer does not hold), LOGIN_FAILED (no mapped role): identity/oidc/errors.ts.
 *
 * The groups claim is read from the ID token; a provider that leaves it out of
 * the ID token (claims released by scope go to userinfo by default) is asked at
 * its userinfo endpoint, for the same subject.
 */
import * as oidc from 'openid-client';
import type { OidcSettings } from '../../lib/config.ts';
import type { Person } from '../person.ts';
import type { RoleMap } from '../role-map.ts';
import { callbackFailure, providerUnavailable, rejected } from './errors.ts';
import { providerFetch } from './http.ts';
import type { PendingLogin } from './login-state.ts';
import { personFromClaims, type IdTokenClaims } from './person.ts';

/** A bounded answer: metadata, keys and tokens are a few KiB; 256 KiB leaves room for large JWKS. */
const MAX_PROVIDER_BYTES = 256 * 1024;
const PROVIDER_TIMEOUT_MS = 10_000;
const MAX_CALLBACK_CHARS = 8192;
/** After a failed discovery, sign-ins answer that failure for this long instead of each waiting on the provider. */
const DISCOVERY_BACKOFF_MS = 5_000;

export interface OidcClientOptions {
  settings: Pick<OidcSettings, 'issuer' | 'clientId' | 'redirectUri' | 'groupsClaim' | 'scopes'>;
  clientSecret: string;
  roleMap: RoleMap;
  /** PEM text of the site's CA (OUK_CA_FILE) for an https provider. */
  ca?: string;
  /** The clock ID tokens are checked against (ms since the epoch); default Date.now. */
  now?: () => number;
  timeoutMs?: number;
}

export interface OidcClient {
  readonly issuer: string;
  /** Where to send the browser, and what to keep until it comes back. */
  beginLogin(): Promise<{ authorizationUrl: URL; pending: PendingLogin }>;
  /** The person, from the query the provider sent the browser back with (`?code=…&state=…`). */
  completeLogin(callbackSearch: string, pending: PendingLogin): Promise<Person>;
}

export function createOidcClient(options: OidcClientOptions): OidcClient {
  const { settings, clientSecret, roleMap } = options;
  const now = options.now ?? Date.now;
  const fetchBounded = providerFetch({ ca: options.ca, timeoutMs: options.timeoutMs ?? PROVIDER_TIMEOUT_MS, maxBytes: MAX_PROVIDER_BYTES });
  const insecure = new URL(settings.issuer).protocol === 'http:'; // config allows it on loopback only
  let metadata: oidc.ServerMetadata | undefined;
  let jwksCache: oidc.ExportedJWKSCache | undefined;
  let lastFailure: { atMs: number; error: Error } | undefined;

  /** A configuration whose clock is the injected one (openid-client takes it as a skew). */
  function configuration(server: oidc.ServerMetadata): oidc.Configuration {
    const methods = server.token_endpoint_auth_methods_supported;
    const auth = !methods || methods.includes('client_secret_basic') ? oidc.ClientSecretBasic(clientSecret) : oidc.ClientSecretPost(clientSecret);
    const config = new oidc.Configuration(server, settings.clientId, { [oidc.clockSkew]: Math.round((now() - Date.now()) / 1000) }, auth);
    config[oidc.customFetch] = fetchBounded;
    if (insecure) oidc.allowInsecureRequests(config);
    if (jwksCache) oidc.setJwksCache(config, jwksCache);
    return config;
  }

  async function discover(): Promise<oidc.ServerMetadata> {
    if (metadata) return metadata;
    if (lastFailure && Math.abs(Date.now() - lastFailure.atMs) < DISCOVERY_BACKOFF_MS) throw lastFailure.error;
    try {
      const discovered = await oidc.discovery(new URL(settings.issuer), settings.clientId, undefined, oidc.ClientSecretBasic(clientSecret), {
        [oidc.customFetch]: fetchBounded,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      const server = discovered.serverMetadata();
      if (!server.authorization_endpoint || !server.token_endpoint || !server.jwks_uri) {
        throw new Error('its metadata names no authorization, token or JWKS endpoint');
      }
      // Entra ID takes PKCE without listing it: only a list that leaves S256 out is refused
      const pkceMethods = server.code_challenge_methods_supported;
      if (pkceMethods && !pkceMethods.includes('S256')) {
        throw new Error(`its metadata offers PKCE only with ${pkceMethods.join(', ').slice(0, 100)}, not S256`);
      }
      metadata = server;
      return server;
    } catch (err) {
      const error = providerUnavailable(err, settings.issuer);
      lastFailure = { atMs: Date.now(), error };
      throw error;
    }
  }

  return {
    issuer: settings.issuer,

    async beginLogin() {
      const config = configuration(await discover());
      const pending: PendingLogin = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() };
      const authorizationUrl = oidc.buildAuthorizationUrl(config, {
        redirect_uri: settings.redirectUri,
        response_type: 'code',
        scope: settings.scopes,
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
      });
      return { authorizationUrl, pending };
    },

    async completeLogin(callbackSearch, pending) {
      if (callbackSearch.length > MAX_CALLBACK_CHARS) throw rejected('the callback is longer than any provider sends');
      const query = new URLSearchParams(callbackSearch);
      if (query.getAll('state').length !== 1 || query.get('state') !== pending.state) {
        throw rejected('the callback\'s state is not the one this browser was sent with');
      }
      const config = configuration(await discover());
      const callback = new URL(settings.redirectUri);
      callback.search = query.toString();
      try {
        const tokens = await oidc.authorizationCodeGrant(config, callback, {
          pkceCodeVerifier: pending.codeVerifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        jwksCache = oidc.getJwksCache(config) ?? jwksCache;
        const claims = tokens.claims() as IdTokenClaims | undefined;
        if (!claims) throw rejected('the provider sent no ID token');
        if (claims[settings.groupsClaim] !== undefined || !config.serverMetadata().userinfo_endpoint) {
          return personFromClaims(claims, settings.groupsClaim, roleMap);
        }
        // Providers that keep scope claims out of the ID token (OpenID Connect Core 5.4) answer them at
        // userinfo: asked with the access token just issued, for the ID token's subject; the ID token's
        // own claims (iss, sub) always win.
        const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        return personFromClaims({ ...info, ...claims }, settings.groupsClaim, roleMap);
      } catch (err) {
        throw callbackFailure(err, settings.issuer);
      }
    },
  };
}
