/**
 * A real, certified OpenID provider for tests: `oidc-provider` (npm) on a free
 * loopback port, over http (OUK allows http issuers on loopback only) or https, with one
 * registered confidential client (client_secret_basic, PKCE S256 required),
 * an account store whose accounts carry a `groups` claim, and the library's
 * development interactions (a login form that takes any password for a known
 * account, then a consent form).
 *
 * `signIn` drives the browser-less flow with fetch: it follows redirects by
 * hand, carries cookies in a jar, fills the login form and consents, and stops
 * at the redirect to OUK's callback, which it returns unvisited.
 *
 * `issueForAudience` makes the provider sign ID tokens for another client id
 * (a provider misconfigured, or a token meant for another application).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import Provider, { type ClaimsParameterMember } from 'oidc-provider';

export interface TestAccount {
  readonly groups: readonly string[];
  readonly name?: string;
}

export interface TestProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** From now on, ID tokens name this audience instead of the client (undefined: the client again). */
  issueForAudience(audience: string | undefined): void;
  close(): Promise<void>;
}

export async function startTestProvider(opts: {
  redirectUri: string;
  accounts: Record<string, TestAccount>;
  clientId?: string;
  clientSecret?: string;
  /** Where the groups claim is released: in the ID token (Keycloak's and Entra ID's mappers), or only at userinfo (the spec's default). */
  groupsAt?: 'id-token' | 'userinfo';
  /** Serve over https with this key and certificate (PEM) instead of plain http. */
  tls?: { key: string; cert: string };
}): Promise<TestProvider> {
  const clientId = opts.clientId ?? 'stella-ouk';
  const clientSecret = opts.clientSecret ?? 'test-client-secret-0123456789abcdef';
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = opts.tls ? https.createServer(opts.tls, (req, res) => handler(req, res)) : http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [opts.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'groups'] },
    // false: the profile scope's claims, groups among them, in the ID token itself
    conformIdTokenClaims: (opts.groupsAt ?? 'id-token') === 'userinfo',
    cookies: { keys: ['stella-ouk-test-provider-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const account = Object.hasOwn(opts.accounts, id) ? opts.accounts[id] : undefined;
      if (!account) return undefined;
      return {
        accountId: id,
        async claims(_use: string, _scope: string, _claims: { [key: string]: null | ClaimsParameterMember }, _rejected: string[]) {
          return { sub: id, preferred_username: id, ...(account.name ? { name: account.name } : {}), groups: [...account.groups] };
        },
      };
    },
  });
  let audience: string | undefined;
  const issue = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = function issueMaybeElsewhere(this: InstanceType<typeof provider.IdToken>, ...args: Parameters<typeof issue>) {
    if (audience !== undefined) {
      const client = this.client;
      if (client) Object.assign(this, { client: Object.create(client, { clientId: { value: audience } }) });
    }
    return issue.apply(this, args);
  };
  handler = provider.callback() as http.RequestListener;
  return {
    issuer,
    clientId,
    clientSecret,
    issueForAudience(a) {
      audience = a;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Cookies as a browser keeps them for one host (ports share cookies, as in a
 * browser), and the CAs that browser trusts for https (undefined: the system's).
 */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  constructor(readonly ca?: string) {}

  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.parse('2000-01-02')));
      if (gone || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }

  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  header(): string {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }
}

/** fetch over https trusting the jar's CAs (the global fetch takes no CA). */
function httpsFetch(url: string, init: { method: string; headers: Record<string, string>; body?: string }, ca: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method, headers: init.headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
        }
        const status = res.statusCode ?? 502;
        resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers }));
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export async function browse(url: string, jar: CookieJar, init: { method?: string; body?: URLSearchParams } = {}): Promise<Response> {
  const request = {
    method: init.method ?? 'GET',
    headers: { cookie: jar.header(), ...(init.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    ...(init.body ? { body: init.body.toString() } : {}),
  };
  const response = url.startsWith('https:') && jar.ca ? await httpsFetch(url, request, jar.ca) : await fetch(url, { ...request, redirect: 'manual' });
  jar.take(response);
  return response;
}

function formOf(html: string, base: string): { action: string; fields: URLSearchParams } {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error(`the provider's page holds no form: ${html.slice(0, 300)}`);
  const fields = new URLSearchParams();
  for (const input of form[2].matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
    const name = /name="([^"]+)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
    if (name) fields.set(name, value);
  }
  return { action: new URL(form[1].replace(/&amp;/g, '&'), base).href, fields };
}

/**
 * From OUK's /auth/oidc/login to the provider's redirect back: the callback URL
 * (not visited) and the jar holding OUK's pending sign-in cookie.
 */
export async function signIn(loginUrl: string, redirectUri: string, username: string, jar = new CookieJar()): Promise<{ callbackUrl: string; jar: CookieJar }> {
  let at = loginUrl;
  let response = await browse(at, jar);
  for (let step = 0; step < 20; step++) {
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      at = new URL(location, at).href;
      if (at.startsWith(redirectUri)) return { callbackUrl: at, jar };
      response = await browse(at, jar);
      continue;
    }
    if (response.status !== 200) throw new Error(`the provider answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    const { action, fields } = formOf(await response.text(), at);
    if (fields.get('prompt') === 'login') {
      fields.set('login', username);
      fields.set('password', 'any password: the development login form checks none');
    }
    at = action;
    response = await browse(at, jar, { method: 'POST', body: fields });
  }
  throw new Error('the sign-in did not come back to the callback within 20 steps');
}
