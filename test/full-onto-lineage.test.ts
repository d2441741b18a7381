/**
 * A full kit onto a site that already holds its lineage: the load
 * stage compares the kit's per-advisory content digests with the active DB's
 * and stages only the difference, which activate applies as a delta.
 *
 * Real records (../shared/feeds, with KEV, EPSS and CSAF VEX from
 * ../shared/feeds-extra), built by the real builder into two independent full
 * kits: full0 (s0) and full1 (s1 = s0 with GHSA records added, changed,
 * withdrawn and removed, an NVD CVE's CPE configurations dropped, KEV entries
 * removed and changed, a newer EPSS day, a CSAF document gone).
 *
 *   site A (workers): full0 (loaded whole: nothing active), then full1 —
 *     loaded as its difference onto full0;
 *   site B (the stage functions): full1 alone, loaded whole.
 *
 * Every table of both active schemas (core and extra) is compared row for
 * row. A rollback on A gives back full0's DB exactly, and full1 applied again
 * reports its choice in the load's progress. A full kit of another lineage
 * (another generator) is loaded whole, and says why.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXTRA_TABLES } from '../bundle/extra-tables.ts';
import { TABLES } from '../bundle/tables.ts';
import type { BuildResult } from '../builder/build.ts';
import { Readable } from 'node:stream';
import { activate } from '../functions/activate.ts';
import { advisoryChanged, idIn, IdGate, rowFilter, type AdvisoryDiff } from '../functions/common/row-filter.ts';
import type { LoadResult } from '../functions/common/loaded.ts';
import { load } from '../functions/load.ts';
import { rollback } from '../functions/rollback.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { ident, type Pool } from '../infra/db.ts';
import { tableExists } from '../infra/db-schema.ts';
import { getImport, type ImportRecord } from '../infra/import-records/index.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject, recordImport } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { loadTrustedKeys } from '../signing/index.ts';
import { buildSnapshot, editRecord, FEEDS, shared, type Snapshot } from './helpers/feed-snapshots.ts';
import { sharedDir, testRedisPrefix, tmpDir, type TestRedisPrefix } from './helpers/services.ts';
import { fastSettings, fixtureConfig, makeBundle, pipelineFixture, putBundle, stageContext, type PipelineFixture, type TestContext } from './pipeline-fixtures.ts';

const V = ['2026-11-20', '2026-11-21'] as const;
const settings = fastSettings();
const EXTRA = path.join(sharedDir, 'feeds-extra');
const work = tmpDir('full-onto');

let a: PipelineFixture;
let b: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
let full0: BuildResult;
let full1: BuildResult;
let afterFull0: Dump;
/** Site B's DB right after full1's whole load. */
let full1Whole: Dump;

type Dump = Record<string, string[]>;

const extra = (rel: string): { link: string } => ({ link: path.join(EXTRA, rel) });

/** Every row of every core and extra table of `schema`, as sorted text per table ('-' for an extra table it lacks). */
async function dump(pool: Pool, schema: string): Promise<Dump> {
  const out: Dump = {};
  for (const t of [...TABLES, ...EXTRA_TABLES]) {
    if (!(await tableExists(pool, schema, t.name))) {
      out[t.name] = ['-'];
      continue;
    }
    const cols = t.columns.map((c) => ident(c.name)).join(', ');
    const r = await pool.query<{ row: string }>(`SELECT (${cols})::text AS row FROM ${ident(schema)}.${ident(t.name)}`);
    out[t.name] = r.rows.map((x) => x.row).sort();
  }
  return out;
}

async function activeDump(pool: Pool): Promise<Dump> {
  return dump(pool, (await readActivePointer(pool)).activeSchema!);
}

function assertSameRows(x: Dump, y: Dump, what: string): void {
  for (const t of [...TABLES, ...EXTRA_TABLES]) {
    assert.equal(x[t.name]!.length, y[t.name]!.length, `${what}: ${t.name} row count`);
    assert.deepEqual(x[t.name], y[t.name], `${what}: ${t.name} rows`);
  }
}

