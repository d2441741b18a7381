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
 *   getManifest(repo, ref, types, max)    GET /v2/<repo>/manifests/<ref>: the bytes (bounded), type and digest
 *   openBlob(repo, digest)                GET /v2/<repo>/blobs/<digest> as a stream (redirects to the
 *                                          registry's storage followed, without the authorization)
 *
 * node:http(s) rather than fetch: a blob body is a stream of known length
 * that must not be buffered. Errors are typed: the registry unreachable or
 * answering 5xx is REGISTRY_UNAVAILABLE (retryable), a 4xx refusal is
 * REGISTRY_REJECTED (not retryable: the same push would be refused again).
 *
 * Authentication, as docker and skopeo do it, answering the registry's 401
 * challenge (WWW-Authenticate):
 *   Basic   the credentials on every request (htpasswd registries, Nexus, …);
 *   Bearer  a token from the challenge's realm (GET realm?service=…&scope=…,
 *           with the credentials as Basic when there are any; anonymous
 *           otherwise), kept per scope until it expires (Harbor, GitLab,
 *           Quay, registry:2 with token auth, …).
 * A request with a body that cannot be sent twice (a blob's stream) is sent
 * with the authorization the earlier requests for its repository obtained.
 * In air-gap mode a token realm on another host:port must be listed in
 * STELLA_AIRGAP_ALLOW.
 */
import fs from 'node:fs';
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
  /** GETs a manifest or index (at most `maxBytes`, else REGISTRY_REJECTED); null when the registry holds none. */
  getManifest(repo: string, ref: string, mediaTypes: readonly string[], maxBytes: number): Promise<{ mediaType: string | null; digest: string | null; body: Buffer } | null>;
  /** A blob's bytes as a stream; null when the registry holds none. The caller checks the digest. */
  openBlob(repo: string, digest: string): Promise<Readable | null>;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** the body's bytes as kept (at most `keep`), and whether there were more */
  raw: Buffer;
  truncated: boolean;
}

const TIMEOUT_MS = 60_000;

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** A password file holds one line; anything this large is not one. */
const MAX_PASSWORD_FILE = 64 * 1024;

/**
 * The registry account of the configuration (Config.registryAccount), its
 * password read from OUK_REGISTRY_PASSWORD_FILE when it is given as a file
 * (one trailing newline dropped). Read here, where a registry client is made
 * (the workers at start, `stella ouk images`), not by every process that loads
 * the configuration. USAGE when the file cannot be read or is not a password.
 */
export function registryCredentials(account: { username: string; password?: string; passwordFile?: string } | undefined): RegistryCredentials | undefined {
  if (!account) return undefined;
  if (account.passwordFile === undefined) return { username: account.username, password: account.password ?? '' };
  const file = account.passwordFile;
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_PASSWORD_FILE) throw new OukError('USAGE', `OUK_REGISTRY_PASSWORD_FILE=${file} is not a password file (${st.isFile() ? `${st.size} bytes` : 'not a file'}): point it at the file holding the registry password`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof OukError) throw e;
    throw new OukError('USAGE', `OUK_REGISTRY_PASSWORD_FILE=${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): point it at the file holding the registry password`, { cause: e });
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '' || /[\r\n]/.test(password)) throw new OukError('USAGE', `OUK_REGISTRY_PASSWORD_FILE=${file} does not hold one password on one line`);
  return { username: account.username, password };
}

/** The parameters of a WWW-Authenticate challenge: scheme and `key="value"` pairs. */
export function parseChallenge(header: string | undefined): { scheme: string; params: Record<string, string> } | null {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header ?? '');
  if (!m) return null;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: m[1]!.toLowerCase(), params };
}

