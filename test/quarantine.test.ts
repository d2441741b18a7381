/**
 * Quarantine, against real Redis, PostgreSQL, s3rver, the
 * pipeline's workers and `stella` CLI processes: a tampered kit and a kit
 * signed by an untrusted key are moved under quarantine/<date>/ with their
 * siblings and a reason.json, never retried (reconciler, `retry`), listed;
 * `release` after the trust is fixed imports the kit; `rm --reason` removes it
 * and is on the audit trail; a store outage is retried, not quarantined; a
 * crashed move is finished by the reconciler and a replay changes nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job } from 'bullmq';
import { EXIT_CODES } from '../lib/errors.ts';
import { pipelineSettings } from '../lib/config.ts';
import { shouldQuarantine, QUARANTINE_CODES } from '../lib/quarantine.ts';
import { createStore } from '../infra/store.ts';
import { getImport } from '../infra/import-records/index.ts';
import { loadTrustedKeys, generateKeyPair } from '../signing/index.ts';
import { startWorkers, stageProcessor, type RunningWorkers } from '../queue/workers.ts';
import { createRedis } from '../queue/connection.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { reconcileOnce } from '../queue/reconciler.ts';
import { isBundleKey } from '../queue/identity.ts';
import type { StagePayload } from '../functions/context.ts';
import { Readable } from 'node:stream';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { readBundle } from '../bundle/reader.ts';
import { registry, setScrapeSources } from '../lib/metrics.ts';
import { quarantineFromPostgres } from '../api/metrics.ts';
import { writeBundle } from '../bundle/writer.ts';
import { writeSignatureFiles } from '../signing/index.ts';
import { makeBundle, pipelineFixture, putBundle, putFile, registerImport, fixtureConfig, fixtureEnv, FAST_RETRIES, TEST_BUNDLE_CREATED, TEST_BUNDLE_EXPIRES, type PipelineFixture } from './pipeline-fixtures.ts';
import { freePort, runStella, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let workers: RunningWorkers;
let queues: PipelineQueues;
/** The site's trusted keys, read at every verify: a test "fixes the trust" by adding one. */
const trusted: string[] = [];
let otherPub = '';
let otherKey = '';

before(async () => {
  fx = await pipelineFixture('quarantine');
  redis = testRedisPrefix('quarantine');
  trusted.push(fx.publicKey);
  const kp = await generateKeyPair();
  otherKey = path.join(fx.dir, 'other.key');
  otherPub = path.join(fx.dir, 'other.pub');
  fs.writeFileSync(otherKey, kp.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(otherPub, kp.publicKeyPem);
  const config = fixtureConfig(fx, redis);
  workers = startWorkers(config, {
    pool: fx.pool,
    store: fx.s3.store,
    settings: pipelineSettings({ ...FAST_RETRIES, OUK_LOCK_MS: '5000', OUK_STALLED_MS: '2000' }),
    logger: fx.logger,
    trustedKeys: () => loadTrustedKeys([...trusted]),
  });
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
});

after(async () => {
  await workers?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});

function stella(...args: string[]): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: fixtureEnv(fx, redis, { ...FAST_RETRIES, LOG_LEVEL: 'warn', OUK_TRUSTED_KEYS: fx.publicKey }) });
}

async function objects(prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, prefix, true)) out.push((o as { name: string }).name);
  return out.sort();
}

