/**
 * A client of the site's OCI registry (OCI distribution spec v1.1, the API
 * `registry:2` / Debian's docker-registry serve): what the images stage needs
 * and nothing more.
 *
 *   hasBlob(repo, digest)                 HEAD /v2/<repo>/blobs/<digest>
 *   pushBlob(repo, digest, size, open)    POST /v2/<repo>/blobs/uploads/, then one
 *                                          monolithic PUT <location>&digest=…, the body
 *                                          streamed from `open()` with its Content-Length
 *   manifestDigest(repo, ref)             HEAD /v2/<repo>/manifests/<ref> → Docker-Content-Digest
 *   putManifest(repo, ref, type, body)    PUT /v2/<repo>/manifests/<ref> → Docker-Content-Digest
 *
 * node:http(s) rather than fetch: a blob body is a stream of known length
 * that must not be buffered. Errors are typed: the registry unreachable or
 * answering 5xx is REGISTRY_UNAVAILABLE (retryable), a 4xx refusal is
 * REGISTRY_REJECTED (not retryable: the same push would be refused again).
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OukError } from '../lib/errors.ts';

export interface RegistryClient {
  /** The registry's base URL, e.g. http://127.0.0.1:5000 */
  readonly url: string;
  hasBlob(repo: string, digest: string): Promise<boolean>;
  pushBlob(repo: string, digest: string, size: number, open: () => Promise<Readable>): Promise<void>;
  /** The digest the registry holds for `ref` (a tag or digest), or null when it holds none. */
  manifestDigest(repo: string, ref: string, mediaTypes: readonly string[]): Promise<string | null>;
  /** PUTs a manifest or index; returns the digest the registry reports. */
  putManifest(repo: string, ref: string, mediaType: string, body: Buffer): Promise<string>;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const TIMEOUT_MS = 60_000;

export function createRegistryClient(baseUrl: string): RegistryClient {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const lib = base.protocol === 'https:' ? https : http;
  const where = `the registry ${base.origin}`;

  const unavailable = (e: unknown, what: string): OukError =>
    new OukError('REGISTRY_UNAVAILABLE', `${where} could not be reached (${what}: ${e instanceof Error ? e.message : String(e)}): start it or check OUK_REGISTRY_URL, then \`stella ouk retry\` the import`, {
      cause: e,
      retryable: true,
    });

  function request(method: string, target: string, headers: Record<string, string | number>, body?: Buffer | Readable): Promise<Answer> {
    const url = new URL(target, base);
    return new Promise<Answer>((resolve, reject) => {
      const req = lib.request(url, { method, headers, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          if (n < 64 * 1024) chunks.push(c);
          n += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e) => reject(unavailable(e, `${method} ${url.pathname}`)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(e instanceof OukError ? e : unavailable(e, `${method} ${url.pathname}`)));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch((e: unknown) => reject(e instanceof OukError ? e : unavailable(e, `${method} ${url.pathname} (sending the body)`)));
    });
  }

  function refused(a: Answer, what: string): OukError {
    if (a.status >= 500 || a.status === 429) {
      return new OukError('REGISTRY_UNAVAILABLE', `${where} answered ${a.status} to ${what}: ${a.body.slice(0, 300)}`, { retryable: true });
    }
    return new OukError('REGISTRY_REJECTED', `${where} refused ${what} with ${a.status}: ${a.body.slice(0, 300)}`);
  }

  const path = (repo: string, rest: string): string => `v2/${repo}/${rest}`;

  return {
    url: base.origin,
    async hasBlob(repo, digest) {
      const a = await request('HEAD', path(repo, `blobs/${digest}`), {});
      if (a.status === 200) return true;
      if (a.status === 404) return false;
      throw refused(a, `HEAD blob ${digest} of ${repo}`);
    },
    async pushBlob(repo, digest, size, open) {
      const start = await request('POST', path(repo, 'blobs/uploads/'), { 'content-length': 0 });
      if (start.status !== 202 || typeof start.headers.location !== 'string') throw refused(start, `starting an upload of ${digest} to ${repo}`);
      const loc = new URL(start.headers.location, base);
      loc.searchParams.set('digest', digest);
      const body = await open();
      const done = await request('PUT', loc.toString(), { 'content-type': 'application/octet-stream', 'content-length': size }, body);
      if (done.status !== 201) throw refused(done, `the upload of ${digest} (${size} bytes) to ${repo}`);
      const got = done.headers['docker-content-digest'];
      if (typeof got === 'string' && got !== digest) {
        throw new OukError('REGISTRY_REJECTED', `${where} stored blob ${digest} of ${repo} as ${got}: the bytes changed on the way — check what sits between this host and the registry`);
      }
    },
    async manifestDigest(repo, ref, mediaTypes) {
      const a = await request('HEAD', path(repo, `manifests/${ref}`), { accept: mediaTypes.join(', ') });
      if (a.status === 404) return null;
      if (a.status !== 200) throw refused(a, `HEAD manifest ${ref} of ${repo}`);
      const d = a.headers['docker-content-digest'];
      return typeof d === 'string' ? d : null;
    },
    async putManifest(repo, ref, mediaType, body) {
      const a = await request('PUT', path(repo, `manifests/${ref}`), { 'content-type': mediaType, 'content-length': body.length }, body);
      if (a.status !== 201) throw refused(a, `PUT manifest ${ref} of ${repo}`);
      const d = a.headers['docker-content-digest'];
      if (typeof d !== 'string') throw new OukError('REGISTRY_REJECTED', `${where} stored manifest ${ref} of ${repo} without reporting its digest (Docker-Content-Digest): it is not an OCI distribution registry`);
      return d;
    },
  };
}
