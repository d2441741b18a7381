/**
 * Single sign-on: the sign-in a browser has started and not yet finished — the
 * PKCE verifier, `state` and `nonce` — sealed for a short-lived cookie.
 *
 * Sealed with AES-256-GCM (authenticated: a changed byte is refused; encrypted:
 * the verifier never shows) under a key derived (HKDF-SHA256) from the client
 * secret, so every API replica that shares the secret opens what another sealed.
 * It carries its own expiry, checked against an injected clock: a sign-in not
 * finished within LOGIN_TTL_SECONDS is over (OIDC_LOGIN_EXPIRED).
 */
import crypto from 'node:crypto';
import { OukError } from '../../lib/errors.ts';

export const LOGIN_TTL_SECONDS = 600;

export interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

const MAX_SEALED_CHARS = 1024;

export function loginSealKey(clientSecret: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', clientSecret, 'stella-ouk', 'oidc pending sign-in cookie', 32));
}

function expired(why: string): OukError {
  return new OukError('OIDC_LOGIN_EXPIRED', `this sign-in through the OpenID provider is not one this browser started here, or it is over (${why}): sign in again from /auth/oidc/login, with cookies allowed for OUK`);
}

export function sealLogin(login: PendingLogin, key: Buffer, nowMs: number): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const plain = JSON.stringify({ s: login.state, n: login.nonce, v: login.codeVerifier, e: Math.floor(nowMs / 1000) + LOGIN_TTL_SECONDS });
  const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
}

/** The pending sign-in, or OIDC_LOGIN_EXPIRED (missing, altered, sealed with another key, or over). */
export function openLogin(sealed: string | undefined, key: Buffer, nowMs: number): PendingLogin {
  if (!sealed) throw expired('no sign-in cookie');
  if (sealed.length > MAX_SEALED_CHARS || !/^[A-Za-z0-9_-]+$/.test(sealed)) throw expired('the sign-in cookie is not one OUK wrote');
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < 12 + 16 + 2) throw expired('the sign-in cookie is not one OUK wrote');
  let fields: unknown;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    fields = JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'));
  } catch {
    throw expired('the sign-in cookie is not one OUK wrote');
  }
  const f = fields as { s?: unknown; n?: unknown; v?: unknown; e?: unknown };
  if (typeof f.s !== 'string' || typeof f.n !== 'string' || typeof f.v !== 'string' || typeof f.e !== 'number') throw expired('the sign-in cookie is not one OUK wrote');
  if (Math.floor(nowMs / 1000) > f.e) throw expired(`started more than ${LOGIN_TTL_SECONDS / 60} minutes ago`);
  return { state: f.s, nonce: f.n, codeVerifier: f.v };
}
