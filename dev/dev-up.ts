/**
 * `npm run dev:up`: the local stack in the background, idempotently.
 *
 *   1. Redis and PostgreSQL (the Debian packages) when installed but not answering;
 *   2. dev secrets when missing: .stella/keys/cosign.{key,pub} and .stella/dev.env,
 *      the stack's explicit configuration (that key trusted, a webhook token,
 *      STELLA_AIRGAP=true: the stack runs air-gapped, as in production);
 *   3. s3rver (dev/s3rver-main.ts), the OCI registry (Debian's docker-registry,
 *      dev/registry-main.ts, when installed; OUK_REGISTRY_URL), the API (api/main.ts) and the workers
 *      (queue/worker-main.ts), each a detached `node --import tsx <file>` with its
 *      output in .stella/logs/<name>.log and its pid in .stella/run/<name>.pid.
 *
 * A service whose pid is alive is left alone; a port answered by something else
 * is reported as external and left alone. Exits non-zero, naming the log file,
 * when a service does not come up. `npm run dev:down` stops what this started.
 *
 * Knobs: STELLA_DEV_WORKERS (worker processes, default 1); STELLA_DEV_API_ENTRY
 * and STELLA_DEV_WORKER_ENTRY replace the entry files (used by the tests).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../lib/config.ts';
import { devEnv, devPaths, loadDotEnv } from '../infra/env.ts';
import { isLoopbackUrl } from '../lib/loopback.ts';
import { ensureDevSecrets } from './secrets.ts';
import { registryAnswers, registryInstalled } from './registry.ts';
import {
  ensurePostgres,
  ensureRedis,
  httpAnswers,
  isOurs,
  logFile,
  portAnswers,
  printTable,
  readPid,
  spawnDetached,
  tail,
  type ServiceSpec,
} from './services.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A path as shown to the operator: relative inside the repository, absolute outside. */
function show(p: string): string {
  return p.startsWith(repoRoot + path.sep) ? path.relative(repoRoot, p) : p;
}

type Row = [name: string, state: string, pid: string, address: string, log: string];

