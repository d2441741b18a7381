/**
 * Scan tokens: JWTs verified offline with jose against the local public key
 * STELLA_JWT_PUBLIC_KEY (a PEM file path or the PEM text itself). No key is
 * ever fetched (no JWKS, no `jku`/`x5u`): the host trusts that one key.
 *
 * The algorithm is pinned to the key's type, never taken from the token:
 * ECDSA P-256 -> ES256, Ed25519 -> EdDSA, RSA (2048 bits or more) -> RS256.
 * `alg: none`, an HMAC token (e.g. HS256 "signed" with the public key as the
 * secret: key confusion), any other algorithm, a bad signature, a wrong
 * issuer (STELLA_JWT_ISSUER, default "stella-ouk"), a token without `exp`, or
 * an expired one are each refused with TOKEN_INVALID and a message saying
 * which.
 *
 * Claims: `sub` (required: who the token is for), `exp` (required), `iat`,
 * `jti` (the token id; the quota counts per `jti`, or per `sub` without one),
 * `tier` (optional positive integer: that token's daily scan allowance; it
 * raises QUOTA_TOKEN for this token, never lowers it; see scan/quota.ts),
 * `role` (optional: `viewer`, `operator` or `admin`, see ROLES; `roles` as a
 * list and `scope` as space-separated words are read too). Each claim's type
 * is checked once the signature is: a `sub` that is not a non-empty string
 * (an object, "", 300 characters, a control character), a `jti` that is not
 * a short string, a `role` that is not a string, are TOKEN_INVALID — a
 * signed token is still outside input.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import * as jose from 'jose';
import { OukError } from './errors.ts';
import { hasTerminalControl } from './terminal-text.ts';
import { type CryptoPolicy, requireTokenAlg } from './crypto-policy.ts';

export type TokenAlg = 'ES256' | 'EdDSA' | 'RS256';

export interface TokenClaims {
  sub: string;
  iss: string;
  exp: number;
  iat?: number;
  jti?: string;
  tier?: number;
  /** `viewer`, `operator` or `admin` (ROLES): what the token may do beyond scanning. */
  role?: string;
}

/**
 * The roles a token may carry, each allowed what the ones before it are:
 * `viewer` reads the stored-SBOM inventory (list, diff, status), `operator`
 * also changes it and opens the job dashboard, `admin` everything. A token
 * with no role (a scan token) only scans.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface VerifiedToken {
  claims: TokenClaims;
  alg: TokenAlg;
  /** the quota identity: jti, else sub */
  id: string;
  /** the roles of ROLES the token names (in `role`, `roles` or `scope`); other words grant nothing */
  roles: Role[];
}

/** Whether the token holds `need` or a role above it. */
export function hasRole(token: Pick<VerifiedToken, 'roles'> | null | undefined, need: Role): boolean {
  const rank = ROLES.indexOf(need);
  return Boolean(token?.roles.some((r) => ROLES.indexOf(r) >= rank));
}

/** Longest `sub` and `jti` accepted (they are recorded, logged and printed). */
export const MAX_CLAIM_CHARS = 256;

export const DEFAULT_ISSUER = 'stella-ouk';
/** Largest accepted `tier` (scans a day). */
export const MAX_TIER = 1_000_000;

function readPem(source: string, what: string): string {
  const s = source.trim();
  if (s.startsWith('-----BEGIN')) return s;
  try {
    return fs.readFileSync(s, 'utf8');
  } catch (e) {
    throw new OukError('KEY_INVALID', `cannot read ${what} ${s} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a PEM file path or the PEM text`, { cause: e });
  }
}

/** The one algorithm a key may verify or sign. */
export function algorithmForKey(key: KeyObject): TokenAlg {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'ES256';
    throw new OukError('KEY_INVALID', `EC key on curve ${curve ?? 'unknown'}: token keys must be ECDSA P-256 (ES256), Ed25519 (EdDSA) or RSA >= 2048 bits (RS256)`);
  }
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new OukError('KEY_INVALID', `RSA key of ${bits} bits: token keys need at least 2048 bits`);
    return 'RS256';
  }
  throw new OukError('KEY_INVALID', `a ${type ?? 'symmetric'} key cannot sign tokens: use ECDSA P-256 (ES256), Ed25519 (EdDSA) or RSA >= 2048 bits (RS256)`);
}

export interface PublicTokenKey {
  key: KeyObject;
  alg: TokenAlg;
}

