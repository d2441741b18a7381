/**
 * `stella ouk mirror pull` when someone else retried a
 * delta first. The mirror offers a full kit and a delta on it; the site had
 * refused the delta (DELTA_BASE_MISMATCH: it arrived before its base), so the
 * round's plan is "pull the full kit, then retry the delta". While the round
 * waits for the full kit to activate, the delta is retried by someone else
 * (the reconciler does so once the base is active; here `stella ouk retry`
 * while the base is held at its switch, so the order is certain, not timed).
 * The round's own retry then gets NOTHING_TO_RETRY: the delta is already on
 * its way, which is success — the round waits for it and reports both kits
 * activated (exit 0), instead of failing with NOTHING_TO_RETRY (35).
 *
 * Real processes: a worker, the `stella` CLI (import, retry, mirror pull), a
 * loopback node:http mirror, this file's own database, Redis prefix, s3rver.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { indexEntryFor, MIRROR_INDEX_FORMAT, serializeMirrorIndex } from '../bundle/mirror-index.ts';
import { getImport } from '../infra/import-records/index.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import type { SyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { startService, type ServiceProcess } from './helpers/processes.ts';
import { runStella, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';
import { FAST_RETRIES, fixtureEnv, makeBundle, pipelineFixture, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const ADVISORIES = 300;
const BASE = '2026-12-20';
const DELTA = '2026-12-20.1';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let worker: ServiceProcess;
let server: http.Server;
let mirrorUrl = '';
let env: NodeJS.ProcessEnv;
const kits: { base?: SyntheticBundle; delta?: SyntheticBundle } = {};

before(async () => {
  fx = await pipelineFixture('mirror-retry');
  redis = testRedisPrefix('mirror-retry');
  kits.base = await makeBundle(fx, `stella-ouk-${BASE}.tar.gz`, { version: BASE, advisories: ADVISORIES, seed: 5 });
  kits.delta = await makeBundle(fx, `stella-ouk-${DELTA}.tar.gz`, {
    version: DELTA,
    advisories: 0,
    seed: 105,
    delta: { base: { version: BASE, advisories: ADVISORIES, seed: 5 }, changed: [1, 2, 40], added: 3, removed: [7] },
  });
  const index = serializeMirrorIndex({
    formatVersion: MIRROR_INDEX_FORMAT,
    kits: [kits.base, kits.delta].map((k) => indexEntryFor(path.basename(k.path), k.manifest, k.sha256, k.size)),
  });
  // The mirror: index.json, and each kit with its .sig from the fixture's directory.
  server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    if (name === 'index.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(index);
      return;
    }
    const file = path.join(fx.dir, path.basename(name));
    if (!/^stella-ouk-[0-9.-]+\.tar\.gz(\.sig)?$/.test(name) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': String(fs.statSync(file).size) });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mirrorUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
  env = fixtureEnv(fx, redis, { ...FAST_RETRIES, OUK_TRUSTED_KEYS: fx.publicKey, OUK_RECONCILE_SECONDS: '1', LOG_LEVEL: 'info' });
  // The worker pulls nothing itself (no OUK_MIRROR_URL): the round is the CLI's.
  worker = startService('worker', env, fx.dir);
});

after(async () => {
  await worker?.stop();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await redis?.cleanup();
  await fx?.close();
});

function stella(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: { ...env, LOG_LEVEL: 'warn', ...extra } });
}

async function importOfVersion(version: string): Promise<string | null> {
  return (await fx.pool.query<{ id: string }>('SELECT id FROM ouk_meta.imports WHERE version = $1 ORDER BY created_at DESC LIMIT 1', [version])).rows[0]?.id ?? null;
}

describe('stella ouk mirror pull, the delta retried by someone else first', () => {
  test('NOTHING_TO_RETRY for the round\'s own retry is success: the round waits for the delta and both kits activate', async () => {
    // The delta arrived first (imported by hand before its base): refused, waiting for a retry.
    const refused = await stella(['ouk', 'import', kits.delta!.path]);
    assert.equal(refused.code, EXIT_CODES.DELTA_BASE_MISMATCH, refused.stderr);
    const deltaId = (await importOfVersion(DELTA))!;
    assert.ok(deltaId);
    const dry = await stella(['ouk', 'mirror', 'pull', '--dry-run'], { OUK_MIRROR_URL: mirrorUrl });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /1\. pull .*stella-ouk-2026-12-20\.tar\.gz/);
    assert.match(dry.stdout, new RegExp(`2\\. retry .*stella-ouk-2026-12-20\\.1\\.tar\\.gz .*import ${deltaId} was refused \\(DELTA_BASE_MISMATCH\\)`));

    // Hold the base at its switch: activate waits for the state row lock.
    const holder = new pg.Client({ connectionString: fx.db.url });
    await holder.connect();
    let pull: Promise<CliRun> | undefined;
    let other: Promise<CliRun> | undefined;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM ouk_meta.active_db FOR UPDATE');
      pull = stella(['ouk', 'mirror', 'pull'], { OUK_MIRROR_URL: mirrorUrl, OUK_MIRROR_WAIT_SECONDS: '120' });
      const baseId = await waitFor('the pulled base to reach its switch', async () => {
        const id = await importOfVersion(BASE);
        return id && (await getImport(fx.pool, id))?.state === 'activating' ? id : null;
      }, 60_000, 100).catch(async (e: Error) => {
        const rows = (await fx.pool.query('SELECT id, version, state, error_code FROM ouk_meta.imports')).rows;
        throw new Error(`${e.message}\n${JSON.stringify(rows)}\n${worker.log()}`);
      });
      // Someone else retries the delta first (as the reconciler does once the base is active).
      // (`stella ouk retry` follows the import until it is active: it ends once the base is released.)
      other = stella(['ouk', 'retry', deltaId]);
      await waitFor('the retried delta to wait for its base', async () => (await getImport(fx.pool, deltaId))?.stages.verify?.state === 'waiting', 60_000, 100);
      assert.notEqual(baseId, deltaId);
      await holder.query('COMMIT');
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    const retried = await other!;
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /activated 2026-12-20\.1/);
    const r = await pull!;
    assert.equal(r.code, 0, `mirror pull: ${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /activated 2026-12-20 \(full, stella-ouk-2026-12-20\.tar\.gz/);
    assert.match(r.stdout, new RegExp(`activated 2026-12-20\\.1 \\(delta, stella-ouk-2026-12-20\\.1\\.tar\\.gz, import ${deltaId}\\)`));
    assert.match(r.stdout, /active 2026-12-20\.1: up to date with the mirror/);
    assert.doesNotMatch(r.stderr, /NOTHING_TO_RETRY/);
    const activations = (await fx.pool.query<{ version: string }>(`SELECT version FROM ouk_meta.activations WHERE action = 'activate' ORDER BY seq`)).rows.map((x) => x.version);
    assert.deepEqual(activations, [BASE, DELTA], 'each once, the base first');
  });
});
