/**
 * What an operator is told about the images step must be true, through the real CLI against Debian's docker-registry, with the
 * pipeline's workers running:
 *
 *  - `stella ouk retry` of an import whose images push fails again exits with
 *    the images' code (REGISTRY_UNAVAILABLE, 58), not 0 with "activated";
 *  - a successful `stella ouk images --push` repairs the step for good: the
 *    record says done, `stella ouk jobs --failed` and
 *    ouk_queue_jobs{queue="images",state="failed"} no longer show the old
 *    failure, and `retry` agrees there is nothing to retry.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildBundle, type BuildResult } from '../builder/build.ts';
import { todayVersion } from '../bundle/version.ts';
import { getImport } from '../infra/import-records/index.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import { registry as metricsRegistry, setScrapeSources } from '../lib/metrics.ts';
import { createRedis } from '../queue/connection.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { writeOciImage } from './fixtures/oci-images.ts';
import { startTestRegistry, type TestRegistry } from './helpers/registry.ts';
import { runStella, sharedDir, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, fixtureConfig, fixtureEnv, pipelineFixture, type PipelineFixture } from './pipeline-fixtures.ts';

const VERSION = todayVersion();

let fx: PipelineFixture;
let reg: TestRegistry;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
let kit: BuildResult;
let env: NodeJS.ProcessEnv;
let undoScrape: () => void;

before(async () => {
  fx = await pipelineFixture('images-failure-truth');
  reg = await startTestRegistry('images-failure-truth');
  const scanner = await writeOciImage(path.join(fx.dir, 'oci', 'scanner'), { name: 'scanner', tag: '1.0' });
  kit = await buildBundle({
    feedsDir: path.join(sharedDir, 'feeds'),
    keyPath: fx.privateKey,
    out: path.join(fx.dir, `stella-ouk-${VERSION}.tar.gz`),
    version: VERSION,
    images: [`scanner=${scanner.dir}`],
    onWarning: () => undefined,
  });
  redis = testRedisPrefix('images-failure-truth');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  workers = startWorkers(fixtureConfig(fx, redis, { registryUrl: reg.url, registryPrefix: 'stella/' }), { pool: fx.pool, store: fx.s3.store, settings: fastSettings(), logger: fx.logger });
  env = fixtureEnv(fx, redis, { OUK_TRUSTED_KEYS: fx.publicKey, OUK_REGISTRY_URL: reg.url, STELLA_AIRGAP: 'true', LOG_LEVEL: 'warn', OUK_VERIFY_ATTEMPTS: '2', OUK_STAGE_ATTEMPTS: '2', OUK_STAGE_BACKOFF_MS: '100' });
  // /metrics's queue gauge, read from these queues as the API reads them
  undoScrape = setScrapeSources({ queues: Object.values(queues.queues) });
});

after(async () => {
  undoScrape?.();
  await workers?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await reg?.close();
  await fx?.close();
});

const stella = (...args: string[]) => runStella(args, { cwd: fx.dir, env });

async function failedImagesJobs(): Promise<number | null> {
  const body = await metricsRegistry.metrics();
  const m = /^ouk_queue_jobs\{queue="images",state="failed"\} (\d+)$/m.exec(body);
  return m ? Number(m[1]) : null;
}

test('retry of a push that fails again exits 58; a successful `images --push` clears the failure everywhere', async () => {
  await reg.stop();
  const imported = await stella('ouk', 'import', path.basename(kit.out));
  assert.equal(imported.code, EXIT_CODES.REGISTRY_UNAVAILABLE, imported.stderr);
  const id = /import ([0-9a-f]{24})/.exec(imported.stderr)![1]!;
  assert.equal((await getImport(fx.pool, id))!.state, 'active', 'the DB is live all the same');

  const retried = await stella('ouk', 'retry', id);
  assert.equal(retried.code, EXIT_CODES.REGISTRY_UNAVAILABLE, `${retried.stdout}\n${retried.stderr}`);
  assert.match(retried.stderr, /images: failed/);
  assert.match(retried.stderr.trimEnd().split('\n').at(-1)!, new RegExp(`^error\\[REGISTRY_UNAVAILABLE\\]: ${VERSION} is the active DB, but pushing its images failed: .* — fix it, then \`stella ouk retry ${id}\``));
  assert.doesNotMatch(retried.stdout, /activated/, 'nothing was activated by this retry');

  const listed = await stella('ouk', 'jobs', '--failed');
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`^${id} `, 'm'), 'the failed push is listed');
  assert.equal(await failedImagesJobs(), 1);

  await reg.start();
  const pushed = await stella('ouk', 'images', '--push');
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.match(pushed.stdout, new RegExp(`pushed the images of ${VERSION} \\(${id}\\): stella/scanner:1\\.0`));
  const rec = (await getImport(fx.pool, id))!;
  assert.equal(rec.stages.images?.state, 'done', 'the images step is recorded done');

  const after = await stella('ouk', 'jobs', '--failed');
  assert.equal(after.stdout, 'no failed imports\n', 'the old failure is no longer listed');
  assert.equal(await failedImagesJobs(), 0, 'ouk_queue_jobs{queue="images",state="failed"} cleared: the alert ends');
  const nothing = await stella('ouk', 'retry', id);
  assert.equal(nothing.code, EXIT_CODES.NOTHING_TO_RETRY, nothing.stderr);
  const held = await stella('ouk', 'images');
  assert.equal(held.code, 0, held.stderr);
  assert.match(held.stdout, /stella\/scanner:1\.0 .* push done {2}held/);
});

test('`images --push` with every image held already still repairs a failed images step', async () => {
  // The step failed (say, the registry dropped the connection after the last manifest): the registry holds it all.
  const { patchStage } = await import('../infra/import-records/index.ts');
  const id = (await fx.pool.query<{ active_import: string }>('SELECT active_import FROM ouk_meta.active_db')).rows[0]!.active_import;
  await patchStage(fx.pool, id, 'images', { state: 'failed', code: 'REGISTRY_UNAVAILABLE', error: 'connection reset' });
  const pushed = await stella('ouk', 'images', '--push');
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.match(pushed.stdout, /\(0 blobs, 0 manifests\)/, 'nothing pushed: all held');
  assert.equal((await getImport(fx.pool, id))!.stages.images?.state, 'done');
});
