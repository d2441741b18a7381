/**
 * Single sign-on through the site's OpenID provider, end to end against a real,
 * certified provider (`oidc-provider`, test/helpers/oidc-provider.ts) on
 * loopback: OUK's /auth/oidc/login and /auth/oidc/callback (api/oidc-routes.ts)
 * in a fastify app whose `startSession` records the person and answers 200 with
 * it, driven browser-less with fetch through the provider's login and consent.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { oidcSettings, type Env } from '../lib/config.ts';
import type { Person } from '../identity/person.ts';
import { parseRoleMap } from '../identity/role-map.ts';
import { OIDC_LOGIN_COOKIE, oidcRouteOptions, oidcRoutes, type StartSession } from '../api/oidc-routes.ts';
import { browse, CookieJar, signIn, startTestProvider, type TestProvider } from './helpers/oidc-provider.ts';

const ROLE_MAP = 'operator:ouk-operators;viewer:ouk-viewers';

interface Ouk {
  /** A plain server listening first, so that the redirect URI is known before the provider starts. */
  server: http.Server;
  app?: FastifyInstance;
  base: string;
  redirectUri: string;
  people: Person[];
  /** Seconds the client's clock (ID token checks) runs ahead of the real one. */
  clientClockAhead: number;
  /** Seconds the routes' clock (the pending sign-in's expiry) runs ahead. */
  routeClockAhead: number;
}

