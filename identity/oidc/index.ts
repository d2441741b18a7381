/**
 * Single sign-on through the site's OpenID provider (OUK_OIDC_*): what
 * identity/oidc/ offers the API.
 *
 * - client.ts       the authorization code flow with PKCE: beginLogin, completeLogin → Person
 * - login-state.ts  the pending sign-in (verifier, state, nonce), sealed for a short-lived cookie
 * - person.ts       verified claims → Person (`iss#sub`, roles from the groups claim)
 * - http.ts         the bounded fetch every request to the provider goes through
 * - errors.ts       openid-client's failures as OIDC_UNAVAILABLE / OIDC_REJECTED
 * - setup.ts        the client from OidcSettings: the secret and CA files read once
 */
export { createOidcClient, type OidcClient, type OidcClientOptions } from './client.ts';
export { LOGIN_TTL_SECONDS, loginSealKey, openLogin, sealLogin, type PendingLogin } from './login-state.ts';
export { personFromClaims } from './person.ts';
export { oidcClientFromSettings, type OidcSetup } from './setup.ts';
