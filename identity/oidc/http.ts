/**
 * Single sign-on: the one way OUK talks to the OpenID provider (discovery, JWKS,
 * token endpoint), as openid-client's `customFetch`.
 *
 * Everything from the provider is bounded: a whole answer within `timeoutMs`,
 * at most `maxBytes` of body (larger is refused unread), no redirect followed.
 * https uses the site's CA (`OUK_CA_FILE`) when one is given, else the system's;
 * plain http is refused unless the host is loopback (tests). Any failure here
 * is OIDC_UNAVAILABLE: the provider cannot be read, nobody is signed in.
 */
import http from 'node:http';
import https from 'node:https';
import type { CustomFetch } from 'openid-client';
import { OukError } from '../../lib/errors.ts';
import { isLoopback } from '../../lib/loopback.ts';

export interface ProviderHttpOptions {
  /** PEM text of the CAs trusted for an https provider (undefined: the system's). */
  ca?: string;
  timeoutMs: number;
  maxBytes: number;
}

type FetchOptions = Parameters<CustomFetch>[1];

function unavailable(url: URL, why: string, cause?: unknown): OukError {
  return new OukError('OIDC_UNAVAILABLE', `the OpenID provider at ${url.origin} ${why}: check the provider, OUK_OIDC_ISSUER and OUK_CA_FILE; sign in again once it answers`, { cause, retryable: true });
}

function requestBody(body: FetchOptions['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(new Uint8Array(body));
  throw new OukError('INTERNAL', 'a streamed request body to the OpenID provider is not supported');
}

/** A fetch for openid-client that only ever reads a bounded answer from the provider. */
export function providerFetch(options: ProviderHttpOptions): CustomFetch {
  return (rawUrl, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(rawUrl);
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
        reject(unavailable(url, `names an endpoint that is not https (${url.protocol}//${url.host})`));
        return;
      }
      const payload = requestBody(init.body);
      const transport = url.protocol === 'https:' ? https : http;
      const req = transport.request(url, {
        method: init.method,
        headers: { ...init.headers, ...(payload ? { 'content-length': String(payload.length) } : {}) },
        ...(url.protocol === 'https:' && options.ca ? { ca: options.ca } : {}),
        signal: init.signal,
        timeout: options.timeoutMs,
      });
      const deadline = setTimeout(() => req.destroy(unavailable(url, `did not answer within ${options.timeoutMs / 1000} s`)), options.timeoutMs);
      const fail = (err: unknown): void => {
        clearTimeout(deadline);
        reject(err instanceof OukError ? err : unavailable(url, `could not be reached (${err instanceof Error ? err.message : String(err)})`, err));
      };
      req.on('timeout', () => req.destroy(unavailable(url, `did not answer within ${options.timeoutMs / 1000} s`)));
      req.on('error', fail);
      req.on('response', (res) => {
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > options.maxBytes) {
          res.destroy();
          fail(unavailable(url, `answered ${declared} bytes, more than the ${options.maxBytes} OUK reads`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            res.destroy(unavailable(url, `answered more than the ${options.maxBytes} bytes OUK reads`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(deadline);
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
          }
          const status = res.statusCode ?? 502;
          const noBody = status === 204 || status === 304 || init.method === 'HEAD';
          try {
            resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers }));
          } catch (e) {
            fail(unavailable(url, `answered an HTTP status OUK cannot read (${status})`, e));
          }
        });
      });
      req.end(payload);
    });
}
