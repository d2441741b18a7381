/**
 * The infrastructure every other test stands on: s3rver with MinIO-format
 * webhooks, the isolation helpers (database, Redis prefix, temp dirs), the dev
 * environment, and the compose file.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { Redis } from 'ioredis';
import { goQueryEscape, goQueryUnescape, type MinioWebhookEvent } from '../infra/minio-event.ts';
import { toMinioWebhookEvent, type S3rverEvent } from '../dev/s3rver.ts';
import { devEnv, devPaths } from '../infra/env.ts';
import { isLoopbackUrl } from '../lib/loopback.ts';
import { storeUnavailable } from '../infra/store.ts';
import { ensureDevSecrets } from '../dev/secrets.ts';
import { waitFor } from './pipeline-fixtures.ts';
import { createTestDatabase, freePort, repoRoot, sharedDir, startTestS3, testConfig, testRedisPrefix, tmpDir, type TestS3 } from './helpers/services.ts';

interface Received {
  auth: string | undefined;
  contentType: string | undefined;
  body: MinioWebhookEvent;
}

/** A tiny webhook receiver; `status` decides each answer (default 200). */
async function webhookReceiver(status: (n: number) => number = () => 200) {
  const received: Received[] = [];
  let hits = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits++;
      const code = status(hits);
      if (code >= 200 && code < 300) {
        received.push({
          auth: req.headers.authorization,
          contentType: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as MinioWebhookEvent,
        });
      }
      res.statusCode = code;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/minio`;
  return {
    url,
    received,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('MinIO key escaping', () => {
  test('matches Go url.QueryEscape and round-trips', () => {
    // Values of Go's url.QueryEscape, which MinIO applies to Records[].s3.object.key.
    assert.equal(goQueryEscape('a b+c/d(1)~!*\'.tar.gz'), 'a+b%2Bc%2Fd%281%29~%21%2A%27.tar.gz');
    assert.equal(goQueryEscape('stella-ouk_2026.11.28.tar.gz'), 'stella-ouk_2026.11.28.tar.gz');
    assert.equal(goQueryEscape('ü'), '%C3%BC');
    for (const k of ['a b+c/d(1)~!*\'.tar.gz', 'ü/x%20y', 'plain']) assert.equal(goQueryUnescape(goQueryEscape(k)), k);
  });

  test('toMinioWebhookEvent translates an s3rver record', () => {
    const raw: S3rverEvent = {
      Records: [
        {
          eventName: 'ObjectCreated:Copy',
          eventTime: '2026-11-28T00:00:00.000Z',
          s3: { bucket: { name: 'ouk' }, object: { key: 'in/x y.tar.gz', size: 42, eTag: '"abc"' } },
        },
      ],
    };
    const ev = toMinioWebhookEvent(raw);
    assert.equal(ev.EventName, 's3:ObjectCreated:Copy');
    assert.equal(ev.Key, 'ouk/in/x y.tar.gz');
    const r = ev.Records[0];
    assert.equal(r.eventName, 's3:ObjectCreated:Copy');
    assert.equal(r.eventSource, 'minio:s3');
    assert.equal(r.s3.bucket.name, 'ouk');
    assert.equal(r.s3.bucket.arn, 'arn:aws:s3:::ouk');
    assert.equal(r.s3.object.key, 'in%2Fx+y.tar.gz');
    assert.equal(r.s3.object.size, 42);
    assert.equal(r.s3.object.eTag, 'abc');
    assert.throws(() => toMinioWebhookEvent({ Records: [] }));
  });
});

describe('s3rver with MinIO webhooks', () => {
  let s3: TestS3 | undefined;
  after(async () => {
    await s3?.close();
  });

  test('a put reaches the webhook in MinIO format, with the bearer token and the escaped key', async () => {
    const hook = await webhookReceiver();
    s3 = await startTestS3('infra-webhook', { webhook: { url: hook.url, token: 'tok-123' }, suffix: '.tar.gz' });
    try {
      const key = 'incoming/stella ouk+2026-11-28.tar.gz';
      const body = Buffer.from('not really a tarball, but 44 bytes of it....');
      // A signature beside it: filtered out by the suffix, like `mc event add --suffix .tar.gz`.
      await s3.store.putObject(s3.bucket, `${key}.sig`, Buffer.from('sig'), 3);
      await s3.store.putObject(s3.bucket, key, body, body.length);
      await s3.idle();

      assert.equal(hook.received.length, 1, 'exactly one event (the .sig is filtered)');
      const got = hook.received[0];
      assert.equal(got.auth, 'Bearer tok-123');
      assert.match(got.contentType ?? '', /^application\/json/);
      assert.equal(got.body.EventName, 's3:ObjectCreated:Put');
      assert.equal(got.body.Key, `${s3.bucket}/${key}`);
      assert.equal(got.body.Records.length, 1);
      const rec = got.body.Records[0];
      assert.equal(rec.eventName, 's3:ObjectCreated:Put');
      assert.equal(rec.s3.bucket.name, s3.bucket);
      assert.equal(rec.s3.object.key, 'incoming%2Fstella+ouk%2B2026-11-28.tar.gz');
      assert.equal(goQueryUnescape(rec.s3.object.key), key);
      assert.equal(rec.s3.object.size, body.length);
      const stat = await s3.store.statObject(s3.bucket, key);
      assert.equal(rec.s3.object.eTag, stat.etag);
      // onEvent saw the same, in order
      assert.deepEqual(s3.events.map((e) => e.Key), [`${s3.bucket}/${key}`]);
    } finally {
      await hook.close();
    }
  });

  test('a failed delivery is retried until the endpoint answers 2xx', async () => {
    const hook = await webhookReceiver((n) => (n < 3 ? 503 : 204));
    const own = await startTestS3('infra-retry', { webhook: { url: hook.url, token: 't', backoffMs: 10 } });
    try {
      await own.store.putObject(own.bucket, 'a.tar.gz', Buffer.from('x'), 1);
      await own.idle();
      assert.equal(hook.hits(), 3);
      assert.equal(hook.received.length, 1);
      assert.equal(hook.received[0].body.Key, `${own.bucket}/a.tar.gz`);
    } finally {
      await own.close();
      await hook.close();
    }
  });

  test('a rejected token is not retried, and the server keeps serving', async () => {
    const hook = await webhookReceiver(() => 401);
    const logged: string[] = [];
    const own = await startTestS3('infra-401', { webhook: { url: hook.url, token: 'wrong', backoffMs: 10 }, log: (m) => logged.push(m) });
    try {
      await own.store.putObject(own.bucket, 'b.tar.gz', Buffer.from('yy'), 2);
      await own.idle();
      assert.equal(hook.hits(), 1);
      assert.equal(logged.length, 1);
      assert.match(logged[0], /HTTP 401.*b\.tar\.gz|b\.tar\.gz.*HTTP 401/);
      const st = await own.store.statObject(own.bucket, 'b.tar.gz');
      assert.equal(st.size, 2);
    } finally {
      await own.close();
      await hook.close();
    }
  });
});

describe('test isolation helpers', () => {
  test('createTestDatabase creates a usable database and drops it', async () => {
    const db = await createTestDatabase('infra db');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const r = await client.query<{ d: string }>('SELECT current_database() AS d');
    assert.equal(r.rows[0].d, db.name);
    // A connection left open must not block the drop (WITH FORCE).
    client.on('error', () => undefined);
    await db.drop();
    await client.end().catch(() => undefined);
    const admin = new pg.Client({ connectionString: testConfig().databaseUrl });
    await admin.connect();
    try {
      const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name]);
      assert.equal(left.rowCount, 0);
    } finally {
      await admin.end();
    }
  });

  test('testRedisPrefix cleans its own keys and nothing else', async () => {
    const a = testRedisPrefix('infra redis');
    const b = testRedisPrefix('infra redis');
    assert.notEqual(a.prefix, b.prefix);
    assert.doesNotMatch(a.prefix, /:/);
    const redis = new Redis(a.redisUrl);
    try {
      for (let i = 0; i < 1500; i++) await redis.set(`${a.prefix}:k${i}`, '1');
      await redis.set(`${b.prefix}:keep`, '1');
      await a.cleanup();
      assert.equal((await redis.keys(`${a.prefix}*`)).length, 0);
      assert.equal(await redis.get(`${b.prefix}:keep`), '1');
      await b.cleanup();
      assert.equal(await redis.exists(`${b.prefix}:keep`), 0);
    } finally {
      redis.disconnect();
    }
  });

  test('tmpDir, testConfig, repoRoot and sharedDir', () => {
    const d = tmpDir('infra');
    assert.ok(fs.statSync(d).isDirectory());
    const cfg = testConfig({ bucket: 'x', apiPort: 1 });
    assert.equal(cfg.bucket, 'x');
    assert.equal(cfg.apiPort, 1);
    assert.equal(cfg.redisUrl, 'redis://127.0.0.1:6379');
    assert.ok(fs.existsSync(path.join(repoRoot, 'package.json')));
    assert.ok(fs.existsSync(path.join(sharedDir, 'feeds')), `${sharedDir}/feeds is missing: the shared data must sit beside the repository`);
  });
});

describe('store errors', () => {
  test('a full store is INSUFFICIENT_SPACE, anything else STORE_UNAVAILABLE; both retryable', () => {
    const full = storeUnavailable(Object.assign(new Error('Storage backend has reached its minimum free drive threshold'), { code: 'XMinioStorageFull' }));
    assert.deepEqual([full.code, full.retryable], ['INSUFFICIENT_SPACE', true]);
    assert.match(full.message, /out of space.*stella ouk gc/);
    assert.equal(storeUnavailable(new Error('ENOSPC: no space left on device, write')).code, 'INSUFFICIENT_SPACE');
    const down = storeUnavailable(new Error('connect ECONNREFUSED 127.0.0.1:9000'));
    assert.deepEqual([down.code, down.retryable], ['STORE_UNAVAILABLE', true]);
  });
});

describe('dev environment', () => {
  test('devEnv reads the stack\'s dev.env under the environment; nothing is trusted without it', async () => {
    const cwd = tmpDir('devenv');
    const p = devPaths({}, cwd);
    assert.equal(p.stateDir, path.join(cwd, '.stella'));
    // a production host: no dev.env, so no trusted key and no token appear from anywhere
    fs.mkdirSync(p.keysDir, { recursive: true });
    fs.writeFileSync(p.publicKey, 'pem');
    assert.equal(devEnv({}, cwd).OUK_TRUSTED_KEYS, undefined, 'a key lying in the state dir is never trusted by default');
    // dev:up writes dev.env: the dev key, a webhook token, air-gapped
    const made = await ensureDevSecrets(p);
    assert.ok(made.includes(p.devEnvFile));
    assert.equal(fs.statSync(p.devEnvFile).mode & 0o777, 0o600);
    const e = devEnv({}, cwd);
    assert.equal(e.OUK_TRUSTED_KEYS, p.publicKey);
    assert.match(e.OUK_WEBHOOK_TOKEN ?? '', /^[A-Za-z0-9_-]{32}$/);
    assert.equal(e.STELLA_AIRGAP, 'true');
    assert.equal(e.STELLA_STATE_DIR, p.stateDir);
    // idempotent: a second run keeps the same token
    assert.deepEqual(await ensureDevSecrets(p), []);
    assert.equal(devEnv({}, cwd).OUK_WEBHOOK_TOKEN, e.OUK_WEBHOOK_TOKEN);
    // the environment wins; an empty value counts as unset
    const mine = devEnv({ OUK_TRUSTED_KEYS: '/etc/k.pub', OUK_WEBHOOK_TOKEN: 'x', STELLA_AIRGAP: '' }, cwd);
    assert.equal(mine.OUK_TRUSTED_KEYS, '/etc/k.pub');
    assert.equal(mine.OUK_WEBHOOK_TOKEN, 'x');
    assert.equal(mine.STELLA_AIRGAP, 'true');
    // a dev.env others may write is ignored: it could plant a trust anchor
    fs.chmodSync(p.devEnvFile, 0o666);
    assert.equal(devEnv({}, cwd).OUK_TRUSTED_KEYS, undefined);
  });

  test('isLoopbackUrl', () => {
    assert.ok(isLoopbackUrl('redis://127.0.0.1:6379'));
    assert.ok(isLoopbackUrl('postgres://postgres@localhost:5432/postgres'));
    assert.ok(isLoopbackUrl('http://[::1]:9000'));
    assert.ok(!isLoopbackUrl('redis://redis:6379'));
    assert.ok(!isLoopbackUrl('not a url'));
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run dev:up / dev:down', () => {
  test('start the stack in the background idempotently and stop exactly it', async () => {
    const dir = tmpDir('devup');
    const stateDir = path.join(dir, 'state');
    // Stand-ins for api/main.ts and queue/worker-main.ts: same contract (healthz on STELLA_API_PORT; a long-running worker).
    const api = path.join(dir, 'fake-api.ts');
    fs.writeFileSync(
      api,
      `import http from 'node:http';
const s = http.createServer((req, res) => { res.statusCode = req.url === '/healthz' ? 200 : 404; res.end(process.env.OUK_WEBHOOK_TOKEN ? 'token' : 'none'); });
s.listen(Number(process.env.STELLA_API_PORT), '127.0.0.1');
process.on('SIGTERM', () => s.close(() => process.exit(0)));
`,
    );
    const worker = path.join(dir, 'fake-worker.ts');
    fs.writeFileSync(worker, `console.log('trusted', process.env.OUK_TRUSTED_KEYS); setInterval(() => undefined, 1000);\n`);
    const s3Port = await freePort();
    const apiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STELLA_STATE_DIR: stateDir,
      S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
      STELLA_API_PORT: String(apiPort),
      STELLA_DEV_API_ENTRY: api,
      STELLA_DEV_WORKER_ENTRY: worker,
      OUK_TRUSTED_KEYS: '',
      OUK_WEBHOOK_TOKEN: '',
    };
    const npmRun = (script: string) => spawnSync('node', ['--import', 'tsx', `dev/${script}.ts`], { cwd: repoRoot, env, encoding: 'utf8' });
    const paths = devPaths(env, repoRoot);
    const pids = () => Object.fromEntries(['s3rver', 'api', 'worker'].map((n) => [n, Number(fs.readFileSync(path.join(paths.runDir, `${n}.pid`), 'utf8').split('\n')[0])]));
    try {
      const up = npmRun('dev-up');
      assert.equal(up.status, 0, up.stdout + up.stderr);
      assert.match(up.stdout, /s3rver\s+started/);
      assert.match(up.stdout, /api\s+started/);
      assert.match(up.stdout, /worker\s+started/);
      for (const f of [paths.privateKey, paths.publicKey, paths.devEnvFile]) assert.ok(fs.existsSync(f), f);
      const first = pids();
      for (const pid of Object.values(first)) assert.ok(alive(pid));
      // the children got the dev defaults
      assert.equal(await (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).text(), 'token');
      // the worker writes its line once tsx has started it: wait for it (a loaded machine takes seconds)
      const workerLog = path.join(paths.logsDir, 'worker.log');
      const trusted = new RegExp(`trusted ${paths.publicKey}`);
      await waitFor('the worker to log its trusted keys', async () => trusted.test(fs.readFileSync(workerLog, 'utf8')), 30_000);
      // s3rver is the store, with the bucket
      const s3 = await fetch(`http://127.0.0.1:${s3Port}/`);
      assert.match(await s3.text(), /<Name>ouk<\/Name>/);

      const again = npmRun('dev-up');
      assert.equal(again.status, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /s3rver\s+already running/);
      assert.deepEqual(pids(), first);
      assert.equal(fs.readFileSync(paths.publicKey, 'utf8').length > 0, true);

      const down = npmRun('dev-down');
      assert.equal(down.status, 0, down.stdout + down.stderr);
      for (const pid of Object.values(first)) assert.ok(!alive(pid), `pid ${pid} still alive`);
      assert.deepEqual(fs.readdirSync(paths.runDir), []);
      assert.ok(await redisAnswersHere(), 'dev:down must leave Redis running');
    } finally {
      npmRun('dev-down');
    }
  });
});

