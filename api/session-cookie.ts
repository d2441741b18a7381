/**
 * The session cookie: an opaque random id (32 bytes, base64url) that only the
 * browser holds; PostgreSQL keeps its SHA-256 (infra/sessions.ts). The CSRF
 * token is derived from the id (a keyed hash no one without the id can make),
 * so any replica checks it without storing it, and it is compared in constant
 * time.
 *
 * The cookie is `HttpOnly; SameSite=Strict; Path=/`, `Secure` when the API is
 * served behind TLS (OUK_SECURE_COOKIES), and has no Max-Age: the server's
 * idle and absolute timeouts end a session, and a closed browser forgets it.
 */
import crypto from 'node:crypto';

export const SESSION_COOKIE = 'ouk_session';
export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf';

export function newSessionId(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function sessionIdHash(id: string): Buffer {
  return crypto.createHash('sha256').update(`ouk-session\0${id}`, 'utf8').digest();
}

export function csrfTokenFor(id: string): string {
  return crypto.createHash('sha256').update(`ouk-csrf\0${id}`, 'utf8').digest('base64url');
}

/** Whether `presented` is the CSRF token of session `id` (constant time; any length). */
export function csrfMatches(id: string, presented: string | undefined): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 256) return false;
  const want = crypto.createHash('sha256').update(csrfTokenFor(id)).digest();
  const got = crypto.createHash('sha256').update(presented).digest();
  return crypto.timingSafeEqual(want, got);
}

/** The session id in a Cookie header, when it has the shape of one. */
export function sessionIdFrom(cookieHeader: string | undefined): string | null {
  if (!cookieHeader || cookieHeader.length > 8192) return null;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (/^[A-Za-z0-9_-]{43}$/.test(value)) return value;
  }
  return null;
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
