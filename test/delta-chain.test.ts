/**
 * Nightly deltas end to end: a chain of nightly deltas imported through the real
 * pipeline (s3rver, BullMQ workers, PostgreSQL) gives the same DB, row for row,
 * as the full bundle built from the newest feeds; a delta for another base is
 * refused with the active DB untouched; a rollback after a delta restores the
 * DB as it was before it, row for row; a replayed older delta or full kit is
 * refused as a downgrade unless explicitly allowed.
 *
 * Feed snapshots (test/helpers/feed-snapshots.ts) link real records from
 * ../shared/feeds (GHSA records, the npm OSV records and one NVD page) and
 * edit copies at test time: advisories added, changed, withdrawn,
 * un-withdrawn and removed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TABLES } from '../bundle/tables.ts';
import { type BuildResult } from '../builder/build.ts';
import { ident, type Pool } from '../infra/db.ts';
import { getImport, type ImportRecord } from '../infra/import-records/index.ts';
import { rollback } from '../functions/rollback.ts';
import { undoSchemaFor } from '../functions/context.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { createRedis } from '../queue/connection.ts';
import { ingestObject, type IngestFlags } from '../queue/ingest.ts';
import { openPipelineQueues, type PipelineQueues } from '../queue/queues.ts';
import { startWorkers, type RunningWorkers } from '../queue/workers.ts';
import { pipelineFixture, putBundle, type PipelineFixture, fixtureConfig, fastSettings } from './pipeline-fixtures.ts';
import { editRecord as edit, FEEDS, buildSnapshot, shared, type Snapshot } from './helpers/feed-snapshots.ts';
import { testRedisPrefix, tmpDir, type TestRedisPrefix } from './helpers/services.ts';
import { QUARANTINE_CODES } from '../lib/quarantine.ts';
import type { ErrorCode } from '../lib/errors.ts';

const V = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23'] as const;
const settings = fastSettings();

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let queues: PipelineQueues;
let workers: RunningWorkers;
const work = tmpDir('delta-chain');
const bundles: { full0?: BuildResult; d1?: BuildResult; d2?: BuildResult; d3?: BuildResult; full3?: BuildResult } = {};
/** The active DB right after full0's import, for the downgrade check at the end. */
let afterFull0: Awaited<ReturnType<typeof activeDump>> | undefined;
/** The CVE whose CPE configurations s3 drops. */
let clearedCve = '';
const ghsa = fs.readdirSync(path.join(FEEDS, 'ghsa')).filter((f) => f.endsWith('.json')).sort();

function build(name: string, s: Snapshot, version: string, base?: BuildResult): Promise<BuildResult> {
  return buildSnapshot(s, { work, name, version, keyPath: fx.privateKey, out: path.join(work, `${name}.tar.gz`), base, fullOut: base ? path.join(work, `${name}-full.tar.gz`) : undefined });
}

async function importBundle(b: { out: string }, key: string, flags: IngestFlags = {}): Promise<ImportRecord> {
  const p = await putBundle(fx, b.out, key);
  await ingestObject({ pool: fx.pool, queues, settings }, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size }, flags);
  const end = Date.now() + 60_000;
  for (;;) {
    const r = await getImport(fx.pool, p.importId);
    // settled: active, quarantined (a refusal for integrity or policy moves the kit aside), or failed for another
    // cause — a delta whose base is not active stays failed (its base may still come), only a wrong base is quarantined
    const settledFailed = r?.state === 'failed' && (!QUARANTINE_CODES.has(r.errorCode as ErrorCode) || r.errorCode === 'DELTA_BASE_MISMATCH');
    if (r && (r.state === 'active' || r.state === 'quarantined' || settledFailed)) return r;
    if (Date.now() > end) assert.fail(`import of ${key} did not finish (state ${r?.state})`);
    await sleep(100);
  }
}

/** Every row of every table of `schema`, as sorted text lines per table. */
async function dump(pool: Pool, schema: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) {
    const cols = t.columns.map((c) => ident(c.name)).join(', ');
    const r = await pool.query<{ row: string }>(`SELECT (${cols})::text AS row FROM ${ident(schema)}.${ident(t.name)}`);
    out[t.name] = r.rows.map((x) => x.row).sort();
  }
  return out;
}

async function activeDump(): Promise<{ version: string | null; digest: string | null; rows: Record<string, string[]> }> {
  const st = await readActivePointer(fx.pool);
  assert.ok(st.activeSchema, 'a DB is active');
  return { version: st.activeVersion, digest: st.activeDigest, rows: await dump(fx.pool, st.activeSchema) };
}

function assertSameRows(a: Record<string, string[]>, b: Record<string, string[]>, what: string): void {
  for (const t of TABLES) {
    assert.equal(a[t.name].length, b[t.name].length, `${what}: ${t.name} row count`);
    assert.deepEqual(a[t.name], b[t.name], `${what}: ${t.name} rows`);
  }
}

