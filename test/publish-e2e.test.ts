/**
 * The publisher's end to end, with injected clocks on the publishing side: a
 * loopback upstream (GitHub's advisory database as a real git repository,
 * CISA's KEV over HTTP; test/helpers) → `syncFeeds` → `publish` (the
 * functions `stella feeds sync` and `stella publish` run, each given the
 * night's clock) → the mirror directory served over loopback HTTP → a site's
 * `stella ouk mirror pull` (the real CLI, air-gapped, trusting the kit key)
 * → the kit active → OWASP Juice Shop's stored SBOM re-scanned. The next
 * night the upstream re-rates a semver advisory Juice Shop is affected by
 * (HIGH → CRITICAL); the night's delta carries it, its release notes list it
 * as modified, the site pulls the delta and `stella sbom diff` shows the
 * finding changed.
 *
 * The nights are yesterday and today by this process's clock, so the kits
 * are valid on the site's (real) clock whatever the date.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readStatus } from '../functions/sboms/report.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { syncSettings } from '../lib/config.ts';
import { publish, type PublishResult, type ReleaseNotes } from '../publisher/publish/index.ts';
import { syncFeeds } from '../publisher/sync/index.ts';
import { createRedis } from '../queue/connection.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { storedSbomScanner } from '../scan/stored.ts';
import { runStella, sharedDir, testRedisPrefix, tmpDir, type TestRedisPrefix } from './helpers/services.ts';
import { Upstream } from './helpers/upstream.ts';
import { GhsaRepo, sharedGhsa } from './helpers/upstream-git.ts';
import { fastSettings, fixtureConfig, fixtureEnv, FAST_RETRIES, pipelineFixture, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const JUICE = path.join(sharedDir, 'sboms', 'juice-shop-v11.1.2-bom.json');
/** lodash, moment and semver advisories Juice Shop 11.1.2 is affected by (as in sbom-rescan.test.ts). */
const AFFECTING = ['GHSA-29mw-wpgm-hmr9', 'GHSA-446m-mv8f-q348', 'GHSA-c2qf-rxjj-qqgw'];
const RERATED = 'GHSA-c2qf-rxjj-qqgw';
const DAY = 86_400_000;
const settings = fastSettings({ OUK_RESCAN_BACKOFF_MS: '100' });

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
let world: Upstream;
let repo: GhsaRepo;
let server: http.Server;
let mirrorUrl: string;
const work = tmpDir('publish-e2e');
const feeds = path.join(work, 'feeds');
const mirror = path.join(work, 'mirror');
const served: string[] = [];
const nights = { one: new Date(Date.now() - DAY), two: new Date() };
const published: { one?: PublishResult; two?: PublishResult } = {};

function stella(args: string[]): ReturnType<typeof runStella> {
  return runStella(args, {
    cwd: work,
    env: fixtureEnv(fx, redis, { ...FAST_RETRIES, OUK_TRUSTED_KEYS: fx.publicKey, OUK_MIRROR_URL: mirrorUrl, STELLA_AIRGAP: 'true', STELLA_QUOTA_PREFIX: `${redis.prefix}-quota` }),
  });
}

/** One night on the publishing side: sync the upstreams, then publish, both on the night's clock. */
async function night(now: Date): Promise<PublishResult> {
  let clock = now.getTime();
  const at = () => new Date(clock);
  world.now = at;
  const sync = await syncFeeds({
    out: feeds,
    sources: ['ghsa', 'kev'],
    settings: syncSettings({ ...world.env(), GHSA_GIT_URL: repo.url, STELLA_SYNC_BACKOFF_MS: '5', STELLA_SYNC_ATTEMPTS: '3' }),
    now: at,
    clock: { now: () => clock, sleep: async (ms) => void (clock += ms) },
    childEnv: process.env,
  });
  assert.ok(sync.ok, JSON.stringify(sync.reports.map((r) => r.error)));
  return publish({ feedsDir: feeds, keyPaths: [fx.privateKey], mirror, settings: { fullEveryDays: 7, keepDays: 30, expiresDays: 45 }, now, airgap: false, onWarning: () => undefined });
}

async function rescansDone(version: string): Promise<void> {
  await waitFor(`the re-scans of ${version}`, async () => {
    const s = await readStatus(fx.pool);
    return s.sboms.length > 0 && s.sboms.every((x) => !x.pending && x.latest?.dbVersion === version);
  }, 60_000);
}

