/**
 * A kit from the future (issue 20, item 7): a validly signed kit whose
 * `created` is more than OUK_MAX_CLOCK_SKEW_SECONDS (600) after the site's
 * clock is refused with BUNDLE_FROM_FUTURE (exit 36), --force or not, at
 * verify and again at activate — before it can become the active DB and make
 * every real kit after it a "downgrade". The stages run on an injected clock;
 * the end-to-end case (CLI and workers on the real clock) uses a kit created
 * in 2099.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Manifest } from '../bundle/manifest.ts';
import { activate } from '../functions/activate.ts';
import { checkPolicy } from '../functions/common/policy.ts';
import { load } from '../functions/load.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { readActivePointer, type ActiveDbPointer } from '../infra/active-db.ts';
import { getImport } from '../infra/import-records.ts';
import { EXIT_CODES, isOukError } from '../lib/errors.ts';
import { createRedis } from '../queue/connection.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { runStella, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, fixtureConfig, fixtureEnv, makeBundle, pipelineFixture, putBundle, registerImport, stageContext, type PipelineFixture } from './pipeline-fixtures.ts';

/** The site's clock in the stage tests: injected, so nothing depends on the day the test runs. */
const NOW = new Date('2027-05-10T12:00:00Z');
const minutes = (n: number): string => new Date(NOW.getTime() + n * 60_000).toISOString();
const NOTHING_ACTIVE: ActiveDbPointer = { activeImport: null, activeVersion: null, activeSchema: null, activeDigest: null, activatedAt: null, previousImport: null };

let fx: PipelineFixture;

before(async () => {
  fx = await pipelineFixture('kit-from-future');
});
after(async () => {
  await fx?.close();
});

async function refusedWith(p: Promise<unknown>, code: string): Promise<Error> {
  const e = await p.then(
    () => null,
    (x: unknown) => x as Error,
  );
  assert.ok(e, `expected ${code}, it succeeded`);
  assert.ok(isOukError(e) && e.code === code, `expected ${code}, got ${String(e)}`);
  return e;
}

describe('the policy', () => {
  const manifest = (created: string): Manifest => ({ bundleVersion: '2027-05-10', kind: 'full', created, expires: '2126-01-01T00:00:00Z' }) as Manifest;

  test('created more than the skew after the clock is BUNDLE_FROM_FUTURE (exit 36), --force or not; within it, or with a larger skew, it passes', () => {
    for (const force of [false, true]) {
      assert.throws(
        () => checkPolicy(manifest(minutes(11)), NOTHING_ACTIVE, { allowDowngrade: true, force }, NOW),
        (e: unknown) => isOukError(e) && e.code === 'BUNDLE_FROM_FUTURE' && e.exitCode === 36 && /11 min after this site's clock.*--force does not change that/.test(e.message),
      );
    }
    checkPolicy(manifest(minutes(9)), NOTHING_ACTIVE, { allowDowngrade: false, force: false }, NOW);
    checkPolicy(manifest(minutes(-60 * 24 * 400)), NOTHING_ACTIVE, { allowDowngrade: false, force: false }, NOW);
    checkPolicy(manifest(minutes(59)), NOTHING_ACTIVE, { allowDowngrade: false, force: false }, NOW, 3600);
    assert.equal(EXIT_CODES.BUNDLE_FROM_FUTURE, 36);
  });
});