export function createRegistryClient(baseUrl: string, credentials?: RegistryCredentials): RegistryClient {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const where = `the registry ${base.origin}`;
  const basic = credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : null;
  /** The authorization each repository's requests carry, once a challenge asked for one. */
  const authFor = new Map<string, { header: string; expires: number }>();

  const unavailable = (e: unknown, what: string): OukError =>
    new OukError('REGISTRY_UNAVAILABLE', `${where} could not be reached (${what}: ${e instanceof Error ? e.message : String(e)}): start it or check OUK_REGISTRY_URL, then \`stella ouk retry\` the import`, {
      cause: e,
      retryable: true,
    });

  /** One request (`target` relative to the registry, or absolute: an upload location, a token realm); the body of the answer kept up to 64 KiB. */
  function request(method: string, target: string, headers: Record<string, string | number>, body?: Buffer | Readable, keep = 64 * 1024): Promise<Answer> {
    const url = new URL(target, base);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<Answer>((resolve, reject) => {
      const req = client.request(url, { method, headers, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          if (n + c.length <= keep) chunks.push(c);
          n += c.length;
        });
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw.subarray(0, 64 * 1024).toString('utf8'), raw, truncated: n > raw.length });
        });
        res.on('error', (e) => reject(unavailable(e, `${method} ${url.pathname}`)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(e instanceof OukError ? e : unavailable(e, `${method} ${url.pathname}`)));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch((e: unknown) => reject(e instanceof OukError ? e : unavailable(e, `${method} ${url.pathname} (sending the body)`)));
    });
  }

  const authError = (why: string): OukError =>
    new OukError('REGISTRY_REJECTED', `${where} ${why}: set OUK_REGISTRY_USERNAME and OUK_REGISTRY_PASSWORD_FILE to an account that may push, then \`stella ouk retry\` the import`);

  /** A bearer token from `realm` for `scope` (the credentials, if any, as Basic). */
  async function fetchToken(params: Record<string, string>, scope: string): Promise<{ header: string; expires: number }> {
    if (!params.realm) throw authError('asked for a bearer token without naming where to get one (no realm)');
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      throw authError(`named a token realm that is not a URL (${params.realm.slice(0, 200)})`);
    }
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', scope);
    const answer = await request('GET', url.toString(), basic ? { authorization: basic } : {});
    if (answer.status === 401 || answer.status === 403) throw authError(`refused the credentials for ${scope} at its token service ${url.origin}${url.pathname} (${answer.status})`);
    if (answer.status !== 200) throw refused(answer, `a token for ${scope} at ${url.origin}${url.pathname}`);
    let token: unknown;
    let expiresIn: unknown;
    try {
      const j = JSON.parse(answer.body) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
      token = j.token ?? j.access_token;
      expiresIn = j.expires_in;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '' || /[\s]/.test(token)) throw new OukError('REGISTRY_REJECTED', `${where}'s token service ${url.origin}${url.pathname} answered without a usable token`);
    const seconds = typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 60;
    // renewed a little early, so a token never runs out in the middle of a request
    return { header: `Bearer ${token}`, expires: Date.now() + Math.max(seconds - 10, 5) * 1000 };
  }

  /**
   * A request to `repo`'s API with the authorization it needs: on a 401
   * challenge, the credentials (Basic) or a token (Bearer) are obtained and a
   * replayable request is sent once more.
   */
  async function call(repo: string, method: string, target: string, headers: Record<string, string | number>, body?: Buffer | Readable, keep?: number): Promise<Answer> {
    const held = authFor.get(repo);
    const auth = held && held.expires > Date.now() ? held.header : undefined;
    const a = await request(method, target, auth ? { ...headers, authorization: auth } : headers, body, keep);
    if (a.status !== 401) return a;
    if (body !== undefined && !Buffer.isBuffer(body)) {
      authFor.delete(repo);
      throw new OukError('REGISTRY_UNAVAILABLE', `${where} asked again for authorization during the upload to ${repo} (401): \`stella ouk retry\` the import`, { retryable: true });
    }
    const challenge = parseChallenge(typeof a.headers['www-authenticate'] === 'string' ? a.headers['www-authenticate'] : undefined);
    let next: { header: string; expires: number };
    if (challenge?.scheme === 'basic') {
      if (!basic) throw authError(`requires a login for ${repo} (401, Basic)`);
      if (auth === basic) throw authError(`refused the credentials of ${credentials!.username} for ${repo} (401)`);
      next = { header: basic, expires: Number.POSITIVE_INFINITY };
    } else if (challenge?.scheme === 'bearer') {
      const scope = challenge.params.scope ?? `repository:${repo}:pull,push`;
      if (auth?.startsWith('Bearer ') && challenge.params.error !== 'invalid_token') throw authError(`refused ${credentials ? `the account ${credentials.username}` : 'an anonymous token'} for ${scope} (401)`);
      next = await fetchToken(challenge.params, scope.includes('push') ? scope : `repository:${repo}:pull,push`);
    } else {
      throw authError(`requires authorization for ${repo} that this client does not speak (WWW-Authenticate: ${String(a.headers['www-authenticate'] ?? 'none')})`);
    }
    authFor.set(repo, next);
    const again = await request(method, target, { ...headers, authorization: next.header }, body, keep);
    if (again.status === 401) throw authError(`refused ${credentials ? `the account ${credentials.username}` : 'anonymous access'} for ${repo} (401)`);
    return again;
  }

  function refused(a: Answer, what: string): OukError {
    if (a.status >= 500 || a.status === 429) {
      return new OukError('REGISTRY_UNAVAILABLE', `${where} answered ${a.status} to ${what}: ${a.body.slice(0, 300)}`, { retryable: true });
    }
    return new OukError('REGISTRY_REJECTED', `${where} refused ${what} with ${a.status}: ${a.body.slice(0, 300)}`);
  }

  const path = (repo: string, rest: string): string => `v2/${repo}/${rest}`;

  /** A GET streamed (a blob), following up to 5 redirects; the authorization goes only to the registry's own origin. */
  function stream(target: URL, auth: string | undefined, hops = 0): Promise<{ status: number; body: Readable }> {
    const client = target.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = target.origin === base.origin && auth ? { authorization: auth } : {};
    return new Promise((resolve, reject) => {
      const req = client.get(target, { headers, timeout: TIMEOUT_MS }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && typeof res.headers.location === 'string' && hops < 5) {
          res.resume();
          stream(new URL(res.headers.location, target), auth, hops + 1).then(resolve, reject);
          return;
        }
        resolve({ status, body: res });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(unavailable(e, `GET ${target.pathname}`)));
    });
  }

  return {
    url: base.origin,
    async hasBlob(repo, digest) {
      const a = await call(repo, 'HEAD', path(repo, `blobs/${digest}`), {});
      if (a.status === 200) return true;
      if (a.status === 404) return false;
      throw refused(a, `HEAD blob ${digest} of ${repo}`);
    },
    async pushBlob(repo, digest, size, open) {
      const start = await call(repo, 'POST', path(repo, 'blobs/uploads/'), { 'content-length': 0 });
      if (start.status !== 202 || typeof start.headers.location !== 'string') throw refused(start, `starting an upload of ${digest} to ${repo}`);
      const loc = new URL(start.headers.location, base);
      loc.searchParams.set('digest', digest);
      const body = await open();
      const done = await call(repo, 'PUT', loc.toString(), { 'content-type': 'application/octet-stream', 'content-length': size }, body);
      if (done.status !== 201) throw refused(done, `the upload of ${digest} (${size} bytes) to ${repo}`);
      const got = done.headers['docker-content-digest'];
      if (typeof got === 'string' && got !== digest) {
        throw new OukError('REGISTRY_REJECTED', `${where} stored blob ${digest} of ${repo} as ${got}: the bytes changed on the way — check what sits between this host and the registry`);
      }
    },
    async manifestDigest(repo, ref, mediaTypes) {
      const a = await call(repo, 'HEAD', path(repo, `manifests/${ref}`), { accept: mediaTypes.join(', ') });
      if (a.status === 404) return null;
      if (a.status !== 200) throw refused(a, `HEAD manifest ${ref} of ${repo}`);
      const d = a.headers['docker-content-digest'];
      return typeof d === 'string' ? d : null;
    },
    async putManifest(repo, ref, mediaType, body) {
      const a = await call(repo, 'PUT', path(repo, `manifests/${ref}`), { 'content-type': mediaType, 'content-length': body.length }, body);
      if (a.status !== 201) throw refused(a, `PUT manifest ${ref} of ${repo}`);
      const d = a.headers['docker-content-digest'];
      if (typeof d !== 'string') throw new OukError('REGISTRY_REJECTED', `${where} stored manifest ${ref} of ${repo} without reporting its digest (Docker-Content-Digest): it is not an OCI distribution registry`);
      return d;
    },
    async getManifest(repo, ref, mediaTypes, maxBytes) {
      const a = await call(repo, 'GET', path(repo, `manifests/${ref}`), { accept: mediaTypes.join(', ') }, undefined, maxBytes);
      if (a.status === 404) return null;
      if (a.status !== 200) throw refused(a, `GET manifest ${ref} of ${repo}`);
      if (a.truncated) throw new OukError('REGISTRY_REJECTED', `${where} answered GET manifest ${ref} of ${repo} with more than ${maxBytes} bytes: that is no manifest`);
      const type = typeof a.headers['content-type'] === 'string' ? a.headers['content-type'].split(';')[0]!.trim() : null;
      const d = a.headers['docker-content-digest'];
      return { mediaType: type, digest: typeof d === 'string' ? d : null, body: a.raw };
    },
    async openBlob(repo, digest) {
      // a HEAD first: it answers the registry's challenge (a streamed GET is not sent twice)
      const head = await call(repo, 'HEAD', path(repo, `blobs/${digest}`), {});
      if (head.status === 404) return null;
      if (head.status !== 200 && !(head.status >= 300 && head.status < 400)) throw refused(head, `HEAD blob ${digest} of ${repo}`);
      const held = authFor.get(repo);
      const got = await stream(new URL(path(repo, `blobs/${digest}`), base), held?.header);
      if (got.status === 404) {
        got.body.resume();
        return null;
      }
      if (got.status !== 200) {
        got.body.resume();
        throw refused({ status: got.status, headers: {}, body: '', raw: Buffer.alloc(0), truncated: false }, `GET blob ${digest} of ${repo}`);
      }
      return got.body;
    },
  };
}