async function redisAnswersHere(): Promise<boolean> {
  const r = new Redis(testConfig().redisUrl);
  try {
    return (await r.ping()) === 'PONG';
  } finally {
    r.disconnect();
  }
}

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  ports?: unknown[];
  container_name?: string;
  working_dir?: string;
  /** docker-compose 1.29 prints the short syntax: `source:target:mode` */
  volumes?: string[];
}

describe('compose-stella.yml', () => {
  const emptyEnvFile = () => {
    const f = path.join(tmpDir('compose'), 'empty.env');
    fs.writeFileSync(f, '');
    return f;
  };
  const compose = (env: Record<string, string>) =>
    spawnSync('docker-compose', ['--env-file', emptyEnvFile(), '-f', 'compose-stella.yml', 'config'], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });

  test('is valid and wires MinIO notifications, the bucket, Redis, PostgreSQL, the API and scalable workers', () => {
    const r = compose({ OUK_WEBHOOK_TOKEN: 'hook-token', MINIO_ROOT_PASSWORD: 'minio-secret', POSTGRES_PASSWORD: 'pg-secret' });
    if (r.error) assert.fail(`docker-compose is not installed (apt-get install docker-compose; .ci/run does it): ${r.error.message}`);
    assert.equal(r.status, 0, r.stderr);
    // docker-compose depends on python3-yaml: use it to read the normalised file.
    const json = execFileSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: r.stdout, encoding: 'utf8' });
    const services = (JSON.parse(json) as { services: Record<string, ComposeService> }).services;
    assert.deepEqual(Object.keys(services).sort(), ['api', 'minio', 'minio-setup', 'postgres', 'redis', 'registry', 'stella-ops', 'worker']);
    assert.match(services.registry!.image ?? '', /^registry:2/);
    assert.equal(services.worker!.environment?.OUK_REGISTRY_URL, 'http://registry:5000');

    const minio = services.minio.environment ?? {};
    assert.equal(minio.MINIO_NOTIFY_WEBHOOK_ENABLE_OUK, 'on');
    assert.equal(minio.MINIO_NOTIFY_WEBHOOK_ENDPOINT_OUK, 'http://api:8080/hooks/minio');
    assert.equal(minio.MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_OUK, 'hook-token');
    assert.ok(minio.MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_OUK, 'a queue dir makes delivery at-least-once');
    assert.ok(services.minio.healthcheck);

    const setup = JSON.stringify(services['minio-setup'].command);
    assert.match(setup, /mc mb --ignore-existing/);
    assert.match(setup, /mc event add \\"local\/\$+OUK_BUCKET\\" arn:minio:sqs::OUK:webhook --event put --suffix \.tar\.gz/);

    assert.match(services.redis.image ?? '', /^redis:7/);
    assert.match(services.postgres.image ?? '', /^postgres:15/);
    for (const name of ['api', 'worker', 'stella-ops']) {
      const s = services[name];
      assert.ok(s.build, `${name} is built from the Dockerfile`);
      const env = s.environment ?? {};
      assert.equal(env.REDIS_URL, 'redis://redis:6379');
      assert.equal(env.DATABASE_URL, 'postgres://postgres:pg-secret@postgres:5432/postgres');
      assert.equal(env.S3_ENDPOINT, 'http://minio:9000');
      assert.equal(env.S3_SECRET_KEY, 'minio-secret');
      assert.equal(env.OUK_WEBHOOK_TOKEN, 'hook-token');
      assert.ok(env.OUK_TRUSTED_KEYS);
      assert.equal(s.depends_on?.['minio-setup']?.condition, 'service_completed_successfully');
      for (const dep of ['redis', 'postgres', 'minio']) assert.equal(s.depends_on?.[dep]?.condition, 'service_healthy');
      // state in a volume owned by the service, never a world-writable /tmp
      assert.equal(env.STELLA_STATE_DIR, '/var/lib/stella');
      assert.ok((s.volumes ?? []).includes('stella-state:/var/lib/stella:rw'), `${name} keeps its state in a volume`);
      assert.equal(env.STELLA_AIRGAP, 'true', 'air-gapped by default');
    }
    // the seed's own command: `docker compose exec stella-ops stella ouk import <file>`, the kit in /import
    const ops = services['stella-ops'];
    assert.equal(ops.working_dir, '/import');
    assert.ok((ops.volumes ?? []).some((v) => /^[^:]+\/import:\/import:ro$/.test(v)), `the kits are mounted read-only at /import: ${ops.volumes}`);
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /ln -s \/app\/bin\/stella\.js \/usr\/local\/bin\/stella/, 'stella is on the PATH in the image');
    assert.match(dockerfile, /STELLA_STATE_DIR=\/var\/lib\/stella/);
    assert.match(dockerfile, /VOLUME \/var\/lib\/stella/);
    assert.doesNotMatch(dockerfile, /STELLA_STATE_DIR=\/tmp/);
    // the image runs the compiled JavaScript (npm run build in the Dockerfile's first stage), not the TypeScript through tsx
    assert.match(dockerfile, /RUN npm run build/);
    assert.match(dockerfile, /COPY --from=build \/src\/dist \.\/dist/);
    assert.match(dockerfile, /CMD \["node", "dist\/api\/main\.js"\]/);
    assert.deepEqual(services.api.command, ['node', 'dist/api/main.js']);
    assert.deepEqual(services.worker.command, ['node', 'dist/queue/worker-main.js']);
    assert.ok(services.api.healthcheck);
    // --scale worker=N needs no fixed name and no published port
    assert.equal(services.worker.container_name, undefined);
    assert.equal(services.worker.ports, undefined);
  });

  test('refuses to start without the webhook token and passwords', () => {
    const r = compose({ MINIO_ROOT_PASSWORD: 'minio-secret', POSTGRES_PASSWORD: 'pg-secret' });
    if (r.error) assert.fail(`docker-compose is not installed: ${r.error.message}`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /OUK_WEBHOOK_TOKEN/);
  });
});