describe('the stages, on an injected clock', () => {
  test('verify refuses a kit created 2 h ahead even with --force, names its version on the record, activates nothing; a larger OUK_MAX_CLOCK_SKEW_SECONDS lets it through', async () => {
    const kit = await makeBundle(fx, 'ahead.tar.gz', { version: '2027-05-10', advisories: 20, created: minutes(120), expires: '2126-01-01T00:00:00Z' });
    const p = await putBundle(fx, kit.path, 'stella-ouk-2027-05-10.tar.gz');
    await registerImport(fx, p, { force: true });
    const e = await refusedWith(verify(p, stageContext(fx, { now: () => NOW })), 'BUNDLE_FROM_FUTURE');
    assert.match(e.message, /bundle 2027-05-10 was created at 2027-05-10T14:00:00\.000Z, 2 h after this site's clock \(2027-05-10T12:00:00\.000Z; 600 s of skew allowed/);
    const rec = (await getImport(fx.pool, p.importId))!;
    assert.equal(rec.version, '2027-05-10', 'the refused kit is named by its version');
    assert.notEqual(rec.stages.verify?.state, 'done');
    assert.equal((await readActivePointer(fx.pool)).activeVersion, null);

    const lenient = stageContext(fx, { now: () => NOW, config: { bucket: fx.s3.bucket, trustedKeys: [fx.publicKey], maxClockSkewSeconds: 3 * 3600 } });
    await verify(p, lenient);
    assert.equal((await getImport(fx.pool, p.importId))!.stages.verify?.state, 'done');
  });

  test('activate checks again: a kit verified on a later clock is refused once the clock is set back', async () => {
    const kit = await makeBundle(fx, 'edge.tar.gz', { version: '2027-05-11', advisories: 20, created: minutes(5), expires: '2126-01-01T00:00:00Z' });
    const p = await putBundle(fx, kit.path, 'stella-ouk-2027-05-11.tar.gz');
    await registerImport(fx, p, { force: true });
    const ctx = stageContext(fx, { now: () => NOW });
    await verify(p, ctx);
    await unpack(p, ctx);
    await load(p, ctx);
    // NTP steps the clock back an hour before the switch: the kit is 65 min ahead now.
    await refusedWith(activate(p, stageContext(fx, { now: () => new Date(NOW.getTime() - 3_600_000) })), 'BUNDLE_FROM_FUTURE');
    assert.equal((await readActivePointer(fx.pool)).activeVersion, null, 'nothing became active');
  });
});

describe('end to end, on the real clock: stella ouk import and the workers', () => {
  let redis: TestRedisPrefix;
  let queues: PipelineQueues;
  let workers: RunningWorkers;
  let fx2: PipelineFixture;

  before(async () => {
    fx2 = await pipelineFixture('kit-from-future-e2e');
    redis = testRedisPrefix('kit-from-future');
    queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
    workers = startWorkers(fixtureConfig(fx2, redis), { pool: fx2.pool, store: fx2.s3.store, settings: fastSettings(), logger: fx2.logger });
  });
  after(async () => {
    await workers?.close();
    await queues?.close();
    queues?.connection.disconnect();
    await redis?.cleanup();
    await fx2?.close();
  });

  test('a validly signed kit versioned and created 2099-01-01 is refused (exit 36) with --force; the next real kit activates, nothing frozen', async () => {
    const env = fixtureEnv(fx2, redis, { OUK_TRUSTED_KEYS: fx2.publicKey, LOG_LEVEL: 'warn' });
    const future = await makeBundle(fx2, 'stella-ouk-2099-01-01.tar.gz', { version: '2099-01-01', advisories: 15, created: '2099-01-01T00:00:00Z', expires: '2199-01-01T00:00:00Z' });
    const refused = await runStella(['ouk', 'import', path.basename(future.path), '--force', '--reason', 'test: a kit from the future stays refused'], { cwd: fx2.dir, env });
    assert.equal(refused.code, EXIT_CODES.BUNDLE_FROM_FUTURE, refused.stderr);
    assert.match(refused.stderr, /error\[BUNDLE_FROM_FUTURE\]: verify failed for import [0-9a-f]+ \(stella-ouk-2099-01-01\.tar\.gz\): bundle 2099-01-01 was created at 2099-01-01T00:00:00\.000Z, \d+ days after this site's clock/);
    assert.doesNotMatch(refused.stdout, /activated/);
    assert.equal((await readActivePointer(fx2.pool)).activeVersion, null);

    const real = await makeBundle(fx2, 'stella-ouk-2026-11-20.tar.gz', { version: '2026-11-20', advisories: 15 });
    const ok = await runStella(['ouk', 'import', path.basename(real.path)], { cwd: fx2.dir, env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'activated 2026-11-20\n');
  });
});
