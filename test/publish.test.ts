/**
 * `stella publish` with injected clocks, over a small
 * subset of ../shared/feeds (60 GHSA records): the first night publishes a
 * full kit with its release notes and index.json; the next night a delta
 * whose notes list the advisory added, the one modified and the one
 * withdrawn; a second run the same night with the same feeds publishes
 * nothing; the roll-up publishes a full kit beside the delta once the newest
 * full kit is --full-every old; pruning drops what is past --keep-days while
 * every kept version stays reachable from a kept full kit; --torrent's file
 * is checked with bencode (web seed, pieces, info hash); the lock, a clock
 * behind the mirror, a version already taken and STELLA_AIRGAP=true are
 * refused (the last two also through the real CLI, with their exit codes).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import bencode from 'bencode';
import { parseMirrorIndex, type MirrorIndex } from '../bundle/mirror-index.ts';
import { EXIT_CODES, isOukError } from '../lib/errors.ts';
import { planPrune } from '../publisher/publish/prune.ts';
import { publish, type PublishOptions, type PublishResult, type ReleaseNotes } from '../publisher/publish/index.ts';
import { runNightly } from '../publisher/nightly.ts';
import { startPublisherWorker } from '../publisher/worker.ts';
import { syncSettings } from '../lib/config.ts';
import { generateKeyPair } from '../signing/index.ts';
import { editRecord, FEEDS, materialise, shared, type Snapshot } from './helpers/feed-snapshots.ts';
import { childBaseEnv, freePort, repoRoot, runStella, testRedisPrefix, tmpDir } from './helpers/services.ts';
import { waitFor } from './pipeline-fixtures.ts';

/** Current GHSA records (neither withdrawn nor saying so in words): each change the test makes is then the one counted. */
const ghsa = fs
  .readdirSync(path.join(FEEDS, 'ghsa'))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .slice(0, 200)
  .filter((f) => !/withdraw/i.test(fs.readFileSync(path.join(FEEDS, 'ghsa', f), 'utf8')));
const work = tmpDir('publish');
const mirror = path.join(work, 'mirror');
const key = path.join(work, 'cosign.key');
const night = (day: string): Date => new Date(`${day}T02:00:00Z`);
const SETTINGS = { fullEveryDays: 3, keepDays: 2, expiresDays: 10 };

let feedsN = 0;
async function feedsOf(s: Snapshot): Promise<string> {
  const dir = path.join(work, `feeds-${++feedsN}`);
  await materialise(s, dir);
  return dir;
}

function options(feedsDir: string, now: Date, over: Partial<PublishOptions> = {}): PublishOptions {
  return { feedsDir, keyPaths: [key], mirror, settings: SETTINGS, now, airgap: false, onWarning: () => undefined, ...over };
}

function index(): MirrorIndex {
  return parseMirrorIndex(fs.readFileSync(path.join(mirror, 'index.json')));
}

function notesOf(file: string): ReleaseNotes {
  return JSON.parse(fs.readFileSync(path.join(mirror, file.replace(/\.tar\.gz$/, '.json')), 'utf8')) as ReleaseNotes;
}

/** The ids a GHSA record goes by (its advisory may be keyed by one of its aliases). */
function idsOf(file: string): string[] {
  const r = JSON.parse(fs.readFileSync(path.join(FEEDS, 'ghsa', file), 'utf8')) as { id: string; aliases?: string[] };
  return [r.id, ...(r.aliases ?? [])];
}

const s0: Snapshot = new Map();
let s1: Snapshot;
let feeds0: string;
let feeds1: string;
const results: Record<string, PublishResult> = {};

before(async () => {
  const kp = await generateKeyPair();
  fs.writeFileSync(key, kp.privateKeyPem, { mode: 0o600 });
  for (const f of ghsa.slice(0, 60)) s0.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  s1 = new Map(s0);
  s1.set(`ghsa/${ghsa[60]}`, shared(`ghsa/${ghsa[60]}`)); // added
  await editRecord(s1, `ghsa/${ghsa[0]}`, (r) => {
    r.summary = `${String(r.summary ?? '')} (revised)`;
    r.modified = '2026-03-01T12:00:00Z';
  });
  await editRecord(s1, `ghsa/${ghsa[1]}`, (r) => {
    r.withdrawn = '2026-03-01T12:00:00Z';
  });
  feeds0 = await feedsOf(s0);
  feeds1 = await feedsOf(s1);
});