before(async () => {
  fx = await pipelineFixture('publish-e2e');
  redis = testRedisPrefix('publish-e2e');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  workers = startWorkers(fixtureConfig(fx, redis), { pool: fx.pool, store: fx.s3.store, settings, logger: fx.logger, scanner: storedSbomScanner(fx.pool) });
  world = await Upstream.start({ osvEcosystems: [] });
  const all = await sharedGhsa();
  const subset = [...all.filter((a) => AFFECTING.includes(a.id)), ...all.filter((a) => !AFFECTING.includes(a.id)).slice(0, 40)];
  assert.equal(subset.length, 43, 'the three advisories are among the shared records');
  repo = await GhsaRepo.create('publish-e2e', subset);
  fs.mkdirSync(mirror, { recursive: true });
  server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://mirror').pathname);
    served.push(rel);
    const file = path.join(mirror, rel);
    if (!file.startsWith(mirror + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(fs.statSync(file).size) });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  mirrorUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
});

after(async () => {
  await workers?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await new Promise((r) => server?.close(r));
  await world?.close();
  await redis?.cleanup();
  await fx?.close();
});

describe('upstream → sync → publish → mirror pull → active → SBOM re-scan diff', () => {
  test('night one: a full kit from the synced feeds, pulled by the site, its stored SBOM scanned', async () => {
    const add = await stella(['sbom', 'add', JUICE, '--name', 'juice-shop']);
    assert.equal(add.code, 0, add.stderr);
    const r = (published.one = await night(nights.one));
    assert.equal(r.status, 'published');
    assert.deepEqual(r.kits.map((k) => k.entry.kind), ['full']);
    const pull = await stella(['ouk', 'mirror', 'pull']);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, new RegExp(`activated ${r.version} \\(full`));
    assert.ok(served.includes('/index.json') && served.includes(`/${r.kits[0]!.entry.file}`), 'the site fetched the index and the kit over HTTP');
    assert.equal((await readActivePointer(fx.pool)).activeVersion, r.version);
    await rescansDone(r.version);
    const diff = JSON.parse((await stella(['sbom', 'diff', 'juice-shop', '--json'])).stdout) as { state: string };
    assert.equal(diff.state, 'first-scan');
  });

  test('night two: the upstream re-rates an advisory; the delta carries it, its notes list it, the site pulls it and the diff shows it', async () => {
    const adv = (await sharedGhsa()).find((a) => a.id === RERATED)!;
    const rec = JSON.parse(await repo.read(adv.path)) as Record<string, unknown> & { database_specific: Record<string, unknown> };
    rec.database_specific.severity = 'CRITICAL';
    rec.severity = [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }];
    rec.modified = new Date(nights.two.getTime() - 3_600_000).toISOString();
    await repo.write(adv.path, JSON.stringify(rec, null, 2));
    await repo.commit(`${RERATED}: CRITICAL`);

    const r = (published.two = await night(nights.two));
    assert.equal(r.status, 'published');
    const delta = r.kits.find((k) => k.entry.kind === 'delta');
    assert.ok(delta, 'a delta on night one');
    assert.equal(delta.entry.base?.version, published.one!.version);
    const notes = JSON.parse(fs.readFileSync(delta.notes.json, 'utf8')) as ReleaseNotes;
    assert.equal(notes.changes.modified.count, 1);
    assert.deepEqual([notes.changes.added.count, notes.changes.withdrawn.count], [0, 0]);
    const rerated = notes.changes.modified.ids[0]!;
    assert.ok([RERATED, ...((rec.aliases as string[]) ?? [])].includes(rerated), `the modified advisory ${rerated} is ${RERATED}`);

    const pull = await stella(['ouk', 'mirror', 'pull']);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /the chain of deltas from the active DB/);
    assert.match(pull.stdout, new RegExp(`activated ${r.version} \\(delta`));
    await rescansDone(r.version);
    const out = await stella(['sbom', 'diff', 'juice-shop', '--json']);
    assert.equal(out.code, 0, out.stderr);
    const d = JSON.parse(out.stdout) as { state: string; from: string; to: string; added: unknown[]; removed: unknown[]; changed: { finding: { package: string; advisoryId: string; aliases: string[] }; before: { severity: string }; after: { severity: string } }[] };
    assert.equal(d.state, 'diff');
    assert.deepEqual([d.from, d.to], [published.one!.version, r.version]);
    assert.deepEqual([d.added.length, d.removed.length], [0, 0]);
    assert.ok(d.changed.length >= 1);
    assert.deepEqual([...new Set(d.changed.map((c) => `${c.finding.package} ${c.before.severity}→${c.after.severity}`))], ['semver HIGH→CRITICAL']);
    assert.ok(d.changed.every((c) => [c.finding.advisoryId, ...c.finding.aliases].includes(RERATED)));
  });
});