/** STELLA_JWT_PUBLIC_KEY (path or PEM text) as a verification key with its pinned algorithm. */
export function loadPublicTokenKey(source: string): PublicTokenKey {
  const pem = readPem(source, 'STELLA_JWT_PUBLIC_KEY');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new OukError('KEY_INVALID', `STELLA_JWT_PUBLIC_KEY is not a PEM public key (${(e as Error).message})`, { cause: e });
  }
  return { key, alg: algorithmForKey(key) };
}

/** The signing key (PKCS#8 PEM, encrypted ones with STELLA_KEY_PASSWORD). */
export function loadPrivateTokenKey(source: string, passphrase?: string): { key: KeyObject; alg: TokenAlg } {
  const pem = readPem(source, 'private key');
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase ? { key: pem, passphrase } : pem);
  } catch (e) {
    const msg = (e as Error).message;
    const hint = /passphrase|decrypt|bad decrypt/i.test(msg) ? ': it is encrypted, set STELLA_KEY_PASSWORD' : '';
    throw new OukError('KEY_INVALID', `cannot read the private key (${msg})${hint}`, { cause: e });
  }
  return { key, alg: algorithmForKey(key) };
}

const refuse = (msg: string, cause?: unknown): OukError => new OukError('TOKEN_INVALID', msg, cause === undefined ? {} : { cause });

function headerOf(token: string): jose.ProtectedHeaderParameters {
  if (typeof token !== 'string' || token.split('.').length !== 3) {
    throw refuse('the token is not a compact JWT (three base64url parts separated by "."): pass the token exactly as `stella token issue` printed it');
  }
  try {
    return jose.decodeProtectedHeader(token);
  } catch (e) {
    throw refuse(`the token header is unreadable (${(e as Error).message}): the token is corrupt or truncated`, e);
  }
}

export interface VerifyOptions {
  issuer?: string;
  /** the clock, for tests */
  now?: Date;
  /** the longest lifetime accepted, in days from now (STELLA_JWT_MAX_DAYS, default 366) */
  maxDays?: number;
  /** The crypto policy in force (STELLA_CRYPTO_POLICY): a token of an algorithm outside it is ALGORITHM_NOT_ALLOWED. */
  policy?: CryptoPolicy;
}

/** A token valid for longer than this (from now) is refused: a leaked token must not live for ever. */
export const DEFAULT_MAX_TOKEN_DAYS = 366;

/** Verifies a token offline; throws TOKEN_INVALID with the reason. */
export async function verifyToken(token: string, pub: PublicTokenKey, opts: VerifyOptions = {}): Promise<VerifiedToken> {
  const issuer = opts.issuer ?? DEFAULT_ISSUER;
  const header = headerOf(token.trim());
  const alg = String(header.alg ?? '');
  if (alg.toLowerCase() === 'none' || alg === '') {
    throw refuse('the token is unsigned (alg "none"): unsigned tokens are never accepted; ask the operator for a signed token');
  }
  if (/^HS\d+$/i.test(alg)) {
    throw refuse(`the token is HMAC-signed (${alg}); this host verifies only ${pub.alg} signatures with its public key, so a shared-secret token (or one "signed" with the public key as the secret: key confusion) is refused`);
  }
  if (alg !== pub.alg) {
    throw refuse(`the token is signed with ${alg}, but STELLA_JWT_PUBLIC_KEY is a ${pub.alg} key: only ${pub.alg} tokens are accepted`);
  }
  if (opts.policy) requireTokenAlg(opts.policy, alg, 'the token');
  let payload: jose.JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(token.trim(), pub.key, {
      algorithms: [pub.alg],
      issuer,
      requiredClaims: ['exp', 'sub'],
      currentDate: opts.now,
    }));
  } catch (e) {
    throw mapJoseError(e, issuer, token);
  }
  const maxDays = opts.maxDays ?? DEFAULT_MAX_TOKEN_DAYS;
  const nowSec = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (typeof payload.exp === 'number' && payload.exp - nowSec > maxDays * 86400) {
    const until = payload.exp < 8.64e12 ? new Date(payload.exp * 1000).toISOString() : `${payload.exp} (seconds)`;
    throw refuse(`the token is valid until ${until}, more than ${maxDays} days from now (STELLA_JWT_MAX_DAYS): ask the operator for a token with a shorter lifetime`);
  }
  const tier = payload.tier;
  if (tier !== undefined && !(typeof tier === 'number' && Number.isInteger(tier) && tier >= 1 && tier <= MAX_TIER)) {
    throw refuse(`the token's tier claim ${claimText(tier)} is not a whole number of scans a day between 1 and ${MAX_TIER}: ask the operator to reissue it`);
  }
  const sub = identityClaim(payload, 'sub');
  const jti = payload.jti === undefined ? undefined : identityClaim(payload, 'jti');
  const roles = roleClaims(payload);
  const claims: TokenClaims = {
    sub: sub!,
    iss: payload.iss!,
    exp: payload.exp!,
    ...(payload.iat !== undefined ? { iat: payload.iat } : {}),
    ...(jti !== undefined ? { jti } : {}),
    ...(tier !== undefined ? { tier: tier as number } : {}),
    ...(typeof payload.role === 'string' ? { role: payload.role } : {}),
  };
  return { claims, alg: pub.alg, id: claims.jti ?? claims.sub, roles };
}