describe('a nightly chain', () => {
  test('the first night: a full kit, its release notes and index.json', async () => {
    const r = (results.n1 = await publish(options(feeds0, night('2026-03-01'), { torrent: { publicUrl: 'http://mirror.example/stella/' } })));
    assert.equal(r.status, 'published');
    assert.equal(r.version, '2026-03-01');
    assert.deepEqual(r.kits.map((k) => k.entry.file), ['stella-ouk-2026-03-01-full.tar.gz']);
    const idx = index();
    assert.deepEqual(idx.kits.map((k) => `${k.kind} ${k.version}`), ['full 2026-03-01']);
    const file = idx.kits[0]!.file;
    for (const beside of ['.sig', '.sigstore.json', '.sigs.json', '.intoto.json', '.torrent']) assert.ok(fs.existsSync(path.join(mirror, file + beside)), `${file}${beside} is written`);
    const notes = notesOf(file);
    const bytes = fs.readFileSync(path.join(mirror, file));
    assert.equal(notes.sha256, createHash('sha256').update(bytes).digest('hex'), "the notes' sha256 is the tarball's");
    assert.equal(notes.size, bytes.length);
    assert.equal(notes.kind, 'full');
    assert.equal(notes.base, null);
    assert.equal(notes.previous, null);
    assert.equal(notes.changes.added.count, notes.advisories, 'every advisory is new in the first kit');
    assert.ok(notes.feeds.some((f) => f.name === 'ghsa' && f.records === 60 && f.snapshot), 'the ghsa feed with its snapshot');
    const md = fs.readFileSync(path.join(mirror, 'stella-ouk-2026-03-01-full.md'), 'utf8');
    assert.match(md, new RegExp(`sha256: \`${notes.sha256}\``));
    assert.match(md, new RegExp(`### Added: ${notes.advisories}`));
  });

  test('the torrent names the mirror as web seed and hashes the kit', () => {
    const file = 'stella-ouk-2026-03-01-full.tar.gz';
    const t = bencode.decode(fs.readFileSync(path.join(mirror, `${file}.torrent`))) as Record<string, unknown> & { info: Record<string, unknown> };
    const text = (v: unknown) => Buffer.from(v as Uint8Array).toString('utf8');
    assert.deepEqual((t['url-list'] as Uint8Array[]).map(text), [`http://mirror.example/stella/${file}`]);
    assert.equal(t.announce, undefined, 'no public tracker is named');
    assert.equal(text(t.info.name), file);
    const kit = fs.readFileSync(path.join(mirror, file));
    assert.equal(t.info.length, kit.length);
    const pieceLength = t.info['piece length'] as number;
    const pieces: Buffer[] = [];
    for (let at = 0; at < kit.length; at += pieceLength) pieces.push(createHash('sha1').update(kit.subarray(at, at + pieceLength)).digest());
    assert.deepEqual(Buffer.from(t.info.pieces as Uint8Array), Buffer.concat(pieces), 'the pieces are the kit’s');
    const infoHash = createHash('sha1').update(bencode.encode(t.info)).digest('hex');
    assert.match(infoHash, /^[0-9a-f]{40}$/);
    // The same kit gives the same torrent: its creation date is the kit's.
    assert.equal(t['creation date'], Date.parse('2026-03-01T00:00:00Z') / 1000);
  });

  test('the next night: a delta on it, with notes listing what was added, modified and withdrawn', async () => {
    const r = (results.n2 = await publish(options(feeds1, night('2026-03-02'))));
    assert.equal(r.status, 'published');
    assert.deepEqual(r.kits.map((k) => `${k.entry.kind} ${k.entry.file}`), ['delta stella-ouk-2026-03-02.tar.gz']);
    assert.equal(r.kits[0]!.entry.base?.version, '2026-03-01');
    assert.deepEqual(index().kits.map((k) => `${k.kind} ${k.version}`), ['full 2026-03-01', 'delta 2026-03-02']);
    assert.ok(fs.existsSync(path.join(mirror, '.publish/bases/stella-ouk-2026-03-02-full.tar.gz')), "the night's full DB is kept as the next delta's base");
    const n = notesOf('stella-ouk-2026-03-02.tar.gz');
    assert.equal(n.previous, '2026-03-01');
    assert.deepEqual([n.changes.added.count, n.changes.modified.count, n.changes.withdrawn.count], [1, 1, 1]);
    assert.ok(idsOf(ghsa[60]!).includes(n.changes.added.ids[0]!), `added ${n.changes.added.ids[0]} is ${ghsa[60]}`);
    assert.ok(idsOf(ghsa[0]!).includes(n.changes.modified.ids[0]!), `modified ${n.changes.modified.ids[0]} is ${ghsa[0]}`);
    assert.ok(idsOf(ghsa[1]!).includes(n.changes.withdrawn.ids[0]!), `withdrawn ${n.changes.withdrawn.ids[0]} is ${ghsa[1]}`);
    const md = fs.readFileSync(path.join(mirror, 'stella-ouk-2026-03-02.md'), 'utf8');
    assert.match(md, /### Withdrawn: 1/);
    assert.match(md, /on 2026-03-01/);
  });

  test('the same night again with the same feeds: nothing published, the chain as it was', async () => {
    const before = fs.readFileSync(path.join(mirror, 'index.json'), 'utf8');
    const r = await publish(options(feeds1, new Date('2026-03-02T09:00:00Z')));
    assert.equal(r.status, 'unchanged');
    assert.match(r.reasons.join(' '), /already has 2026-03-02 today with the same DB/);
    assert.equal(fs.readFileSync(path.join(mirror, 'index.json'), 'utf8'), before);
  });

  test('a version the mirror already has, or one older, is refused', async () => {
    await assert.rejects(publish(options(feeds1, night('2026-03-03'), { version: '2026-03-02' })), (e) => isOukError(e) && e.code === 'PUBLISH_VERSION_TAKEN');
  });

  test('nights 3 and 4: a delta, then the roll-up (a full kit beside the delta) once the full kit is --full-every old', async () => {
    const s2 = new Map(s1);
    s2.set(`ghsa/${ghsa[61]}`, shared(`ghsa/${ghsa[61]}`));
    const r3 = (results.n3 = await publish(options(await feedsOf(s2), night('2026-03-03'))));
    assert.deepEqual(r3.kits.map((k) => `${k.entry.kind} ${k.entry.version} on ${k.entry.base?.version}`), ['delta 2026-03-03 on 2026-03-02']);
    const s3 = new Map(s2);
    s3.set(`ghsa/${ghsa[62]}`, shared(`ghsa/${ghsa[62]}`));
    const r4 = (results.n4 = await publish(options(await feedsOf(s3), night('2026-03-04'))));
    assert.deepEqual(r4.kits.map((k) => `${k.entry.kind} ${k.entry.file}`), ['delta stella-ouk-2026-03-04.tar.gz', 'full stella-ouk-2026-03-04-full.tar.gz']);
    assert.match(r4.reasons.join(' '), /roll-up/);
    assert.equal(r4.kits[0]!.entry.dbDigest, r4.kits[1]!.entry.dbDigest, 'the delta and the full kit yield the same DB');
    assert.deepEqual(r4.pruned, [], 'every kit is still needed: the 03-03 delta chains back to the first full kit');
    assert.deepEqual(fs.readdirSync(path.join(mirror, '.publish/bases')), [], 'no private base: the full kit is published');
    assert.deepEqual(index().kits.map((k) => `${k.kind} ${k.version}`), ['full 2026-03-01', 'delta 2026-03-02', 'delta 2026-03-03', 'full 2026-03-04', 'delta 2026-03-04']);
  });

  test('night 5: pruning drops what is past --keep-days, every kept version reachable from a kept full kit', async () => {
    const s4 = new Map(s1);
    for (const i of [61, 62, 63]) s4.set(`ghsa/${ghsa[i]}`, shared(`ghsa/${ghsa[i]}`));
    const r5 = await publish(options(await feedsOf(s4), night('2026-03-05')));
    assert.deepEqual(r5.kits.map((k) => `${k.entry.kind} ${k.entry.version} on ${k.entry.base?.version}`), ['delta 2026-03-05 on 2026-03-04']);
    assert.deepEqual(r5.pruned.sort(), ['stella-ouk-2026-03-01-full.tar.gz', 'stella-ouk-2026-03-02.tar.gz', 'stella-ouk-2026-03-03.tar.gz']);
    assert.deepEqual(index().kits.map((k) => `${k.kind} ${k.version}`), ['full 2026-03-04', 'delta 2026-03-04', 'delta 2026-03-05']);
    for (const gone of ['stella-ouk-2026-03-01-full.tar.gz', 'stella-ouk-2026-03-01-full.tar.gz.sig', 'stella-ouk-2026-03-01-full.tar.gz.torrent', 'stella-ouk-2026-03-01-full.md', 'stella-ouk-2026-03-02.json', 'stella-ouk-2026-03-03.tar.gz.intoto.json']) {
      assert.ok(!fs.existsSync(path.join(mirror, gone)), `${gone} is removed`);
    }
    const listed = new Set(index().kits.map((k) => k.file));
    const kitsOnDisk = fs.readdirSync(mirror).filter((f) => f.endsWith('.tar.gz'));
    assert.deepEqual(kitsOnDisk.sort(), [...listed].sort(), 'the directory holds exactly the listed kits');
    assert.equal(notesOf('stella-ouk-2026-03-05.tar.gz').changes.added.count, 1, 'counted against the previous kit (03-04), not the base');
  });

  test('pruning keeps a chain back to a full kit when a kept delta needs it (pure)', () => {
    const e = (kind: 'full' | 'delta', version: string, base: string | null) => ({ file: `${version}-${kind}.tar.gz`, version, kind, base: base ? { version: base, dbDigest: 'd'.repeat(63) + base.slice(-1) } : null, dbDigest: 'd'.repeat(63) + version.slice(-1), sha256: 'a'.repeat(64), size: 1, created: '', expires: '' });
    const kits = [e('full', '2026-03-01', null), e('delta', '2026-03-02', '2026-03-01'), e('delta', '2026-03-03', '2026-03-02'), e('delta', '2026-03-09', '2026-03-03')];
    const p = planPrune(kits, night('2026-03-09'), 2);
    assert.deepEqual(p.drop, [], 'the 03-09 delta needs 03-03, 03-02 and the full kit of 03-01');
  });
});

describe('the CLI', () => {
  test('stella publish --json --notes-ids 2: the result as JSON, two ids listed of every added advisory counted', async () => {
    const m = path.join(work, 'cli-mirror');
    const r = await runStella(['publish', '--feeds', feeds0, '--key', key, '--mirror', m, '--version', '2026-03-01', '--notes-ids', '2', '--json'], { cwd: work, env: childBaseEnv() });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as PublishResult;
    assert.equal(out.status, 'published');
    assert.equal(out.kits[0]!.entry.file, 'stella-ouk-2026-03-01-full.tar.gz');
    const notes = JSON.parse(fs.readFileSync(out.kits[0]!.notes.json, 'utf8')) as ReleaseNotes;
    assert.equal(notes.changes.added.ids.length, 2);
    assert.ok(notes.changes.added.count > 50);
    assert.match(fs.readFileSync(out.kits[0]!.notes.md, 'utf8'), /… and \d+ more \(the first 2 are listed\)/);
  });
});

describe('refusals', () => {
  test('a lock held by a live process refuses (PUBLISH_LOCKED); a dead one is taken over', async () => {
    const lock = path.join(mirror, '.publish/lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), started: 'now' }));
    await assert.rejects(publish(options(feeds1, night('2026-03-06'))), (e) => isOukError(e) && e.code === 'PUBLISH_LOCKED' && /another publish \(process \d+/.test(e.message));
    const cli = await runStella(['publish', '--feeds', feeds1, '--key', key, '--mirror', mirror, '--version', '2026-03-06'], { cwd: work, env: childBaseEnv() });
    assert.equal(cli.code, EXIT_CODES.PUBLISH_LOCKED, cli.stderr);
    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
    fs.writeFileSync(lock, JSON.stringify({ pid: dead, host: hostname(), started: 'earlier' }));
    const r = await publish(options(feeds1, night('2026-03-06')));
    assert.equal(r.status, 'published');
    assert.match(r.tookOverLock ?? '', new RegExp(`process ${dead}`));
    assert.ok(!fs.existsSync(lock), 'the lock is released');
  });

  test("a host clock behind the mirror's newest kit is refused (PUBLISH_CLOCK_BEHIND), nothing written", async () => {
    const before = fs.readFileSync(path.join(mirror, 'index.json'), 'utf8');
    await assert.rejects(publish(options(feeds1, night('2026-03-04'))), (e) => isOukError(e) && e.code === 'PUBLISH_CLOCK_BEHIND' && /2026-03-06/.test(e.message));
    assert.equal(fs.readFileSync(path.join(mirror, 'index.json'), 'utf8'), before);
  });

  test('expiry shorter than keep-days + full-every is refused before anything is read', async () => {
    await assert.rejects(publish(options(feeds1, night('2026-03-07'), { settings: { fullEveryDays: 7, keepDays: 30, expiresDays: 31 } })), (e) => isOukError(e) && e.code === 'USAGE' && /--expires-days 38 or more/.test(e.message));
  });

  test('STELLA_AIRGAP=true: the CLI refuses (56) and writes nothing', async () => {
    const m = path.join(work, 'airgapped-mirror');
    const cli = await runStella(['publish', '--feeds', feeds1, '--key', key, '--mirror', m], { cwd: work, env: childBaseEnv({ STELLA_AIRGAP: 'true' }) });
    assert.equal(cli.code, EXIT_CODES.AIRGAP_VIOLATION, cli.stderr);
    assert.match(cli.stderr, /refuses to run with STELLA_AIRGAP=true/);
    assert.ok(!fs.existsSync(m), 'no mirror directory was made');
  });

  test('a key that cannot be read (13) or a feeds directory that is not there (41): refused before the mirror is touched', async () => {
    const m = path.join(work, 'untouched-mirror');
    await assert.rejects(publish(options(feeds1, night('2026-03-07'), { mirror: m, keyPaths: [path.join(work, 'missing.key')] })), (e) => isOukError(e) && e.code === 'KEY_INVALID');
    await assert.rejects(publish(options(path.join(work, 'no-feeds'), night('2026-03-07'), { mirror: m })), (e) => isOukError(e) && e.code === 'INPUT_NOT_FOUND');
    assert.ok(!fs.existsSync(m), 'no mirror directory was made');
  });
});


describe('the publisher worker (npm run publisher)', () => {
  test('its job scheduler runs sync-then-publish into the mirror; SIGTERM stops it cleanly', async () => {
    const redis = testRedisPrefix('publish-worker');
    const m = path.join(work, 'scheduled-mirror');
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/publisher-main.ts'], {
      cwd: repoRoot,
      env: childBaseEnv({
        REDIS_URL: redis.redisUrl,
        OUK_QUEUE_PREFIX: redis.prefix,
        OUK_PUBLISH_SCHEDULE: '2s',
        OUK_PUBLISH_FEEDS: feeds1,
        OUK_PUBLISH_MIRROR: m,
        OUK_PUBLISH_KEYS: key,
        OUK_PUBLISH_SOURCES: 'none',
        STELLA_STATE_DIR: path.join(work, 'state'),
        LOG_LEVEL: 'info',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const end = Date.now() + 60_000;
      while (!fs.existsSync(path.join(m, 'index.json'))) {
        if (Date.now() > end || child.exitCode !== null) assert.fail(`no kit was published by the scheduled job:\n${log}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const kits = parseMirrorIndex(fs.readFileSync(path.join(m, 'index.json'))).kits;
      assert.deepEqual(kits.map((k) => k.kind), ['full']);
      // The next periods find the same DB: nothing more is published the same day (a period after
      // midnight publishes the new day's delta).
      await waitFor('two more periods', async () => (log.match(/"msg":"nightly done"/g) ?? []).length >= 3, 30_000, 200);
      const later = parseMirrorIndex(fs.readFileSync(path.join(m, 'index.json'))).kits;
      assert.equal(new Set(later.map((k) => k.version.slice(0, 10))).size, later.filter((k) => k.kind === 'delta').length + 1, `one kit a day: ${later.map((k) => k.file).join(', ')}`);
      assert.match(log, /"status":"unchanged"/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, log);
    assert.match(log, /"msg":"stopped"/);
    await redis.cleanup();
  });

  test('refusals: no schedule (PUBLISH_NOT_CONFIGURED), air-gapped (AIRGAP_VIOLATION)', async () => {
    const run = (extra: NodeJS.ProcessEnv) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawn(process.execPath, ['--import', 'tsx', 'cli/publisher-main.ts'], { cwd: repoRoot, env: childBaseEnv({ STELLA_STATE_DIR: path.join(work, 'state'), OUK_PUBLISH_FEEDS: feeds1, OUK_PUBLISH_MIRROR: mirror, OUK_PUBLISH_KEYS: key, ...extra }) });
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.once('exit', (code) => resolve({ code, err }));
      });
    const none = await run({});
    assert.equal(none.code, EXIT_CODES.PUBLISH_NOT_CONFIGURED, none.err);
    assert.match(none.err, /OUK_PUBLISH_SCHEDULE is not set/);
    const bad = await run({ OUK_PUBLISH_SCHEDULE: 'nightly' });
    assert.equal(bad.code, EXIT_CODES.PUBLISH_NOT_CONFIGURED, bad.err);
    const airgapped = await run({ OUK_PUBLISH_SCHEDULE: '1d', STELLA_AIRGAP: 'true' });
    assert.equal(airgapped.code, EXIT_CODES.AIRGAP_VIOLATION, airgapped.err);
  });
});

describe('the publisher worker: one job at a time in the cluster, deadlines', () => {
  type Event = { kind: string; error?: Error };
  async function cluster(o: { workers: number; jobMs: number; deadlineMs: number; until(events: Event[]): boolean }): Promise<{ most: number; events: Event[]; scheduler: boolean }> {
    const redis = testRedisPrefix('publish-cluster');
    let running = 0;
    let most = 0;
    const events: Event[] = [];
    const run = async (): Promise<string> => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, o.jobMs));
      running--;
      return 'done';
    };
    const opts = { connection: { url: redis.redisUrl, maxRetriesPerRequest: null }, prefix: redis.prefix, schedule: { every: 100 }, deadlineMs: o.deadlineMs, run, onEvent: (e: Event) => events.push(e) };
    const workers = [];
    for (let i = 0; i < o.workers; i++) workers.push(await startPublisherWorker(opts));
    try {
      const end = Date.now() + 20_000;
      while (!o.until(events) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      return { most, events, scheduler: Boolean(await workers[0]!.queue.getJobScheduler('nightly')) };
    } finally {
      for (const w of workers) await w.close();
      await redis.cleanup();
    }
  }

  test('two workers on one scheduler whose period is shorter than a job never run two jobs at once', async () => {
    const r = await cluster({ workers: 2, jobMs: 400, deadlineMs: 30_000, until: (e) => e.filter((x) => x.kind === 'completed').length >= 4 });
    assert.ok(r.events.filter((e) => e.kind === 'completed').length >= 4, 'jobs ran');
    assert.equal(r.most, 1);
    assert.ok(r.scheduler, 'one scheduler, upserted by both');
  });

  test('a job past its deadline fails with PUBLISH_DEADLINE', async () => {
    const r = await cluster({ workers: 1, jobMs: 1500, deadlineMs: 300, until: (e) => e.some((x) => x.kind === 'failed') });
    const failed = r.events.find((e) => e.kind === 'failed');
    assert.ok(failed && isOukError(failed.error) && failed.error.code === 'PUBLISH_DEADLINE', `failed at its deadline: ${failed?.error?.message}`);
  });
});

describe('the nightly job (sync, then publish)', () => {
  test('a source that fails still lets the night publish; the job then fails with the sync’s code', async () => {
    const m = path.join(work, 'nightly-mirror');
    const feeds = path.join(work, 'nightly-feeds');
    await materialise(s0, feeds);
    const closed = await freePort();
    await assert.rejects(
      runNightly({
        sync: { out: feeds, sources: ['kev'], settings: syncSettings({ KEV_URL: `http://127.0.0.1:${closed}/kev.json`, STELLA_SYNC_ATTEMPTS: '1' }), childEnv: process.env },
        publish: { feedsDir: feeds, keyPaths: [key], mirror: m, settings: SETTINGS, airgap: false, onWarning: () => undefined },
        now: () => night('2026-03-01'),
      }),
      (e) => isOukError(e) && e.code === 'UPSTREAM_UNAVAILABLE' && /the publish ran on the feeds as they are: published 2026-03-01/.test(e.message),
    );
    assert.deepEqual(parseMirrorIndex(fs.readFileSync(path.join(m, 'index.json'))).kits.map((k) => k.file), ['stella-ouk-2026-03-01-full.tar.gz']);
  });
});