async function startOuk(): Promise<Ouk> {
  const server = http.createServer((req, res) => {
    if (ouk.app) ouk.app.routing(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ouk: Ouk = { server, base, redirectUri: `${base}/auth/oidc/callback`, people: [], clientClockAhead: 0, routeClockAhead: 0 };
  return ouk;
}

/** OUK's routes as the API registers them, configured from `env` as lib/config.ts parses it. */
async function mount(ouk: Ouk, env: Env): Promise<void> {
  const settings = oidcSettings(env);
  assert.ok(settings);
  const app = Fastify();
  const startSession: StartSession = (_request, reply, person) => {
    ouk.people.push(person);
    return reply.code(200).send({ person });
  };
  await app.register(
    oidcRoutes,
    oidcRouteOptions(settings, parseRoleMap(env.OUK_ROLE_MAP), startSession, {
      clocks: { idToken: () => Date.now() + ouk.clientClockAhead * 1000, routes: () => Date.now() + ouk.routeClockAhead * 1000 },
    }),
  );
  await app.ready();
  ouk.app = app;
}

async function stopOuk(ouk: Ouk | undefined): Promise<void> {
  if (!ouk) return;
  ouk.server.closeAllConnections();
  await new Promise<void>((resolve) => ouk.server.close(() => resolve()));
  await ouk.app?.close();
}

describe('single sign-on through an OpenID provider', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ouk-oidc-'));
  let provider: TestProvider;
  let ouk: Ouk;

  before(async () => {
    ouk = await startOuk();
    provider = await startTestProvider({
      redirectUri: ouk.redirectUri,
      accounts: { alice: { groups: ['ouk-operators', 'staff'], name: 'Alice Operator' }, bob: { groups: ['staff'] } },
    });
    const secretFile = path.join(dir, 'client-secret');
    fs.writeFileSync(secretFile, `${provider.clientSecret}\n`);
    await mount(ouk, {
      OUK_OIDC_ISSUER: provider.issuer,
      OUK_OIDC_CLIENT_ID: provider.clientId,
      OUK_OIDC_CLIENT_SECRET_FILE: secretFile,
      OUK_PUBLIC_URL: ouk.base,
      OUK_ROLE_MAP: ROLE_MAP,
    });
  });

  after(async () => {
    await provider?.close();
    await stopOuk(ouk);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a person in a mapped group signs in with its roles, as iss#sub through oidc', async () => {
    const login = await browse(`${ouk.base}/auth/oidc/login`, new CookieJar());
    assert.equal(login.status, 302);
    const authorize = new URL(login.headers.get('location') ?? '');
    assert.equal(authorize.origin, provider.issuer);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(authorize.searchParams.get('nonce') && authorize.searchParams.get('state'));
    const cookie = login.headers.getSetCookie().find((c) => c.startsWith(`${OIDC_LOGIN_COOKIE}=`)) ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);

    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    const answer = await browse(callbackUrl, jar);
    assert.equal(answer.status, 200, await answer.clone().text());
    const { person } = (await answer.json()) as { person: Person };
    assert.deepEqual(person, { sub: `${provider.issuer}#alice`, username: 'alice', displayName: 'Alice Operator', roles: ['operator'], via: 'oidc' });
    assert.equal(jar.get(OIDC_LOGIN_COOKIE), undefined, 'the pending sign-in is cleared once used');
  });

  it('groups a provider releases only at userinfo map to roles too', async () => {
    const other = await startOuk();
    const conforming = await startTestProvider({ redirectUri: other.redirectUri, accounts: { carol: { groups: ['ouk-viewers'] } }, groupsAt: 'userinfo' });
    try {
      await mount(other, {
        OUK_OIDC_ISSUER: conforming.issuer,
        OUK_OIDC_CLIENT_ID: conforming.clientId,
        OUK_OIDC_CLIENT_SECRET_FILE: path.join(dir, 'client-secret'),
        OUK_PUBLIC_URL: other.base,
        OUK_ROLE_MAP: ROLE_MAP,
      });
      const { callbackUrl, jar } = await signIn(`${other.base}/auth/oidc/login`, other.redirectUri, 'carol');
      const answer = await browse(callbackUrl, jar);
      assert.equal(answer.status, 200, await answer.clone().text());
      const { person } = (await answer.json()) as { person: Person };
      assert.equal(person.sub, `${conforming.issuer}#carol`);
      assert.deepEqual(person.roles, ['viewer']);
      assert.equal(person.username, 'carol');
    } finally {
      await conforming.close();
      await stopOuk(other);
    }
  });

  it('an https provider is trusted through OUK_CA_FILE, and refused without it', async () => {
    // the site's CA, and the provider's certificate for 127.0.0.1 it signs
    const pem = (name: string): string => path.join(dir, name);
    const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=Site Test CA', '-keyout', pem('ca.key'), '-out', pem('ca.pem'));
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=idp.test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', pem('idp.key'), '-out', pem('idp.csr'));
    openssl('x509', '-req', '-in', pem('idp.csr'), '-CA', pem('ca.pem'), '-CAkey', pem('ca.key'), '-CAcreateserial', '-days', '2', '-copy_extensions', 'copyall', '-out', pem('idp.pem'));
    const trusting = await startOuk();
    const untrusting = await startOuk();
    const tlsProvider = await startTestProvider({
      redirectUri: trusting.redirectUri,
      accounts: { alice: { groups: ['ouk-operators'] } },
      tls: { key: fs.readFileSync(pem('idp.key'), 'utf8'), cert: fs.readFileSync(pem('idp.pem'), 'utf8') },
    });
    try {
      const env = (o: Ouk): Env => ({
        OUK_OIDC_ISSUER: tlsProvider.issuer,
        OUK_OIDC_CLIENT_ID: tlsProvider.clientId,
        OUK_OIDC_CLIENT_SECRET_FILE: path.join(dir, 'client-secret'),
        OUK_PUBLIC_URL: o.base,
        OUK_ROLE_MAP: ROLE_MAP,
      });
      await mount(untrusting, env(untrusting));
      const refused = await browse(`${untrusting.base}/auth/oidc/login`, new CookieJar());
      assert.equal(refused.status, 503);
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'OIDC_UNAVAILABLE');
      assert.match(error.message, /certificate/);

      await mount(trusting, { ...env(trusting), OUK_CA_FILE: pem('ca.pem') });
      // the test's own fetch (the browser) trusts the site's CA as the site's browsers do
      const { callbackUrl, jar } = await signIn(`${trusting.base}/auth/oidc/login`, trusting.redirectUri, 'alice', new CookieJar(fs.readFileSync(pem('ca.pem'), 'utf8')));
      const answer = await browse(callbackUrl, jar);
      assert.equal(answer.status, 200, await answer.clone().text());
      assert.deepEqual(((await answer.json()) as { person: Person }).person.roles, ['operator']);
    } finally {
      await tlsProvider.close();
      await stopOuk(trusting);
      await stopOuk(untrusting);
    }
  });

  it('a person whose groups map to no role is refused like a failed login', async () => {
    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'bob');
    const before = ouk.people.length;
    const answer = await browse(callbackUrl, jar);
    assert.equal(answer.status, 401);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'LOGIN_FAILED');
    assert.equal(ouk.people.length, before, 'no session started');
  });

  it('a tampered state is refused', async () => {
    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    const tampered = new URL(callbackUrl);
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')}x`);
    const answer = await browse(tampered.href, jar);
    assert.equal(answer.status, 401);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'OIDC_REJECTED');
  });

  it('a replayed callback (the same code, the same cookie) is refused', async () => {
    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    const pending = jar.get(OIDC_LOGIN_COOKIE) ?? '';
    assert.equal((await browse(callbackUrl, jar)).status, 200);
    jar.set(OIDC_LOGIN_COOKIE, pending); // an attacker who kept both
    const before = ouk.people.length;
    const replay = await browse(callbackUrl, jar);
    assert.equal(replay.status, 401);
    const { error } = (await replay.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'OIDC_REJECTED');
    assert.match(error.message, /invalid_grant/);
    assert.equal(ouk.people.length, before);
  });

  it('a callback without the pending sign-in, or after it is over, is refused', async () => {
    const { callbackUrl } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    const bare = await browse(callbackUrl, new CookieJar());
    assert.equal(bare.status, 400);
    assert.equal(((await bare.json()) as { error: { code: string } }).error.code, 'OIDC_LOGIN_EXPIRED');

    const late = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    ouk.routeClockAhead = 11 * 60;
    try {
      const answer = await browse(late.callbackUrl, late.jar);
      assert.equal(answer.status, 400);
      assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'OIDC_LOGIN_EXPIRED');
    } finally {
      ouk.routeClockAhead = 0;
    }
  });

  it('an ID token for another audience is refused', async () => {
    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    provider.issueForAudience('another-application');
    try {
      const answer = await browse(callbackUrl, jar);
      assert.equal(answer.status, 401);
      const { error } = (await answer.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'OIDC_REJECTED');
      assert.match(error.message, /"aud"/);
    } finally {
      provider.issueForAudience(undefined);
    }
  });

  it('an expired ID token (by the injected clock) is refused', async () => {
    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    ouk.clientClockAhead = 2 * 3600; // past the provider's one-hour ID token lifetime
    try {
      const answer = await browse(callbackUrl, jar);
      assert.equal(answer.status, 401);
      const { error } = (await answer.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'OIDC_REJECTED');
      assert.match(error.message, /"exp"/);
    } finally {
      ouk.clientClockAhead = 0;
    }
  });

  it('a provider that is down, or answers garbage, gives OIDC_UNAVAILABLE and no sign-in', async () => {
    // down: a port that was listening and is closed
    const gone = http.createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const downIssuer = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    // garbage: a server answering HTML where the metadata should be, and one answering without end
    const garbage = http.createServer((req, res) => {
      if (req.url?.startsWith('/huge')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = (): void => {
          while (res.write(chunk));
          res.once('drain', pump);
        };
        pump();
        res.on('close', () => res.removeAllListeners('drain'));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>welcome to the proxy</html>');
    });
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const garbageBase = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
    const secretFile = path.join(dir, 'client-secret');
    try {
      for (const issuer of [downIssuer, garbageBase, `${garbageBase}/huge`]) {
        const other = await startOuk();
        try {
          await mount(other, { OUK_OIDC_ISSUER: issuer, OUK_OIDC_CLIENT_ID: 'stella-ouk', OUK_OIDC_CLIENT_SECRET_FILE: secretFile, OUK_PUBLIC_URL: other.base, OUK_ROLE_MAP: ROLE_MAP });
          const answer = await browse(`${other.base}/auth/oidc/login`, new CookieJar());
          assert.equal(answer.status, 503, issuer);
          assert.equal(answer.headers.get('retry-after'), '30');
          assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'OIDC_UNAVAILABLE', issuer);
          assert.equal(answer.headers.getSetCookie().length, 0, 'no pending sign-in without a provider');
        } finally {
          await stopOuk(other);
        }
      }
    } finally {
      garbage.closeAllConnections();
      await new Promise<void>((resolve) => garbage.close(() => resolve()));
    }
  });

  it('the provider going down between login and callback gives OIDC_UNAVAILABLE', async () => {
    const { callbackUrl, jar } = await signIn(`${ouk.base}/auth/oidc/login`, ouk.redirectUri, 'alice');
    await provider.close();
    const answer = await browse(callbackUrl, jar);
    assert.equal(answer.status, 503);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'OIDC_UNAVAILABLE');
  });
});