async function readObject(key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await fx.s3.store.getObject(fx.s3.bucket, key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reconcilerDeps() {
  return { pool: fx.pool, queues, settings: pipelineSettings(FAST_RETRIES), store: fx.s3.store, bucket: fx.s3.bucket, logger: fx.logger };
}

interface Listed {
  importId: string;
  version: string;
  key: string;
  quarantinedAs: string;
  code: string;
}

describe('lib/quarantine: which refusals quarantine', () => {
  test('integrity and policy refusals do; passing faults and self-healing refusals do not', () => {
    for (const c of ['SIGNATURE_MISMATCH', 'KEY_NOT_TRUSTED', 'KEY_REVOKED', 'ATTESTATION_MISMATCH', 'UNSAFE_ENTRY', 'MEMBER_CHECKSUM_MISMATCH', 'DOWNGRADE_REFUSED', 'BUNDLE_EXPIRED', 'BUNDLE_FROM_FUTURE']) {
      assert.ok(shouldQuarantine(c), c);
    }
    for (const c of ['STORE_UNAVAILABLE', 'DATABASE_UNAVAILABLE', 'QUEUE_UNAVAILABLE', 'INSUFFICIENT_SPACE', 'SIGNATURE_MISSING', 'IMPORT_FAILED', 'INTERNAL', 'DIGEST_CHANGED']) {
      assert.ok(!shouldQuarantine(c), c);
      assert.ok(!QUARANTINE_CODES.has(c as never), c);
    }
    const base = { version: '2026-11-20', dbDigest: 'a'.repeat(64) };
    assert.ok(shouldQuarantine('DELTA_BASE_MISMATCH', { base, active: { activeVersion: '2026-11-20', activeDigest: 'b'.repeat(64) } }), 'a real wrong base');
    assert.ok(!shouldQuarantine('DELTA_BASE_MISMATCH', { base, active: { activeVersion: '2026-11-19', activeDigest: 'b'.repeat(64) } }), 'a base not active yet waits');
    assert.ok(!shouldQuarantine('DELTA_BASE_MISMATCH', { base, active: { activeVersion: null, activeDigest: null } }), 'nothing active: waits');
    assert.ok(!isBundleKey('quarantine/2026-12-07/stella-ouk-2026-11-21.tar.gz'), 'a quarantined kit is never ingested');
  });
});

describe('stella ouk quarantine', () => {
  let tamperedId = '';
  let wrongKeyId = '';

  test('a tampered kit is refused, moved to quarantine/<date>/ with its siblings and reason.json, and says so', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-21.tar.gz', { version: '2026-11-21', advisories: 10 });
    const buf = fs.readFileSync(b.path);
    buf[300] ^= 0x40;
    fs.writeFileSync(b.path, buf);
    const r = await stella('ouk', 'import', b.path);
    assert.equal(r.code, EXIT_CODES.SIGNATURE_MISMATCH, r.stderr);
    assert.match(r.stderr, /quarantined as quarantine\/\d{4}-\d{2}-\d{2}\/stella-ouk-2026-11-21\.tar\.gz/);
    const all = await objects();
    assert.ok(!all.includes('stella-ouk-2026-11-21.tar.gz') && !all.includes('stella-ouk-2026-11-21.tar.gz.sig'), `originals gone: ${all.join(', ')}`);
    const q = all.filter((k) => k.startsWith('quarantine/'));
    const place = q.find((k) => k.endsWith('/stella-ouk-2026-11-21.tar.gz'))!;
    assert.ok(place, q.join(', '));
    // every file the import uploaded beside it travels with it (the kit is signed as .sig and as the .sigs.json set)
    assert.deepEqual(q.sort(), [place, `${place}.reason.json`, `${place}.sig`, `${place}.sigs.json`, `${place}.sigstore.json`].sort());
    const reason = JSON.parse(await readObject(`${place}.reason.json`)) as Record<string, unknown>;
    assert.equal(reason.code, 'SIGNATURE_MISMATCH');
    assert.equal(reason.via, 'cli');
    assert.equal(reason.key, 'stella-ouk-2026-11-21.tar.gz');
    assert.ok(!Number.isNaN(Date.parse(String(reason.at))));
    assert.match(String(reason.message), /signature/i);
    tamperedId = String(reason.importId);
    const rec = await getImport(fx.pool, tamperedId);
    assert.equal(rec?.state, 'quarantined');
    assert.equal(rec?.quarantineKey, place);
  });

  test('a kit signed by a key the site does not trust is quarantined too', async () => {
    const file = path.join(fx.dir, 'stella-ouk-2026-11-22.tar.gz');
    await writeSyntheticBundle(file, { version: '2026-11-22', advisories: 12, created: TEST_BUNDLE_CREATED, expires: TEST_BUNDLE_EXPIRES }, otherKey);
    const r = await stella('ouk', 'import', file);
    assert.ok([EXIT_CODES.KEY_NOT_TRUSTED, EXIT_CODES.SIGNATURE_MISMATCH].includes(r.code as 14), `${r.code}: ${r.stderr}`);
    const list = await stella('ouk', 'quarantine', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as Listed[];
    assert.equal(rows.length, 2);
    const wrong = rows.find((x) => x.key === 'stella-ouk-2026-11-22.tar.gz')!;
    assert.ok(wrong, list.stdout);
    wrongKeyId = wrong.importId;
    assert.match(wrong.quarantinedAs, /^quarantine\/\d{4}-\d{2}-\d{2}\/stella-ouk-2026-11-22\.tar\.gz$/);
    const show = await stella('ouk', 'quarantine', 'show', wrongKeyId.slice(0, 10), '--json');
    assert.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as { reason: { via: string; objects: string[] } };
    assert.equal(shown.reason.via, 'cli');
    assert.ok(shown.reason.objects.some((o) => o.endsWith('.sig')));
    const human = await stella('ouk', 'quarantine', 'list');
    assert.match(human.stdout, new RegExp(`${tamperedId}.*SIGNATURE_MISMATCH`));
    const status = await stella('ouk', 'status');
    assert.match(status.stdout, new RegExp(`${tamperedId}.*quarantined[\\s\\S]*SIGNATURE_MISMATCH, quarantined, never retried: \`stella ouk quarantine show ${tamperedId}\``));
  });

  test('never retried: a reconciler pass leaves both alone, `retry` refuses, the kit stays where it is', async () => {
    const before = await objects();
    const pass = await reconcileOnce(reconcilerDeps());
    assert.deepEqual(pass.retried, []);
    assert.deepEqual(pass.ingested, []);
    assert.deepEqual(pass.resumed, []);
    assert.deepEqual(await objects(), before);
    for (const id of [tamperedId, wrongKeyId]) assert.equal((await getImport(fx.pool, id))?.state, 'quarantined');
    const r = await stella('ouk', 'retry', tamperedId);
    assert.equal(r.code, EXIT_CODES.NOTHING_TO_RETRY, r.stderr);
    assert.match(r.stderr, /quarantined .*never retried/);
  });

  test('release before the trust is fixed: verified again, refused again, quarantined again', async () => {
    const r = await stella('ouk', 'quarantine', 'release', wrongKeyId, '--reason', 'try again before the root update');
    assert.ok([EXIT_CODES.KEY_NOT_TRUSTED, EXIT_CODES.SIGNATURE_MISMATCH].includes(r.code as 14), `${r.code}: ${r.stderr}`);
    const rec = await getImport(fx.pool, wrongKeyId);
    assert.equal(rec?.state, 'quarantined');
    assert.ok(!(await objects()).includes('stella-ouk-2026-11-22.tar.gz'));
  });

  test('release after the trust is fixed (the key now trusted) imports it', async () => {
    trusted.push(otherPub);
    const r = await stella('ouk', 'quarantine', 'release', wrongKeyId, '--reason', 'publisher key added after the rotation');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'activated 2026-11-22\n');
    assert.equal((await getImport(fx.pool, wrongKeyId))?.state, 'active');
    assert.ok(!(await objects('quarantine/')).some((k) => k.includes('2026-11-22')), 'its quarantine copies are gone');
    const back = await objects();
    for (const ext of ['', '.sig', '.sigs.json', '.sigstore.json']) assert.ok(back.includes(`stella-ouk-2026-11-22.tar.gz${ext}`), `${ext} back beside the kit: ${back.join(', ')}`);
    const list = JSON.parse((await stella('ouk', 'quarantine', 'list', '--json')).stdout) as Listed[];
    assert.deepEqual(list.map((x) => x.importId), [tamperedId]);
  });

  test('rm needs --reason; with it the kit is deleted, the record says removed, and the audit trail has both', async () => {
    const no = await stella('ouk', 'quarantine', 'rm', tamperedId);
    assert.equal(no.code, EXIT_CODES.REASON_REQUIRED, no.stderr);
    const blank = await stella('ouk', 'quarantine', 'rm', tamperedId, '--reason', '   ');
    assert.equal(blank.code, EXIT_CODES.REASON_REQUIRED, blank.stderr);
    const r = await stella('ouk', 'quarantine', 'rm', tamperedId, '--reason', 'tampered copy from a USB stick');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await objects('quarantine/'), []);
    assert.equal((await getImport(fx.pool, tamperedId))?.state, 'removed');
    const again = await stella('ouk', 'quarantine', 'show', tamperedId);
    assert.equal(again.code, EXIT_CODES.QUARANTINE_NOT_FOUND, again.stderr);
    const audit = JSON.parse((await stella('ouk', 'audit', '--json')).stdout) as Array<{ action: string; target: string; reason: string | null; outcome: string; actor: string }>;
    const rows = audit.map((a) => `${a.action} ${a.target} ${a.outcome} ${a.reason}`);
    assert.ok(rows.includes(`quarantine.rm ${tamperedId} ok tampered copy from a USB stick`), rows.join('\n'));
    assert.ok(rows.includes(`quarantine.release ${wrongKeyId} ok publisher key added after the rotation`), rows.join('\n'));
    assert.ok(rows.some((x) => x.startsWith(`quarantine.release ${wrongKeyId} KEY_NOT_TRUSTED`) || x.startsWith(`quarantine.release ${wrongKeyId} SIGNATURE_MISMATCH`)), rows.join('\n'));
    assert.ok(audit.every((a) => a.actor.length > 0));
  });

  test('a crashed move is finished by the reconciler; a replay (the original put back) only deletes the leftover', async () => {
    // Refused by the verify stage run directly: the record says failed, nothing was moved (a worker that died mid-move).
    const b = await makeBundle(fx, 'stella-ouk-2026-11-23.tar.gz', { version: '2026-11-23', advisories: 5 });
    const buf = fs.readFileSync(b.path);
    buf[200] ^= 0x01;
    fs.writeFileSync(b.path, buf);
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-23.tar.gz');
    await registerImport(fx, p);
    await fx.pool.query(`UPDATE ouk_meta.imports SET state = 'failed', error_code = 'SIGNATURE_MISMATCH', error = 'refused', flow_added_at = now() WHERE id = $1`, [p.importId]);
    const first = await reconcileOnce(reconcilerDeps());
    assert.deepEqual(first.quarantined, [p.importId]);
    const rec = await getImport(fx.pool, p.importId);
    assert.equal(rec?.state, 'quarantined');
    assert.ok(!(await objects()).includes('stella-ouk-2026-11-23.tar.gz'));
    const copies = await objects('quarantine/');
    // The original is back (a crash between the record and the delete): the next pass deletes it, the copies stay as they were.
    await putFile(fx, b.path, 'stella-ouk-2026-11-23.tar.gz');
    const second = await reconcileOnce(reconcilerDeps());
    assert.deepEqual(second.quarantined, [p.importId]);
    assert.deepEqual(second.ingested, []);
    assert.ok(!(await objects()).includes('stella-ouk-2026-11-23.tar.gz'));
    assert.deepEqual(await objects('quarantine/'), copies);
    assert.equal((await getImport(fx.pool, p.importId))?.quarantinedAt?.getTime(), rec?.quarantinedAt?.getTime(), 'recorded once');
    const third = await reconcileOnce(reconcilerDeps());
    assert.deepEqual(third.quarantined, []);
  });

  test('a validly signed kit whose member lies is quarantined at unpack; release runs it again from there and it is quarantined again', async () => {
    const src = await makeBundle(fx, 'liar-src.tar.gz', { version: '2026-11-25', advisories: 8 }, false);
    const members = new Map<string, Buffer>();
    await readBundle(fs.createReadStream(src.path), {
      async onMember(m, st) {
        const chunks: Buffer[] = [];
        for await (const c of st) chunks.push(c as Buffer);
        members.set(m.path, Buffer.concat(chunks));
      },
    });
    const aliases = Buffer.from(members.get('db/aliases.tsv')!);
    aliases[0] = 'X'.charCodeAt(0);
    members.set('db/aliases.tsv', aliases);
    const out = path.join(fx.dir, 'stella-ouk-2026-11-25.tar.gz');
    await writeBundle(fs.createWriteStream(out), src.manifest, [...members].map(([p, buf]) => ({ path: p, size: buf.length, open: () => Readable.from([buf]) })));
    await writeSignatureFiles(out, fx.privateKey);
    const r = await stella('ouk', 'import', out);
    assert.equal(r.code, EXIT_CODES.MEMBER_CHECKSUM_MISMATCH, r.stderr);
    const list = JSON.parse((await stella('ouk', 'quarantine', 'list', '--json')).stdout) as Listed[];
    const liar = list.find((x) => x.key === 'stella-ouk-2026-11-25.tar.gz')!;
    assert.equal(liar.code, 'MEMBER_CHECKSUM_MISMATCH');
    assert.equal(liar.version, '2026-11-25', 'named by the version its signed manifest gives');
    const again = await stella('ouk', 'quarantine', 'release', liar.importId, '--timeout', '60');
    assert.equal(again.code, EXIT_CODES.MEMBER_CHECKSUM_MISMATCH, again.stderr);
    const rec = await getImport(fx.pool, liar.importId);
    assert.equal(rec?.state, 'quarantined');
    assert.equal(rec?.stages.verify?.state, 'done', 'the signature was fine: verify was not run again');
    assert.ok(!(await objects()).includes('stella-ouk-2026-11-25.tar.gz'));
  });

  test('a store outage is a passing fault: retried, never quarantined', async () => {
    const b = await makeBundle(fx, 'stella-ouk-2026-11-24.tar.gz', { version: '2026-11-24', advisories: 5 });
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-24.tar.gz');
    await registerImport(fx, p);
    await fx.pool.query('UPDATE ouk_meta.imports SET flow_added_at = now() WHERE id = $1', [p.importId]); // as ingest does
    const deadStore = createStore({ ...fx.s3.storeConfig, port: await freePort() });
    const run = stageProcessor('verify', {
      store: deadStore,
      pool: fx.pool,
      config: { bucket: fx.s3.bucket, trustedKeys: [fx.publicKey] },
      trustedKeys: () => loadTrustedKeys([fx.publicKey]),
      logger: fx.logger,
      registry: null,
      now: () => new Date(),
    });
    // The last attempt: the failure is final, and still not a quarantine.
    const job = { id: `${p.importId}-verify`, data: { importId: p.importId, bucket: p.bucket, key: p.key, etag: p.etag } satisfies StagePayload, attemptsMade: 1, opts: { attempts: 2 }, updateProgress: async () => undefined } as unknown as Job<StagePayload>;
    await assert.rejects(run(job), /STORE_UNAVAILABLE/);
    const rec = await getImport(fx.pool, p.importId);
    assert.equal(rec?.state, 'failed');
    assert.equal(rec?.errorCode, 'STORE_UNAVAILABLE');
    const pass = await reconcileOnce(reconcilerDeps());
    assert.deepEqual(pass.quarantined, []);
    assert.ok((await objects()).includes('stella-ouk-2026-11-24.tar.gz'), 'the kit stays where it is');
    assert.ok(!(await objects('quarantine/')).some((k) => k.includes('2026-11-24')));
    // The store is back: `stella ouk retry` imports it.
    const r = await stella('ouk', 'retry', p.importId);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await getImport(fx.pool, p.importId))?.state, 'active');
  });

  test('a delta on a wrong base (the active version, another DB) is quarantined; one whose base is not active yet is not', async () => {
    const wrong = await makeBundle(fx, 'stella-ouk-2026-11-26.tar.gz', { version: '2026-11-26', advisories: 0, seed: 3, delta: { base: { version: '2026-11-24', advisories: 5, seed: 9 }, changed: [1], added: 1, removed: [] } });
    const r = await stella('ouk', 'import', wrong.path);
    assert.equal(r.code, EXIT_CODES.DELTA_BASE_MISMATCH, r.stderr);
    assert.match(r.stderr, /quarantined as quarantine\/\d{4}-\d{2}-\d{2}\/stella-ouk-2026-11-26\.tar\.gz/);
    const ahead = await makeBundle(fx, 'stella-ouk-2026-12-02.tar.gz', { version: '2026-12-02', advisories: 0, seed: 3, delta: { base: { version: '2026-12-01', advisories: 5, seed: 1 }, changed: [1], added: 1, removed: [] } });
    const r2 = await stella('ouk', 'import', ahead.path);
    assert.equal(r2.code, EXIT_CODES.DELTA_BASE_MISMATCH, r2.stderr);
    assert.doesNotMatch(r2.stderr, /quarantined/);
    const status = JSON.parse((await stella('ouk', 'status', '--json')).stdout) as { imports: Array<{ key: string; state: string }> };
    assert.equal(status.imports.find((i) => i.key === 'stella-ouk-2026-12-02.tar.gz')?.state, 'failed', 'it resumes once its base is active');
    assert.ok((await objects()).includes('stella-ouk-2026-12-02.tar.gz'));
  });

  test('ouk_quarantined_total{code} counts every kit ever quarantined, from PostgreSQL (a release does not lower it)', async () => {
    const undo = setScrapeSources({ quarantine: quarantineFromPostgres(fx.pool) });
    try {
      const text = await registry.metrics();
      const counts = Object.fromEntries([...text.matchAll(/^ouk_quarantined_total\{code="([A-Z_]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
      assert.equal(counts.MEMBER_CHECKSUM_MISMATCH, 1, text);
      // the tampered kit, the crashed move's kit, and the wrong-key kit (released since) — whichever code its key gave
      assert.equal(counts.DELTA_BASE_MISMATCH, 1, text);
      assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 5, JSON.stringify(counts));
      assert.ok((counts.SIGNATURE_MISMATCH ?? 0) >= 2, JSON.stringify(counts));
    } finally {
      undo();
    }
  });
});
