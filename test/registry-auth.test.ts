/**
 * The images step's registry client logs in the way docker and skopeo do,
 * against the real Debian docker-registry (distribution 2.8) in its two
 * modes:
 *
 * - token auth: the registry answers 401 with a Bearer challenge; the client
 *   asks the realm (a token service run here, signing ES256 JWTs with an x5c
 *   certificate the registry trusts, as Harbor's or GitLab's does) for a
 *   token with the account as Basic, then pushes with it;
 * - htpasswd: the registry answers 401 with a Basic challenge; the client
 *   sends the account on every request.
 *
 * No account, or a wrong one, is REGISTRY_REJECTED (exit 59) saying which
 * settings to give, never a retry loop.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { importPKCS8, SignJWT } from 'jose';
import { createRegistryClient, parseChallenge, registryCredentials, type RegistryClient } from '../infra/registry.ts';
import { loadConfig } from '../lib/config.ts';
import { isOukError } from '../lib/errors.ts';
import { writeOciImage, type OciFixture } from './fixtures/oci-images.ts';
import { startTestRegistry, type TestRegistry } from './helpers/registry.ts';
import { tmpDir } from './helpers/services.ts';

const run = promisify(execFile);
const USER = 'alice';
const PASSWORD = 's3cret';
/** bcrypt (cost 4) of PASSWORD, for htpasswd. */
const HTPASSWD = `${USER}:$2b$04$2Za20QR1.VfzqSYS1rQxGuhIkzM1tbpYqVn0vZlLXkuSZb/t7pxOO\n`;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let dir: string;
let image: OciFixture;

before(async () => {
  dir = tmpDir('registry-auth');
  image = await writeOciImage(path.join(dir, 'oci'), { name: 'scanner', seed: 7 });
});

/** Pushes one platform of the fixture image (config, layer, manifest) as repo:v1; returns the manifest digest. */
async function pushImage(client: RegistryClient, repo: string): Promise<string> {
  const blob = (d: string) => path.join(image.dir, 'blobs', 'sha256', d.slice(7));
  const manifest = await readFile(blob(image.platforms[0]!.digest));
  const m = JSON.parse(manifest.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  for (const d of [m.config, ...m.layers]) {
    if (await client.hasBlob(repo, d.digest)) continue;
    const bytes = await readFile(blob(d.digest));
    await client.pushBlob(repo, d.digest, d.size, async () => Readable.from([bytes]));
  }
  return client.putManifest(repo, 'v1', MANIFEST, manifest);
}

const rejected = (re: RegExp) => (e: unknown) => isOukError(e) && e.code === 'REGISTRY_REJECTED' && re.test(e.message);

test('a WWW-Authenticate challenge is read as docker reads it', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:stella/scanner:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:stella/scanner:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.equal(parseChallenge(undefined), null);
});