/** Puts the kit on site A and lets A's workers import it. */
async function importOnA(kit: { out: string }, key: string): Promise<ImportRecord> {
  const p = await putBundle(a, kit.out, key);
  await ingestObject({ pool: a.pool, queues, settings }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
  const end = Date.now() + 120_000;
  for (;;) {
    const r = await getImport(a.pool, p.importId);
    if (r && (r.state === 'active' || r.state === 'failed')) return r;
    if (Date.now() > end) assert.fail(`import of ${key} did not finish (state ${r?.state})`);
    await sleep(100);
  }
}

/** Puts the kit on `fx` and runs the stage functions on it with `ctx`. */
async function importDirect(fx: PipelineFixture, ctx: TestContext, file: string, key: string, flags: { allowDowngrade?: boolean } = {}): Promise<ImportRecord> {
  const p = await putBundle(fx, file, key);
  await recordImport(fx.pool, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size }, flags);
  for (const stage of [verify, unpack, load, activate]) await stage(p, ctx);
  return (await getImport(fx.pool, p.importId))!;
}

/** A stage context on `fx` that trusts the keys of both sites (the kits are signed with A's). */
function trustingBoth(fx: PipelineFixture): TestContext {
  const keys = [a.publicKey, b.publicKey];
  return stageContext(fx, { config: { bucket: fx.s3.bucket, trustedKeys: keys }, trustedKeys: () => loadTrustedKeys(keys) });
}

const loadResult = (r: ImportRecord): LoadResult => r.stages.load!.result as LoadResult;

before(async () => {
  a = await pipelineFixture('onto-a');
  b = await pipelineFixture('onto-b');
  redis = testRedisPrefix('full-onto');
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  workers = startWorkers(fixtureConfig(a, redis), { pool: a.pool, store: a.s3.store, settings, logger: a.logger });

  const ghsa = fs.readdirSync(path.join(FEEDS, 'ghsa')).filter((f) => f.endsWith('.json')).sort();
  const redhat = fs.readdirSync(path.join(EXTRA, 'csaf', 'redhat')).filter((f) => f.endsWith('.json')).sort();

  // s0: 400 GHSA records, the npm OSV records, one NVD page; KEV, two EPSS days, Red Hat's CSAF VEX.
  const s0: Snapshot = new Map();
  for (const f of ghsa.slice(0, 400)) s0.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  for (const f of fs.readdirSync(path.join(FEEDS, 'osv', 'npm')).sort()) s0.set(`osv/npm/${f}`, shared(`osv/npm/${f}`));
  s0.set('nvd/page-003.json', shared('nvd/page-003.json'));
  s0.set('kev/known_exploited_vulnerabilities.json', extra('kev/known_exploited_vulnerabilities.json'));
  for (const f of ['claircore-epss-2024-10-25.csv', 'vunnel-epss-2025-02-20.csv']) s0.set(`epss/${f}`, extra(`epss/subsets/${f}`));
  for (const f of redhat) s0.set(`csaf/redhat/${f}`, extra(`csaf/redhat/${f}`));

  // s1: 20 added, 10 changed, 5 withdrawn, 10 removed; an NVD CVE without its CPE configurations;
  // KEV: 3 entries gone, one changed; a newer EPSS day; one CSAF document gone.
  const s1: Snapshot = new Map(s0);
  for (const f of ghsa.slice(400, 420)) s1.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  for (const f of ghsa.slice(0, 10)) {
    await editRecord(s1, `ghsa/${f}`, (r) => {
      r.summary = `${String(r.summary ?? '')} (revised)`;
      r.modified = '2026-11-21T00:00:00Z';
    });
  }
  for (const f of ghsa.slice(10, 15)) await editRecord(s1, `ghsa/${f}`, (r) => void (r.withdrawn = '2026-11-21T00:00:00Z'));
  for (const f of ghsa.slice(20, 30)) s1.delete(`ghsa/${f}`);
  await editRecord(s1, 'nvd/page-003.json', (page) => {
    type Item = { cve: { id: string; lastModified: string; configurations?: unknown[] } };
    const item = (page.vulnerabilities as Item[]).find((v) => (v.cve.configurations ?? []).length > 0)!;
    item.cve.lastModified = '2026-11-21T04:00:00.000';
    delete item.cve.configurations;
  });
  await editRecord(s1, 'kev/known_exploited_vulnerabilities.json', (cat) => {
    const v = cat.vulnerabilities as Array<Record<string, unknown>>;
    v.splice(0, 3);
    v[0]!.dueDate = '2026-12-31';
  });
  s1.set('epss/epss_scores-2026-01-30.feeds-subset.csv', extra('epss/epss_scores-2026-01-30.feeds-subset.csv'));
  s1.delete(`csaf/redhat/${redhat.find((f) => f.startsWith('cve-'))!}`);

  full0 = await buildSnapshot(s0, { work, name: 'full0', version: V[0], keyPath: a.privateKey, out: path.join(work, 'full0.tar.gz') });
  full1 = await buildSnapshot(s1, { work, name: 'full1', version: V[1], keyPath: a.privateKey, out: path.join(work, 'full1.tar.gz') });
});

