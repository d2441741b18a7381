/**
 * Kit images end to end, on the real services: a kit built
 * from ../shared/feeds with two two-platform OCI images (scanner as skopeo
 * writes a layout, zastava as umoci does) imports air-gapped through the
 * stages, and the site's registry — Debian's docker-registry on loopback —
 * serves both by the digests in the manifest. Rerunning the images stage
 * pushes nothing; a registry outage fails the images step with
 * REGISTRY_UNAVAILABLE while the DB is active, and `stella ouk retry`
 * finishes it; a delta carries only the changed image; a tampered blob fails
 * the member checksums; `stella ouk images --json` lists the chain.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { buildBundle, type BuildResult } from '../builder/build.ts';
import { todayVersion } from '../bundle/version.ts';
import { blobMember } from '../bundle/oci.ts';
import { images, type ImagesResult } from '../functions/images.ts';
import { stagedPrefix } from '../functions/context.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { load } from '../functions/load.ts';
import { activate } from '../functions/activate.ts';
import { getImport, patchStage } from '../infra/import-records/index.ts';
import { objectExists } from '../infra/store.ts';
import { createRegistryClient } from '../infra/registry.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { isOukError } from '../lib/errors.ts';
import { writeSignatureFiles } from '../signing/index.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { retryImport } from '../queue/retry.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { writeOciImage, type OciFixture } from './fixtures/oci-images.ts';
import { startTestRegistry, type TestRegistry } from './helpers/registry.ts';
import { runStella, sharedDir, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, fixtureConfig, fixtureEnv, pipelineFixture, putBundle, registerImport, stageContext, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const FEEDS = path.join(sharedDir, 'feeds');
const VERSION = todayVersion();

let fx: PipelineFixture;
let registry: TestRegistry;
let scanner: OciFixture;
let zastava: OciFixture;
let kit: BuildResult;

before(async () => {
  fx = await pipelineFixture('kit-images');
  registry = await startTestRegistry('kit-images');
  scanner = await writeOciImage(path.join(fx.dir, 'oci', 'scanner'), { name: 'scanner', tag: '1.0' });
  zastava = await writeOciImage(path.join(fx.dir, 'oci', 'zastava'), { name: 'zastava', tag: '1.0', flat: true });
  kit = await buildBundle({
    feedsDir: FEEDS,
    keyPath: fx.privateKey,
    out: path.join(fx.dir, 'kits', `stella-ouk-${VERSION}.tar.gz`),
    version: VERSION,
    images: [`scanner=${scanner.dir}`, `zastava=${zastava.dir}`],
    onWarning: () => undefined,
  });
});

after(async () => {
  await registry?.close();
  await fx?.close();
});

const ctxWithRegistry = () => stageContext(fx, { registry: { client: createRegistryClient(registry.url), prefix: 'stella/' } });

describe('the kit', () => {
  test('names each image by its index digest and platforms, in the manifest and the SBOM; every blob is a member', () => {
    const m = kit.manifest;
    assert.deepEqual(m.images?.map((i) => [i.name, i.tag, i.platforms.map((p) => `${p.os}/${p.architecture}`)]), [
      ['scanner', '1.0', ['linux/amd64', 'linux/arm64']],
      ['zastava', '1.0', ['linux/amd64', 'linux/arm64']],
    ]);
    assert.equal(m.images![0]!.indexDigest, scanner.indexDigest);
    assert.deepEqual(m.images![1]!.platforms.map((p) => p.digest).sort(), zastava.platforms.map((p) => p.digest).sort());
    const paths = new Set(m.members.map((x) => x.path));
    for (const d of scanner.blobs) assert.ok(paths.has(blobMember('scanner', d)), d);
    for (const d of zastava.blobs) assert.ok(paths.has(blobMember('zastava', d)), d);
    for (const x of m.members.filter((y) => y.path.startsWith('images/'))) assert.equal(x.role, 'image');
  });
});

describe('import through the stages, registry up', () => {
  let payload: Awaited<ReturnType<typeof putBundle>>;

  test('activate keeps the image members staged; images pushes both images; the registry serves them by the kit digests', async () => {
    payload = await putBundle(fx, kit.out, path.basename(kit.out));
    await registerImport(fx, payload);
    const ctx = ctxWithRegistry();
    await verify(payload, ctx);
    await unpack(payload, ctx);
    await load(payload, ctx);
    await activate(payload, ctx);
    const rec = (await getImport(fx.pool, payload.importId))!;
    const prefix = stagedPrefix(rec.digest!, payload.importId);
    assert.equal(await objectExists(fx.s3.store, fx.s3.bucket, prefix + blobMember('scanner', scanner.indexDigest!)), true, 'image blobs stay staged for the images stage');
    assert.equal(await objectExists(fx.s3.store, fx.s3.bucket, prefix + kit.manifest.members[0]!.path), false, 'DB members are cleaned up at activation');

    const r = await images(payload, ctx);
    assert.equal(r.registry, registry.url);
    assert.deepEqual(r.images.map((i) => [i.repository, i.blobs.pushed, i.blobs.skipped, i.manifests.pushed]), [
      ['stella/scanner', 4, 0, 3],
      ['stella/zastava', 4, 0, 3],
    ]);
    for (const img of kit.manifest.images!) {
      const idx = await registry.manifest(`stella/${img.name}`, img.tag);
      assert.equal(idx.status, 200);
      assert.equal(idx.digest, img.indexDigest, `${img.name}:${img.tag} is served with the kit's index digest`);
      for (const p of img.platforms) {
        const pm = await registry.manifest(`stella/${img.name}`, p.digest);
        assert.equal(pm.status, 200);
        assert.equal(pm.digest, p.digest);
      }
    }
    assert.equal(await objectExists(fx.s3.store, fx.s3.bucket, prefix + blobMember('scanner', scanner.indexDigest!)), false, 'staged members removed once pushed');
    assert.equal((await getImport(fx.pool, payload.importId))!.state, 'active');
  });

  test('rerunning the images stage is a no-op; run again from scratch it pushes nothing (blobs skipped, counted)', async () => {
    const ctx = ctxWithRegistry();
    const first = (await getImport(fx.pool, payload.importId))!.stages.images!.result as ImagesResult;
    assert.deepEqual(await images(payload, ctx), first);
    // Forget that it ran: the stage re-stages the image blobs from the verified tarball and finds everything held.
    await patchStage(fx.pool, payload.importId, 'images', { state: 'retrying', result: null });
    const again = await images(payload, ctx);
    assert.deepEqual(again.images.map((i) => [i.blobs.pushed, i.blobs.skipped, i.manifests.pushed, i.manifests.skipped]), [
      [0, 4, 0, 3],
      [0, 4, 0, 3],
    ]);
  });

  test('a delta carries only the changed image; `stella ouk images --json` lists the chain, both held', async () => {
    const scanner2 = await writeOciImage(path.join(fx.dir, 'oci', 'scanner2'), { name: 'scanner', tag: '1.1', seed: 2 });
    const delta = await buildBundle({
      feedsDir: FEEDS,
      keyPath: fx.privateKey,
      out: path.join(fx.dir, 'kits', `stella-ouk-${VERSION}.1.tar.gz`),
      version: `${VERSION}.1`,
      base: kit.out,
      images: [`scanner=${scanner2.dir}`, `zastava=${zastava.dir}`],
      onWarning: () => undefined,
    });
    assert.equal(delta.manifest.kind, 'delta');
    assert.deepEqual(delta.manifest.images?.map((i) => i.name), ['scanner']);
    assert.ok(delta.manifest.members.every((m) => !m.path.startsWith('images/zastava/')));

    const p2 = await putBundle(fx, delta.out, path.basename(delta.out));
    await registerImport(fx, p2);
    const ctx = ctxWithRegistry();
    await verify(p2, ctx);
    await unpack(p2, ctx);
    await load(p2, ctx);
    await activate(p2, ctx);
    const r = await images(p2, ctx);
    assert.deepEqual(r.images.map((i) => [i.name, i.tag, i.indexDigest]), [['scanner', '1.1', scanner2.indexDigest]]);

    const redis = testRedisPrefix('kit-images-cli');
    const out = await runStella(['ouk', 'images', '--json'], { cwd: fx.dir, env: fixtureEnv(fx, redis, { OUK_REGISTRY_URL: registry.url, STELLA_AIRGAP: 'true' }) });
    assert.equal(out.code, 0, out.stderr);
    const listed = JSON.parse(out.stdout) as { activeVersion: string; registry: string; images: Array<{ name: string; tag: string; indexDigest: string; version: string; held: boolean; repository: string }> };
    assert.equal(listed.activeVersion, `${VERSION}.1`);
    assert.equal(listed.registry, registry.url);
    assert.deepEqual(listed.images.map((i) => [i.repository, i.tag, i.indexDigest, i.version, i.held]), [
      ['stella/scanner', '1.1', scanner2.indexDigest, `${VERSION}.1`, true],
      ['stella/zastava', '1.0', kit.manifest.images![1]!.indexDigest, VERSION, true],
    ]);
  });

  test('a registry configured later (or replaced, or wiped): `stella ouk images --push` pushes the chain, each image from the kit that carries it', async () => {
    const late = await startTestRegistry('kit-images-late');
    try {
      const redis = testRedisPrefix('kit-images-push');
      const env = fixtureEnv(fx, redis, { OUK_REGISTRY_URL: late.url, STELLA_AIRGAP: 'true' });
      const before = await runStella(['ouk', 'images'], { cwd: fx.dir, env });
      assert.equal(before.code, 59, 'the new registry holds nothing');
      assert.match(before.stderr, /stella ouk images --push/);

      const push = await runStella(['ouk', 'images', '--push', '--json'], { cwd: fx.dir, env });
      assert.equal(push.code, 0, push.stderr);
      const out = JSON.parse(push.stdout) as { pushed: Array<{ version: string; result: ImagesResult }>; images: Array<{ repository: string; held: boolean }> };
      assert.deepEqual(out.pushed.map((x) => [x.version, x.result.images.map((i) => i.repository)]).sort(), [
        [VERSION, ['stella/zastava']],
        [`${VERSION}.1`, ['stella/scanner']],
      ]);
      assert.ok(out.images.every((i) => i.held));
      assert.equal((await late.manifest('stella/zastava', '1.0')).digest, kit.manifest.images![1]!.indexDigest);
      assert.equal((await late.manifest('stella/scanner', '1.1')).status, 200);
      assert.equal((await late.manifest('stella/scanner', '1.0')).status, 404, "the full kit's scanner, which the delta replaced, is not pushed");

      const again = await runStella(['ouk', 'images', '--push'], { cwd: fx.dir, env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /nothing to push/);
    } finally {
      await late.close();
    }
  });
});

describe('tampered image blob', () => {
  test('a kit whose layer bytes differ from its signed manifest fails the member checksums at unpack', async () => {
    const tar = gunzipSync(fs.readFileSync(kit.out));
    const at = tar.indexOf(Buffer.from('stella zastava arm64 build 1'));
    assert.ok(at > 0);
    tar[at] ^= 0x20;
    const bad = path.join(fx.dir, 'kits', 'tampered', `stella-ouk-${VERSION}.tar.gz`);
    fs.mkdirSync(path.dirname(bad), { recursive: true });
    fs.writeFileSync(bad, gzipSync(tar));
    await writeSignatureFiles(bad, fx.privateKey);
    const p = await putBundle(fx, bad, 'tampered/stella-ouk-tampered.tar.gz');
    await registerImport(fx, p, { allowDowngrade: true });
    const ctx = ctxWithRegistry();
    await verify(p, ctx);
    await assert.rejects(unpack(p, ctx), (e: unknown) => isOukError(e) && e.code === 'MEMBER_CHECKSUM_MISMATCH' && /images\/zastava\/blobs\/sha256\//.test(e.message));
  });
});

describe('registry down (BullMQ flow and workers)', () => {
  let fx2: PipelineFixture;
  let redis: TestRedisPrefix;
  let queues: PipelineQueues;
  let workers: RunningWorkers;
  let reg2: TestRegistry;

  before(async () => {
    fx2 = await pipelineFixture('kit-images-down');
    fs.copyFileSync(fx.privateKey, fx2.privateKey);
    fs.copyFileSync(fx.publicKey, fx2.publicKey);
    reg2 = await startTestRegistry('kit-images-down');
    redis = testRedisPrefix('kit-images-down');
    queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
    const config = fixtureConfig(fx2, redis, { registryUrl: reg2.url, registryPrefix: 'stella/' });
    workers = startWorkers(config, { pool: fx2.pool, store: fx2.s3.store, settings: fastSettings(), logger: fx2.logger });
  });
  after(async () => {
    await workers?.close();
    await queues?.close();
    queues?.connection.disconnect();
    await redis?.cleanup();
    await reg2?.close();
    await fx2?.close();
  });

  test('the images step fails REGISTRY_UNAVAILABLE with the DB active; retried once the registry is back, it completes', async () => {
    await reg2.stop();
    const p = await putBundle(fx2, kit.out, path.basename(kit.out));
    await ingestObject({ pool: fx2.pool, queues, settings: fastSettings(), logger: fx2.logger }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
    const failed = await waitFor('the images step to fail', async () => {
      const r = await getImport(fx2.pool, p.importId);
      return r?.stages.images?.state === 'failed' ? r : null;
    }, 90_000);
    assert.equal(failed.stages.images!.code, 'REGISTRY_UNAVAILABLE');
    assert.match(failed.stages.images!.error ?? '', /could not be reached/);
    assert.equal(failed.state, 'active', 'the DB went live all the same');
    assert.equal((await readActivePointer(fx2.pool)).activeImport, p.importId);

    await reg2.start();
    const retried = await retryImport({ pool: fx2.pool, queues, settings: fastSettings(), logger: fx2.logger }, p.importId);
    assert.equal(retried.stage, 'images');
    const done = await waitFor('the images step to complete', async () => {
      const r = await getImport(fx2.pool, p.importId);
      return r?.stages.images?.state === 'done' ? r : null;
    }, 60_000);
    assert.equal(done.state, 'active');
    for (const img of kit.manifest.images!) {
      const idx = await reg2.manifest(`stella/${img.name}`, img.tag);
      assert.equal(idx.digest, img.indexDigest);
    }
  });
});