describe('token auth (Bearer), as Harbor, GitLab or registry:2 with a token service', () => {
  let registry: TestRegistry;
  let tokens: http.Server;
  const issued: string[] = [];

  before(async () => {
    // the token service's signing key and the certificate the registry trusts
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=stella-test-tokens', '-keyout', path.join(dir, 'token.key'), '-out', path.join(dir, 'token.crt')]);
    await run('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', path.join(dir, 'token.key'), '-out', path.join(dir, 'token.p8')]);
    const key = await importPKCS8(await readFile(path.join(dir, 'token.p8'), 'utf8'), 'ES256');
    const der = (await readFile(path.join(dir, 'token.crt'), 'utf8')).replace(/-----[^-]+-----|\s/g, '');
    tokens = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const auth = req.headers.authorization ?? '';
      const [user, pass] = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString().split(':');
      if (!auth.startsWith('Basic ') || user !== USER || pass !== PASSWORD) {
        res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      const scope = url.searchParams.get('scope') ?? '';
      issued.push(scope);
      const [, name, actions] = scope.split(':');
      const now = Math.floor(Date.now() / 1000);
      void new SignJWT({ access: [{ type: 'repository', name, actions: (actions ?? '').split(',') }] })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [der] })
        .setIssuer('stella-test-tokens')
        .setSubject(USER)
        .setAudience(url.searchParams.get('service') ?? '')
        .setIssuedAt(now)
        .setNotBefore(now - 5)
        .setExpirationTime(now + 300)
        .setJti(`t${issued.length}`)
        .sign(key)
        .then((token) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 })));
    });
    await new Promise<void>((resolve) => tokens.listen(0, '127.0.0.1', resolve));
    const realm = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token`;
    registry = await startTestRegistry('auth-token', ['token:', `  realm: ${realm}`, '  service: stella-registry', '  issuer: stella-test-tokens', `  rootcertbundle: ${path.join(dir, 'token.crt')}`]);
  });

  after(async () => {
    await registry?.close();
    await new Promise((resolve) => tokens?.close(resolve));
  });

  test('with the account: a token for the repository (pull and push), then the push; the registry serves the manifest', async () => {
    const client = createRegistryClient(registry.url, { username: USER, password: PASSWORD });
    const digest = await pushImage(client, 'stella/scanner');
    assert.equal(digest, image.platforms[0]!.digest);
    assert.equal(await client.manifestDigest('stella/scanner', 'v1', [MANIFEST]), digest);
    assert.deepEqual([...new Set(issued)], ['repository:stella/scanner:pull,push'], 'one scope, with push, asked for up front');
    assert.ok(issued.length <= 2, `tokens are kept, not fetched per request (${issued.length})`);
  });

  test('no account, or a wrong one: REGISTRY_REJECTED saying which settings to give', async () => {
    await assert.rejects(pushImage(createRegistryClient(registry.url), 'stella/other'), rejected(/OUK_REGISTRY_USERNAME and OUK_REGISTRY_PASSWORD_FILE/));
    await assert.rejects(pushImage(createRegistryClient(registry.url, { username: USER, password: 'wrong' }), 'stella/other'), rejected(/refused the credentials/));
  });
});

describe('htpasswd (Basic), as a plain registry:2 or Nexus', () => {
  let registry: TestRegistry;

  before(async () => {
    await writeFile(path.join(dir, 'htpasswd'), HTPASSWD);
    registry = await startTestRegistry('auth-basic', ['htpasswd:', '  realm: stella-test', `  path: ${path.join(dir, 'htpasswd')}`]);
  });

  after(async () => {
    await registry?.close();
  });

  test('with the account: pushed and served', async () => {
    const client = createRegistryClient(registry.url, { username: USER, password: PASSWORD });
    const digest = await pushImage(client, 'stella/scanner');
    assert.equal(await client.manifestDigest('stella/scanner', 'v1', [MANIFEST]), digest);
  });

  test('no account, or a wrong one: REGISTRY_REJECTED', async () => {
    await assert.rejects(createRegistryClient(registry.url).hasBlob('stella/scanner', image.blobs[0]!), rejected(/requires a login/));
    await assert.rejects(createRegistryClient(registry.url, { username: USER, password: 'nope' }).hasBlob('stella/scanner', image.blobs[0]!), rejected(/refused the (account|credentials of) alice/));
  });
});

test('the account comes from OUK_REGISTRY_USERNAME and a password file (or OUK_REGISTRY_PASSWORD); half an account stops the start', async () => {
  const file = path.join(dir, 'registry-password');
  await writeFile(file, `${PASSWORD}\n`);
  const credentials = (env: NodeJS.ProcessEnv) => registryCredentials(loadConfig(env).registryAccount);
  assert.deepEqual(credentials({ OUK_REGISTRY_USERNAME: USER, OUK_REGISTRY_PASSWORD_FILE: file }), { username: USER, password: PASSWORD });
  assert.deepEqual(credentials({ OUK_REGISTRY_USERNAME: USER, OUK_REGISTRY_PASSWORD: 'p' }), { username: USER, password: 'p' });
  assert.equal(credentials({}), undefined);
  assert.throws(() => loadConfig({ OUK_REGISTRY_USERNAME: USER }), /without a password: set OUK_REGISTRY_PASSWORD_FILE/);
  assert.throws(() => loadConfig({ OUK_REGISTRY_PASSWORD: 'p' }), /OUK_REGISTRY_USERNAME is not/);
  assert.throws(() => credentials({ OUK_REGISTRY_USERNAME: USER, OUK_REGISTRY_PASSWORD_FILE: path.join(dir, 'missing') }), /OUK_REGISTRY_PASSWORD_FILE=.* cannot be read \(ENOENT\)/);
  // only a process that makes a registry client reads the file: the configuration alone does not
  assert.doesNotThrow(() => loadConfig({ OUK_REGISTRY_USERNAME: USER, OUK_REGISTRY_PASSWORD_FILE: path.join(dir, 'missing') }));
  const big = path.join(dir, 'not-a-password');
  await writeFile(big, Buffer.alloc(70 * 1024, 0x61));
  assert.throws(() => credentials({ OUK_REGISTRY_USERNAME: USER, OUK_REGISTRY_PASSWORD_FILE: big }), /is not a password file \(71680 bytes\)/);
});