after(async () => {
  await workers?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await a?.close();
  await b?.close();
});

test('the two kits are full kits of the same generator, and carry KEV, EPSS and VEX members', () => {
  for (const k of [full0, full1]) {
    assert.equal(k.manifest.kind, 'full');
    const paths = k.manifest.members.map((m) => m.path);
    for (const t of ['kev', 'epss', 'vex']) assert.ok(paths.some((p) => p.startsWith(`db/${t}.tsv`)), `${k.manifest.bundleVersion} carries db/${t}.tsv`);
  }
  assert.equal(full0.manifest.generator, full1.manifest.generator);
});

test('a full kit with nothing active is loaded whole, and its record says so', async () => {
  const rec = await importOnA(full0, 'stella-ouk-2026-11-20.tar.gz');
  assert.equal(rec.state, 'active', `${rec.errorCode}: ${rec.error}`);
  assert.equal(loadResult(rec).mode, 'full: loaded whole');
  assert.equal(loadResult(rec).wholeBecause, 'no DB is active');
  afterFull0 = await activeDump(a.pool);
});

test('the next full kit of the lineage is applied as its difference; the DB is row for row the whole load of it', async () => {
  const schema0 = (await readActivePointer(a.pool)).activeSchema!;
  const rec = await importOnA(full1, 'stella-ouk-2026-11-21.tar.gz');
  assert.equal(rec.state, 'active', `${rec.errorCode}: ${rec.error}`);
  const loaded = loadResult(rec);
  assert.ok(loaded.onto, 'loaded as a difference');
  assert.equal(loaded.onto.version, V[0]);
  assert.ok(loaded.onto.added >= 1 && loaded.onto.changed >= 15 && loaded.onto.removed >= 1, JSON.stringify(loaded.onto));
  assert.equal(loaded.onto.advisories, full1.manifest.db.advisories);
  assert.equal(loaded.mode, `full: ${loaded.onto.changed + loaded.onto.added + loaded.onto.removed} changed of ${Math.max(full0.manifest.db.advisories, full1.manifest.db.advisories)}, applied onto ${V[0]}`);
  assert.equal((rec.stages.activate!.result as { appliedOnto?: string }).appliedOnto, V[0]);
  const pointer = await readActivePointer(a.pool);
  assert.equal(pointer.activeSchema, schema0, 'applied in place, as a delta is');
  assert.equal(pointer.activeVersion, V[1]);
  assert.equal(pointer.activeDigest, full1.manifest.db.digest);

  // Site B: the same kit, loaded whole.
  const recB = await importDirect(b, trustingBoth(b), full1.out, 'stella-ouk-2026-11-21.tar.gz');
  assert.equal(loadResult(recB).mode, 'full: loaded whole');
  full1Whole = await activeDump(b.pool);
  assertSameRows(await activeDump(a.pool), full1Whole, 'difference applied vs whole load');
  const onA = await activeDump(a.pool);
  for (const t of ['kev', 'epss', 'vex']) assert.notDeepEqual(onA[t], afterFull0[t], `${t} changed between the kits`);
});