describe('OUK_OIDC_* settings', () => {
  const base = { OUK_OIDC_ISSUER: 'https://keycloak.example.org/realms/site', OUK_OIDC_CLIENT_ID: 'stella-ouk', OUK_OIDC_CLIENT_SECRET_FILE: '/run/secrets/oidc' };
  const code = (env: Env): string => {
    try {
      oidcSettings(env);
      return 'parsed';
    } catch (e) {
      return (e as { code?: string }).code ?? 'thrown';
    }
  };

  it('is off without an issuer, and derives the callback from OUK_PUBLIC_URL', () => {
    assert.equal(oidcSettings({}), undefined);
    const s = oidcSettings({ ...base, OUK_PUBLIC_URL: 'https://ouk.example.org/stella', OUK_CA_FILE: '/etc/ssl/site-ca.pem' });
    assert.deepEqual(s, {
      issuer: 'https://keycloak.example.org/realms/site',
      displayName: 'keycloak.example.org',
      roleMap: '',
      clientId: 'stella-ouk',
      clientSecretFile: '/run/secrets/oidc',
      redirectUri: 'https://ouk.example.org/stella/auth/oidc/callback',
      groupsClaim: 'groups',
      scopes: 'openid profile',
      caFile: '/etc/ssl/site-ca.pem',
    });
    const explicit = oidcSettings({ ...base, OUK_OIDC_REDIRECT_URI: 'https://sso.example.org/auth/oidc/callback', OUK_OIDC_GROUPS_CLAIM: 'roles', OUK_OIDC_SCOPES: 'profile groups' });
    assert.equal(explicit?.redirectUri, 'https://sso.example.org/auth/oidc/callback');
    assert.equal(explicit?.groupsClaim, 'roles');
    assert.equal(explicit?.scopes, 'openid profile groups');
    const named = oidcSettings({ ...base, OUK_PUBLIC_URL: 'https://ouk.example.org', OUK_OIDC_DISPLAY_NAME: ' Keycloak ', OUK_ROLE_MAP: 'operator:ouk-operators' });
    assert.deepEqual([named?.displayName, named?.roleMap], ['Keycloak', 'operator:ouk-operators']);
  });

  it('refuses plain http off loopback, a missing client or callback, and malformed values', () => {
    assert.equal(code({ ...base, OUK_PUBLIC_URL: 'https://ouk.example.org', OUK_OIDC_ISSUER: 'http://keycloak.example.org/realms/site' }), 'USAGE');
    assert.equal(code({ ...base, OUK_PUBLIC_URL: 'http://127.0.0.1:8080', OUK_OIDC_ISSUER: 'http://127.0.0.1:9999' }), 'parsed');
    assert.equal(code({ ...base, OUK_PUBLIC_URL: 'http://ouk.example.org' }), 'USAGE');
    assert.equal(code({ ...base, OUK_OIDC_CLIENT_ID: '', OUK_PUBLIC_URL: 'https://ouk.example.org' }), 'USAGE');
    assert.equal(code({ ...base, OUK_OIDC_CLIENT_SECRET_FILE: '', OUK_PUBLIC_URL: 'https://ouk.example.org' }), 'USAGE');
    assert.equal(code(base), 'USAGE');
    assert.equal(code({ ...base, OUK_PUBLIC_URL: 'https://ouk.example.org', OUK_OIDC_GROUPS_CLAIM: 'groups"; drop' }), 'USAGE');
    assert.equal(code({ ...base, OUK_OIDC_REDIRECT_URI: 'https://ouk.example.org/cb?x=1' }), 'USAGE');
    assert.equal(code({ ...base, OUK_PUBLIC_URL: 'https://ouk.example.org', OUK_OIDC_DISPLAY_NAME: 'Key\u001bcloak' }), 'USAGE');
  });
});