async function main(): Promise<number> {
  process.chdir(repoRoot);
  loadDotEnv(path.join(repoRoot, '.env'));
  const paths = devPaths(process.env, repoRoot);
  const cfg0 = loadConfig(process.env);
  const rows: Row[] = [['SERVICE', 'STATE', 'PID', 'ADDRESS', 'LOG']];
  let failed = false;

  const redis = await ensureRedis(cfg0.redisUrl, isLoopbackUrl(cfg0.redisUrl));
  rows.push(['redis', redis.state, '-', redis.detail, redis.state === 'started' ? '/var/log/redis/ci.log' : '-']);
  const postgres = await ensurePostgres(cfg0.databaseUrl, isLoopbackUrl(cfg0.databaseUrl));
  rows.push(['postgres', postgres.state, '-', postgres.detail, '-']);
  for (const [name, r] of [['Redis', redis], ['PostgreSQL', postgres]] as const) {
    if (r.state === 'running' || r.state === 'started') continue;
    console.error(`dev:up: ${name} is not available: ${r.detail}`);
    failed = true;
  }

  const made = await ensureDevSecrets(paths);
  for (const f of made) console.log(`dev:up: generated ${show(f)}`);

  const env = devEnv(process.env, repoRoot);
  const cfg = loadConfig(env);
  const apiBase = `http://127.0.0.1:${cfg.apiPort}`;
  const workers = Math.max(1, Number(env.STELLA_DEV_WORKERS || 1));

  const specs: Array<ServiceSpec & { skip?: string }> = [
    {
      name: 's3rver',
      entry: 'dev/s3rver-main.ts',
      address: cfg.s3Endpoint,
      timeoutMs: 20_000,
      ready: () => httpAnswers(cfg.s3Endpoint, false),
      skip: isLoopbackUrl(cfg.s3Endpoint) ? undefined : 'remote store (S3_ENDPOINT)',
    },
    {
      name: 'registry',
      entry: 'dev/registry-main.ts',
      address: cfg.registryUrl ?? '-',
      timeoutMs: 20_000,
      ready: () => registryAnswers(cfg.registryUrl!),
      skip: !registryInstalled()
        ? 'docker-registry not installed (apt-get install docker-registry)'
        : !cfg.registryUrl
          ? 'OUK_REGISTRY_URL unset'
          : isLoopbackUrl(cfg.registryUrl)
            ? undefined
            : 'remote registry (OUK_REGISTRY_URL)',
    },
    { name: 'api', entry: env.STELLA_DEV_API_ENTRY || 'api/main.ts', address: apiBase, timeoutMs: 60_000, ready: () => httpAnswers(`${apiBase}/healthz`) },
  ];
  for (let i = 1; i <= workers; i++) {
    specs.push({
      name: workers === 1 ? 'worker' : `worker-${i}`,
      entry: env.STELLA_DEV_WORKER_ENTRY || 'queue/worker-main.ts',
      address: '-',
      timeoutMs: 3000,
      // A worker has no port: it is up when it is still running after a short settle.
      ready: async () => {
        await sleep(1500);
        return true;
      },
    });
  }

  for (const spec of specs) {
    const log = show(logFile(paths, spec.name));
    if (failed) {
      rows.push([spec.name, 'not started', '-', spec.address, '-']);
      continue;
    }
    if (spec.skip) {
      rows.push([spec.name, `skipped: ${spec.skip}`, '-', spec.address, '-']);
      continue;
    }
    const rec = readPid(paths, spec.name);
    if (rec && isOurs(rec)) {
      rows.push([spec.name, 'already running', String(rec.pid), spec.address, log]);
      continue;
    }
    if (spec.address.startsWith('http')) {
      const u = new URL(spec.address);
      if (await portAnswers(u.hostname, Number(u.port))) {
        rows.push([spec.name, 'external (port in use)', '-', spec.address, '-']);
        console.error(`dev:up: ${spec.address} already answers but was not started by dev:up; leaving it alone`);
        continue;
      }
    }
    if (!fs.existsSync(path.resolve(repoRoot, spec.entry))) {
      rows.push([spec.name, 'FAILED', '-', spec.address, '-']);
      console.error(`dev:up: ${spec.entry} does not exist`);
      failed = true;
      continue;
    }
    const pid = spawnDetached(paths, repoRoot, spec, env);
    const me = { pid, entry: spec.entry };
    let died = false;
    const end = Date.now() + spec.timeoutMs;
    let up = false;
    while (Date.now() < end) {
      if (!isOurs(me)) {
        died = true;
        break;
      }
      if (await spec.ready()) {
        up = isOurs(me);
        died = !up;
        break;
      }
      await sleep(250);
    }
    if (up) {
      rows.push([spec.name, 'started', String(pid), spec.address, log]);
      continue;
    }
    failed = true;
    rows.push([spec.name, 'FAILED', String(pid), spec.address, log]);
    console.error(
      `dev:up: ${spec.name} (${spec.entry}) ${died ? 'exited' : `did not answer within ${spec.timeoutMs / 1000}s`}; see ${log}:\n${tail(logFile(paths, spec.name))
        .split('\n')
        .map((l) => `  | ${l}`)
        .join('\n')}`,
    );
  }

  console.log('');
  printTable(rows);
  console.log('');
  if (failed) {
    console.error('dev:up: the stack is NOT fully up (see above); `npm run dev:down` stops what was started.');
    return 1;
  }
  console.log(
    `Stack up${cfg.airgap ? ', air-gapped (STELLA_AIRGAP=true)' : ' (STELLA_AIRGAP is off)'}. Bucket ${cfg.bucket} at ${cfg.s3Endpoint}, API ${apiBase}, trusted keys ${env.OUK_TRUSTED_KEYS ?? '(none)'}; configuration in ${show(paths.devEnvFile)}, state in ${show(paths.stateDir)}/. Stop it with: npm run dev:down`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`dev:up: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