test('a rollback gives back the earlier DB exactly; applied again, the load shows its choice in its progress', async () => {
  await rollback(a.pool, a.logger);
  assert.equal((await readActivePointer(a.pool)).activeVersion, V[0]);
  assertSameRows(await activeDump(a.pool), afterFull0, 'after the rollback');

  const ctx = trustingBoth(a);
  const rec = await importDirect(a, ctx, full1.out, 'again/stella-ouk-2026-11-21.tar.gz');
  const mode = loadResult(rec).mode!;
  assert.match(mode, /^full: \d+ changed of \d+, applied onto 2026-11-20$/);
  assert.ok(ctx.reports.some((r) => r.mode === mode), 'the load stage reported its choice');
  assertSameRows(await activeDump(a.pool), full1Whole, 'applied again');
});

test('a full kit of another lineage (another generator) is loaded whole, and says why', async () => {
  const ctx = trustingBoth(b);
  const other = await makeBundle(b, 'other.tar.gz', { version: '2026-11-22', advisories: 50 });
  const rec = await importDirect(b, ctx, other.path, 'stella-ouk-2026-11-22.tar.gz');
  const loaded = loadResult(rec);
  assert.equal(loaded.mode, 'full: loaded whole');
  assert.match(loaded.wholeBecause ?? '', /was built by stella-ouk .*, this kit by stella-ouk synthetic/);
  assert.equal(loaded.onto, undefined);
  assert.ok(ctx.reports.some((r) => r.mode === 'full: loaded whole'), 'the load stage reported its choice');
  const pointer = await readActivePointer(b.pool);
  assert.equal(pointer.activeVersion, '2026-11-22');
  assert.equal(pointer.activeSchema, loaded.schema, 'a schema of its own');
});

test('an older site DB without content digests gets the whole load, and the reason', async () => {
  // As a DB loaded before its advisories carried content_hash.
  const schema = (await readActivePointer(a.pool)).activeSchema!;
  await a.pool.query(`ALTER TABLE ${ident(schema)}.advisories DROP COLUMN content_hash`);
  const ctx = trustingBoth(a);
  const rec = await importDirect(a, ctx, full1.out, 'older/stella-ouk-2026-11-21.tar.gz', { allowDowngrade: true });
  const loaded = loadResult(rec);
  assert.equal(loaded.mode, 'full: loaded whole');
  assert.match(loaded.wholeBecause ?? '', /advisories has other columns/);
  const pointer = await readActivePointer(a.pool);
  assert.equal(pointer.activeSchema, loaded.schema, 'a schema of its own');
  assertSameRows(await activeDump(a.pool), full1Whole, 'the whole load');
});

test('a difference taken against a DB that is no longer active is not applied: the load is marked lost and loads again', async () => {
  const ctx = trustingBoth(a);
  const p = await putBundle(a, full0.out, 'stale/stella-ouk-2026-11-20.tar.gz');
  await recordImport(a.pool, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size }, { allowDowngrade: true });
  for (const stage of [verify, unpack, load]) await stage(p, ctx);
  const staged = loadResult((await getImport(a.pool, p.importId))!);
  assert.ok(staged.onto, 'staged as a difference');
  // Another import becomes the active DB in between.
  await importDirect(a, ctx, full1.out, 'between/stella-ouk-2026-11-21.tar.gz', { allowDowngrade: true });
  const between = await activeDump(a.pool);
  await assert.rejects(activate(p, ctx), (e: Error & { code?: string }) => e.code === 'IMPORT_FAILED' && /no longer the active DB|is active now/.test(e.message));
  assertSameRows(await activeDump(a.pool), between, 'nothing applied');
  const lost = (await getImport(a.pool, p.importId))!;
  assert.equal(lost.stages.load?.state, 'failed', 'the load is no longer done');
  // Loaded again, now against the DB active now, it applies: full0's DB exactly.
  await load(p, ctx);
  await activate(p, ctx);
  assertSameRows(await activeDump(a.pool), afterFull0, 'full0 applied onto what is active now');
});