describe('repository plumbing', () => {
  test('.env.example documents every variable lib/config.ts and the architecture brief name', () => {
    const example = fs.readFileSync(path.join(repoRoot, '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    const config = fs.readFileSync(path.join(repoRoot, 'lib/config.ts'), 'utf8');
    const fromConfig = [...config.matchAll(/env(?:\.|, ')([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]);
    assert.ok(fromConfig.length > 15, 'found the variables of lib/config.ts');
    const brief = ['REDIS_URL', 'DATABASE_URL', 'S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'OUK_BUCKET', 'OUK_TRUSTED_KEYS', 'STELLA_API_PORT', 'STELLA_AIRGAP', 'STELLA_JWT', 'STELLA_JWT_PUBLIC_KEY', 'QUOTA_ANON', 'QUOTA_TOKEN', 'QUOTA_BANNER_AT', 'OUK_WEBHOOK_TOKEN', 'DASHBOARD_USER', 'DASHBOARD_PASSWORD'];
    const missing = [...new Set([...fromConfig, ...brief])].filter((v) => !documented.has(v));
    assert.deepEqual(missing, []);
  });

  test('.ci/run is an executable strict bash script running the README\'s test command, then the faketime run', () => {
    const file = path.join(repoRoot, '.ci/run');
    assert.ok(fs.statSync(file).mode & 0o100, '.ci/run is executable');
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^#!\/usr\/bin\/env bash\n/);
    assert.match(text, /set -euo pipefail/);
    assert.match(text, /\nnpm test\n/);
    assert.match(text, /\nnpm run test:system\n/, 'CI runs the system tests too');
    assert.match(text.trimEnd(), /\nnpm run test:faketime$/);
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    assert.match(readme, /```sh\nnpm test\n```/, 'the README names the same test command');
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; license: string };
    assert.match(pkg.scripts.test, /^dev\/ensure-packages\.sh && /, 'npm test installs what it drives on a fresh machine');
    assert.match(pkg.scripts['test:system'] ?? '', /^dev\/ensure-packages\.sh && dev\/run-tests\.sh system$/);
    assert.equal(pkg.license, 'AGPL-3.0-or-later');
    assert.match(fs.readFileSync(path.join(repoRoot, 'LICENSE'), 'utf8'), /^GNU AFFERO GENERAL PUBLIC LICENSE\nVersion 3/);
    const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
  });
});