before(async () => {
  fx = await pipelineFixture('delta-chain');
  redis = testRedisPrefix('delta-chain');
  const config = fixtureConfig(fx, redis);
  queues = openPipelineQueues(createRedis(redis.redisUrl), redis.prefix);
  workers = startWorkers(config, { pool: fx.pool, store: fx.s3.store, settings, logger: fx.logger });

  // s0: 500 GHSA records, every npm OSV record, one NVD page (CPE rows).
  const s0: Snapshot = new Map();
  for (const f of ghsa.slice(0, 500)) s0.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  for (const f of fs.readdirSync(path.join(FEEDS, 'osv', 'npm')).sort()) s0.set(`osv/npm/${f}`, shared(`osv/npm/${f}`));
  s0.set('nvd/page-003.json', shared('nvd/page-003.json'));

  // s1: 30 added, 10 changed (summary and a fixed version), 5 withdrawn.
  const s1: Snapshot = new Map(s0);
  for (const f of ghsa.slice(500, 530)) s1.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  for (const f of ghsa.slice(0, 10)) {
    await edit(s1, `ghsa/${f}`, (r) => {
      r.summary = `${String(r.summary ?? '')} (revised)`;
      r.modified = '2026-11-21T00:00:00Z';
    });
  }
  for (const f of ghsa.slice(10, 15)) await edit(s1, `ghsa/${f}`, (r) => { r.withdrawn = '2026-11-21T00:00:00Z'; });

  // s2: 10 removed, 10 more changed.
  const s2: Snapshot = new Map(s1);
  for (const f of ghsa.slice(20, 30)) s2.delete(`ghsa/${f}`);
  for (const f of ghsa.slice(30, 40)) await edit(s2, `ghsa/${f}`, (r) => { r.details = `${String(r.details ?? '')}\n\nUpdated 2026-11-22.`; });

  // s3: 10 added, 2 un-withdrawn, 5 changed again, 3 of s1's additions removed, and
  // NVD drops one CVE's configurations (it stays, with no cpes rows: db/cleared.tsv).
  const s3: Snapshot = new Map(s2);
  await edit(s3, 'nvd/page-003.json', (page) => {
    type Item = { cve: { id: string; lastModified: string; configurations?: unknown[] } };
    const item = (page.vulnerabilities as Item[]).find((v) => (v.cve.configurations ?? []).length > 0)!;
    clearedCve = item.cve.id;
    item.cve.lastModified = '2026-11-23T04:00:00.000';
    delete item.cve.configurations;
  });
  for (const f of ghsa.slice(530, 540)) s3.set(`ghsa/${f}`, shared(`ghsa/${f}`));
  for (const f of ghsa.slice(10, 12)) await edit(s3, `ghsa/${f}`, (r) => { delete r.withdrawn; });
  for (const f of ghsa.slice(0, 5)) await edit(s3, `ghsa/${f}`, (r) => { r.summary = `${String(r.summary ?? '')} (second revision)`; });
  for (const f of ghsa.slice(500, 503)) s3.delete(`ghsa/${f}`);

  bundles.full0 = await build('full0', s0, V[0]);
  bundles.d1 = await build('d1', s1, V[1], bundles.full0);
  bundles.d2 = await build('d2', s2, V[2], bundles.d1);
  bundles.d3 = await build('d3', s3, V[3], bundles.d2);
  bundles.full3 = bundles.d3.full;
});

after(async () => {
  await workers?.close();
  await queues?.close();
  queues?.connection.disconnect();
  await redis?.cleanup();
  await fx?.close();
});