test('the row filters: lines across any chunking, every line counted, ids and hashes compared as COPY text', async () => {
  const rows = ['A\th1\tx', 'A\th1\ty', 'B\th2\tz', 'C\\t\th3\tw', 'D\th4\tv'];
  const text = Buffer.from(rows.map((r) => `${r}\n`).join(''));
  for (const size of [1, 2, 3, 7, text.length]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.subarray(i, i + size));
    const f = rowFilter(idIn(new Set(['A', 'C\\t'])));
    const out: Buffer[] = [];
    for await (const c of Readable.from(chunks).pipe(f)) out.push(c as Buffer);
    assert.equal(Buffer.concat(out).toString(), 'A\th1\tx\nA\th1\ty\nC\\t\th3\tw\n', `chunks of ${size}`);
    assert.equal(f.lines, 5);
  }
  // advisories: unchanged dropped, changed and new kept, the rest of the active map is what the kit removes
  const active = new Map([['A', 'h1'], ['B', 'old'], ['E', 'h5']]);
  const diff: AdvisoryDiff = { changed: new Set(), total: 0, added: 0 };
  const f = rowFilter(advisoryChanged(active, 1, diff));
  const out: Buffer[] = [];
  for await (const c of Readable.from([Buffer.from('A\th1\nB\th2\nD\th4')]).pipe(f)) out.push(c as Buffer);
  assert.equal(Buffer.concat(out).toString(), 'B\th2\nD\th4\n', 'a last line without its newline is a row too');
  assert.deepEqual([...diff.changed], ['B', 'D']);
  assert.equal(diff.added, 1);
  assert.equal(diff.total, 3);
  assert.deepEqual([...active.keys()], ['E']);
  // a duplicate or unsorted id fails the load, as the whole load's primary key would
  for (const bad of ['A\th1\nA\th1\n', 'B\th2\nA\th1\n']) {
    const g = rowFilter(advisoryChanged(new Map([['A', 'h1']]), 1, { changed: new Set(), total: 0, added: 0 }));
    await assert.rejects(
      (async () => {
        for await (const _ of Readable.from([Buffer.from(bad)]).pipe(g)) void _;
      })(),
      (e: Error & { code?: string }) => e.code === 'MANIFEST_INVALID',
    );
  }
});

test('a gated filter streams beside the advisories pass: each row waits until its advisory is decided', async () => {
  const collect = async (r: NodeJS.ReadableStream): Promise<string> => {
    const out: Buffer[] = [];
    for await (const c of r) out.push(c as Buffer);
    return Buffer.concat(out).toString();
  };
  const gate = new IdGate();
  const diff: AdvisoryDiff = { changed: new Set(), total: 0, added: 0 };
  const other = collect(Readable.from([Buffer.from('A\tr1\nB\tr2\n'), Buffer.from('B\tr3\nC\tr4\nZ\torphan')]).pipe(rowFilter(idIn(diff.changed), gate)));
  let otherDone = false;
  void other.then(() => (otherDone = true));
  await sleep(30);
  assert.equal(otherDone, false, 'nothing is decided before the advisories pass runs');
  const adv = rowFilter(advisoryChanged(new Map([['A', 'h1'], ['B', 'x']]), 1, diff, gate));
  const advOut = await collect(Readable.from([Buffer.from('A\th1\nB\th2\n'), Buffer.from('C\th3\n')]).pipe(adv));
  gate.close();
  assert.equal(advOut, 'B\th2\nC\th3\n');
  assert.equal(await other, 'B\tr2\nB\tr3\nC\tr4\n');
  // a failed advisories pass fails the gated filters
  const g2 = new IdGate();
  const waiting = collect(Readable.from([Buffer.from('A\tr1\n')]).pipe(rowFilter(() => true, g2)));
  g2.close(new Error('advisories failed'));
  await assert.rejects(waiting, /advisories failed/);
});