/** A claim's value for a message: JSON, at most 40 characters of it. */
function claimText(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** `sub` or `jti`: a non-empty string of at most MAX_CLAIM_CHARS, without control characters. */
function identityClaim(payload: jose.JWTPayload, name: 'sub' | 'jti'): string {
  const v = payload[name];
  const what = name === 'sub' ? 'subject (sub claim: who the token is for)' : 'token id (jti claim)';
  if (typeof v !== 'string') {
    const kind = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
    throw refuse(`the token's ${what} is ${kind}, not a string: ask the operator to reissue it`);
  }
  if (!v.trim()) throw refuse(`the token's ${what} is empty: ask the operator to reissue it`);
  if (v.length > MAX_CLAIM_CHARS) throw refuse(`the token's ${what} is ${v.length} characters long, over ${MAX_CLAIM_CHARS}: ask the operator to reissue it`);
  if (hasTerminalControl(v)) throw refuse(`the token's ${what} holds a control character: ask the operator to reissue it`);
  return v;
}

/** The roles of ROLES named by `role` (a string), `roles` (a list of strings) and `scope` (space-separated words). */
function roleClaims(payload: jose.JWTPayload): Role[] {
  const words: string[] = [];
  const { role, roles, scope } = payload as { role?: unknown; roles?: unknown; scope?: unknown };
  if (role !== undefined) {
    if (typeof role !== 'string') throw refuse(`the token's role claim ${claimText(role)} is not a string (one of ${ROLES.join(', ')}): ask the operator to reissue it`);
    words.push(role);
  }
  if (roles !== undefined) {
    if (!Array.isArray(roles) || roles.length > 16 || !roles.every((r) => typeof r === 'string')) {
      throw refuse(`the token's roles claim ${claimText(roles)} is not a list of at most 16 role names: ask the operator to reissue it`);
    }
    words.push(...(roles as string[]));
  }
  if (scope !== undefined) {
    if (typeof scope !== 'string') throw refuse(`the token's scope claim ${claimText(scope)} is not a string of space-separated words: ask the operator to reissue it`);
    words.push(...scope.split(/\s+/));
  }
  return ROLES.filter((r) => words.includes(r));
}

function mapJoseError(e: unknown, issuer: string, token: string): OukError {
  if (e instanceof jose.errors.JWTExpired) {
    const exp = Number((e.payload as jose.JWTPayload).exp);
    const when = Number.isFinite(exp) ? new Date(exp * 1000).toISOString() : 'an earlier time';
    return refuse(`the token expired at ${when}: ask the operator for a new one (stella token issue)`, e);
  }
  if (e instanceof jose.errors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') {
      let iss = '(none)';
      try {
        iss = JSON.stringify(jose.decodeJwt(token).iss ?? '(none)');
      } catch {
        /* keep (none) */
      }
      return refuse(`the token's issuer ${iss} is not the issuer this host trusts ("${issuer}", STELLA_JWT_ISSUER)`, e);
    }
    if (e.claim === 'exp' && e.reason === 'missing') return refuse('the token has no expiry (exp claim): tokens without an expiry are refused', e);
    if (e.claim === 'sub' && e.reason === 'missing') return refuse('the token names no subject (sub claim)', e);
    if (e.claim === 'nbf') return refuse('the token is not valid yet (nbf claim in the future): check the clocks', e);
    return refuse(`the token's ${e.claim} claim is invalid (${e.reason})`, e);
  }
  if (e instanceof jose.errors.JWSSignatureVerificationFailed) {
    return refuse('the token signature does not verify against STELLA_JWT_PUBLIC_KEY: it was forged, altered, or signed with another key', e);
  }
  if (e instanceof jose.errors.JOSEAlgNotAllowed) return refuse(`the token's algorithm is not allowed: ${(e as Error).message}`, e);
  if (e instanceof jose.errors.JOSEError) return refuse(`the token is malformed (${e.message})`, e);
  return refuse(`the token cannot be verified (${(e as Error).message})`, e);
}