describe('a chain of deltas through the pipeline', () => {
  test('the deltas carry only what changed', () => {
    assert.equal(bundles.d1!.manifest.kind, 'delta');
    assert.deepEqual(bundles.d1!.manifest.base?.version, V[0]);
    const c1 = bundles.d1!.manifest.db.changes!;
    assert.ok(c1.added >= 1 && c1.changed >= 15, `d1 changes ${JSON.stringify(c1)}`);
    assert.ok(bundles.d2!.manifest.db.changes!.removed >= 1, 'd2 removes advisories');
    assert.ok(bundles.d1!.rows.advisories < bundles.full0!.rows.advisories / 4, 'a delta is much smaller than the DB');
    assert.ok(bundles.full3, 'the full bundle of the newest feeds was written');
    assert.ok(clearedCve, 'a CVE of page-003 with configurations');
  });

  test('full0 then a delta for another base: refused at verify, the active DB untouched', async () => {
    const r0 = await importBundle(bundles.full0!, 'kits/stella-ouk-full0.tar.gz');
    assert.equal(r0.state, 'active', `full0: ${r0.errorCode} ${r0.error}`);
    const before0 = await activeDump();
    afterFull0 = before0;

    const wrong = await importBundle(bundles.d2!, 'kits/stella-ouk-d2-early.tar.gz');
    assert.equal(wrong.state, 'failed');
    assert.equal(wrong.errorCode, 'DELTA_BASE_MISMATCH');
    assert.match(wrong.error ?? '', new RegExp(`delta ${V[2]} \\(built on ${V[1]}\\) cannot apply to active ${V[0]}: import the full kit ${V[1]} or the missing deltas`));
    const after0 = await activeDump();
    assert.equal(after0.version, V[0]);
    assertSameRows(after0.rows, before0.rows, 'after the refused delta');
  });

  test('d1, d2, d3 in order; rollback of d3 gives the post-d2 DB row for row', async () => {
    for (const [name, b] of [['d1', bundles.d1!], ['d2', bundles.d2!]] as const) {
      const r = await importBundle(b, `kits/stella-ouk-${name}.tar.gz`);
      assert.equal(r.state, 'active', `${name}: ${r.errorCode} ${r.error}`);
    }
    const afterD2 = await activeDump();
    assert.equal(afterD2.version, V[2]);
    assert.equal(afterD2.digest, bundles.d2!.manifest.db.digest);

    const r3 = await importBundle(bundles.d3!, 'kits/stella-ouk-d3.tar.gz');
    assert.equal(r3.state, 'active', `d3: ${r3.errorCode} ${r3.error}`);
    assert.equal((await activeDump()).version, V[3]);
    // Per table, d3 touched only the advisories whose rows there changed: the summary edits
    // left their affected rows alone, and the CVE without configurations lost its cpes rows.
    const undo = undoSchemaFor(r3.id);
    const count = async (sql: string): Promise<number> => Number((await fx.pool.query<{ n: string }>(sql)).rows[0]!.n);
    const all = await count(`SELECT count(*) AS n FROM ${ident(undo)}.touched`);
    const affected = await count(`SELECT count(*) AS n FROM ${ident(undo)}.touched_affected`);
    assert.ok(affected < all, `d3 touched ${affected} advisories in affected, ${all} in all`);
    assert.equal(await count(`SELECT count(*) AS n FROM ${ident(undo)}.touched_cpes WHERE advisory_id = '${clearedCve}'`), 1);
    assert.equal(await count(`SELECT count(*) AS n FROM ${ident((await readActivePointer(fx.pool)).activeSchema!)}.cpes WHERE advisory_id = '${clearedCve}'`), 0, 'its cpes rows are gone');

    const rb = await rollback(fx.pool, fx.logger);
    assert.equal(rb.to.version, V[2]);
    const rolled = await activeDump();
    assert.equal(rolled.version, V[2]);
    assert.equal(rolled.digest, afterD2.digest);
    assertSameRows(rolled.rows, afterD2.rows, 'after rolling d3 back');
  });

  test('re-applying d3 gives exactly the full bundle of the newest feeds', async () => {
    // The same delta uploaded again under a new key is a new import of it.
    const r3 = await importBundle(bundles.d3!, 'kits/again/stella-ouk-d3.tar.gz');
    assert.equal(r3.state, 'active', `d3 again: ${r3.errorCode} ${r3.error}`);
    const chain = await activeDump();
    assert.equal(chain.version, V[3]);
    assert.equal(chain.digest, bundles.full3!.manifest.db.digest, 'the chain yields the full bundle\'s content digest');

    // full3 of the same version is a downgrade-equal: allowed explicitly, into its own schema.
    const f3 = await importBundle(bundles.full3!, 'kits/stella-ouk-full3.tar.gz', { allowDowngrade: true });
    assert.equal(f3.state, 'active', `full3: ${f3.errorCode} ${f3.error}`);
    const full = await activeDump();
    assert.equal(full.rows.advisories.length, bundles.full3!.rows.advisories);
    assertSameRows(chain.rows, full.rows, 'full0 → d1 → d2 → d3 vs full3');
  });

  test('a replayed older delta or full is refused as a downgrade, unless allowed', async () => {
    const before3 = await activeDump();
    assert.equal(before3.version, V[3]);
    for (const [name, b] of [['d2', bundles.d2!], ['full0', bundles.full0!]] as const) {
      const r = await importBundle(b, `kits/replay/stella-ouk-${name}.tar.gz`);
      assert.equal(r.state, 'quarantined', `${name} replayed`);
      assert.equal(r.errorCode, 'DOWNGRADE_REFUSED', `${name}: ${r.error}`);
      assert.match(r.error ?? '', new RegExp(`older than the active ${V[3]}.*--allow-downgrade`));
      const now = await activeDump();
      assert.equal(now.version, V[3]);
      assert.equal(now.digest, before3.digest);
      assertSameRows(now.rows, before3.rows, `after the refused ${name}`);
    }
    // Explicitly allowed, the old full kit becomes the active DB again, exactly as first imported.
    const f0 = await importBundle(bundles.full0!, 'kits/replay-allowed/stella-ouk-full0.tar.gz', { allowDowngrade: true });
    assert.equal(f0.state, 'active', `full0 allowed: ${f0.errorCode} ${f0.error}`);
    const back = await activeDump();
    assert.equal(back.version, V[0]);
    assert.equal(back.digest, afterFull0!.digest);
    assertSameRows(back.rows, afterFull0!.rows, 'full0 re-imported with allowDowngrade');
    // allowDowngrade does not let a delta apply to a DB it was not built on.
    const d2 = await importBundle(bundles.d2!, 'kits/replay-allowed/stella-ouk-d2.tar.gz', { allowDowngrade: true });
    assert.equal(d2.errorCode, 'DELTA_BASE_MISMATCH', `${d2.error}`);
  });
});
