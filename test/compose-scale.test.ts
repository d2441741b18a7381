/**
 * compose-stella.scale.yml, the Sentinel override of compose-stella.yml,
 * validated by Debian's docker-compose (no engine needed): the merged file is
 * valid, a replica and three sentinels watch the primary, and every Stella
 * process asks the sentinels (docs/scale.md).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, tmpDir } from './helpers/services.ts';

interface Service {
  image?: string;
  command?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
}

test('compose-stella.scale.yml: a Redis replica and three sentinels; the API, the workers and the operator shell follow them', () => {
  const envFile = path.join(tmpDir('compose-scale'), 'empty.env');
  fs.writeFileSync(envFile, '');
  const r = spawnSync('docker-compose', ['--env-file', envFile, '-f', 'compose-stella.yml', '-f', 'compose-stella.scale.yml', 'config'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OUK_WEBHOOK_TOKEN: 'hook-token', MINIO_ROOT_PASSWORD: 'minio-secret', POSTGRES_PASSWORD: 'pg-secret' },
  });
  if (r.error) assert.fail(`docker-compose is not installed (apt-get install docker-compose; .ci/run does it): ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  const json = execFileSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: r.stdout, encoding: 'utf8' });
  const services = (JSON.parse(json) as { services: Record<string, Service> }).services;
  assert.match(JSON.stringify(services['redis-replica']!.command), /--replicaof","redis","6379"/);
  for (const name of ['sentinel-1', 'sentinel-2', 'sentinel-3']) {
    const conf = JSON.stringify(services[name]!.command);
    assert.match(conf, /sentinel monitor stella redis 6379 2/, `${name} watches the primary with quorum 2`);
    assert.match(conf, /exec redis-sentinel/);
  }
  for (const name of ['api', 'worker', 'stella-ops']) {
    const s = services[name]!;
    const env = s.environment ?? {};
    assert.equal(env.REDIS_SENTINELS, 'sentinel-1:26379,sentinel-2:26379,sentinel-3:26379', name);
    assert.equal(env.REDIS_SENTINEL_NAME, 'stella', name);
    assert.equal(env.STELLA_AIRGAP, 'true', `${name} stays air-gapped`);
    assert.equal(env.STELLA_AIRGAP_ALLOW, 'redis:6379,redis-replica:6379', `${name}: the Redis nodes are named for air-gap mode`);
    assert.equal(env.DATABASE_URL, 'postgres://postgres:pg-secret@postgres:5432/postgres', `${name} keeps the base file's environment`);
    for (const dep of ['redis', 'postgres', 'sentinel-1', 'sentinel-2', 'sentinel-3']) assert.equal(s.depends_on?.[dep]?.condition, 'service_healthy', `${name} waits for ${dep}`);
  }
});