/**
 * A token lifetime in seconds, read with jose's own duration grammar
 * (`setExpirationTime`: '30d', '12h', '90m', '3600s', '2 weeks', '1.5h'; plain
 * digits are seconds). jose places a string `exp` relative to its own clock,
 * never to the `iat` set on the token, so the duration is read off a probe
 * against a clock reading of the same second, and the token's `exp` is then
 * `iat` plus that on the issuer's clock (`IssueOptions.now`).
 */
function lifetimeSeconds(ttl: string): number {
  const usage = (why: string, cause?: unknown): OukError => new OukError('USAGE', `--ttl ${ttl}: ${why}`, { cause });
  const t = ttl.trim();
  const duration = /^\d+$/.test(t) ? `${t}s` : t;
  for (;;) {
    const second = Math.floor(Date.now() / 1000);
    let exp: number | undefined;
    try {
      exp = jose.decodeJwt(new jose.UnsecuredJWT({}).setExpirationTime(duration).encode()).exp;
    } catch (e) {
      throw usage('give a duration like 30d, 12h, 90m or 3600s', e);
    }
    // the clock ticked between this reading and jose's: read both again
    if (Math.floor(Date.now() / 1000) !== second) continue;
    if (exp === undefined || exp - second < 1) throw usage('a token must live at least one second');
    return exp - second;
  }
}

export interface IssueOptions {
  privateKey: string;
  passphrase?: string;
  sub: string;
  tier?: number;
  role?: string;
  /** lifetime: '30d', '12h', '90m', '3600s' (jose's duration grammar) or plain seconds */
  ttl: string;
  issuer?: string;
  jti?: string;
  now?: Date;
  /** The crypto policy in force (STELLA_CRYPTO_POLICY): a key of an algorithm outside it signs nothing. */
  policy?: CryptoPolicy;
}

/** Signs a token with the operator's private key. */
export async function issueToken(opts: IssueOptions): Promise<{ token: string; claims: TokenClaims; alg: TokenAlg }> {
  if (!opts.sub.trim()) throw new OukError('USAGE', '--sub must name who the token is for');
  if (opts.sub.length > MAX_CLAIM_CHARS || hasTerminalControl(opts.sub)) throw new OukError('USAGE', `--sub: give at most ${MAX_CLAIM_CHARS} characters, without control characters`);
  if (opts.role !== undefined && opts.role !== '' && !(ROLES as readonly string[]).includes(opts.role)) {
    throw new OukError('USAGE', `--role ${opts.role}: give one of ${ROLES.join(', ')} (viewer reads stored SBOMs, operator also changes them and opens the dashboard)`);
  }
  if (opts.tier !== undefined && !(Number.isInteger(opts.tier) && opts.tier >= 1 && opts.tier <= MAX_TIER)) {
    throw new OukError('USAGE', `--tier ${opts.tier}: give a whole number of scans a day between 1 and ${MAX_TIER}`);
  }
  const lifetime = lifetimeSeconds(opts.ttl);
  const { key, alg } = loadPrivateTokenKey(opts.privateKey, opts.passphrase);
  if (opts.policy) requireTokenAlg(opts.policy, alg, 'the token key');
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const claims: TokenClaims = {
    sub: opts.sub,
    iss: opts.issuer ?? DEFAULT_ISSUER,
    iat,
    exp: iat + lifetime,
    jti: opts.jti ?? randomUUID(),
    ...(opts.tier !== undefined ? { tier: opts.tier } : {}),
    ...(opts.role ? { role: opts.role } : {}),
  };
  const token = await new jose.SignJWT({
    ...(claims.tier !== undefined ? { tier: claims.tier } : {}),
    ...(claims.role ? { role: claims.role } : {}),
  })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(claims.iss)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp)
    .setJti(claims.jti!)
    .sign(key);
  return { token, claims, alg };
}

/** Header and claims without verifying (for `stella token inspect`). */
export function decodeToken(token: string): { header: jose.ProtectedHeaderParameters; claims: jose.JWTPayload } {
  const header = headerOf(token.trim());
  try {
    return { header, claims: jose.decodeJwt(token.trim()) };
  } catch (e) {
    throw refuse(`the token payload is unreadable (${(e as Error).message})`, e);
  }
}
