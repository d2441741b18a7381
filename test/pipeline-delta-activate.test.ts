/**
 * A delta's activation that dies half-way leaves the active DB exactly as it
 * was. The activation of a delta deletes and re-inserts rows table by table in
 * one transaction; here its PostgreSQL connection is terminated (as a DB
 * restart or a lost connection would) while it waits on the last table, after
 * it has already changed the others. Readers never see those changes, the
 * active pointer does not move, and a retry then applies the delta whole.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { TABLES } from '../bundle/tables.ts';
import { activate } from '../functions/activate.ts';
import { rollback } from '../functions/rollback.ts';
import { load } from '../functions/load.ts';
import { recordImport } from '../queue/ingest.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { ident } from '../infra/db.ts';
import { undoSchemaFor, type StageContext, type StagePayload } from '../functions/context.ts';
import { activeCounts, makeBundle, pipelineFixture, putBundle, stageContext, type PipelineFixture } from './pipeline-fixtures.ts';

let fx: PipelineFixture;

before(async () => {
  fx = await pipelineFixture('delta-activate-failure');
});

after(async () => {
  await fx?.close();
});

/** Puts `file` into the bucket under `key`, records its import and runs `stages` on it, in order. */
async function importThrough(file: string, key: string, stages: Array<(p: StagePayload, ctx: StageContext) => Promise<unknown>>): Promise<StagePayload & { size: number }> {
  const p = await putBundle(fx, file, key);
  await recordImport(fx.pool, { bucket: p.bucket, key: p.key, etag: p.etag, size: p.size });
  const ctx = stageContext(fx);
  for (const stage of stages) await stage(p, ctx);
  return p;
}

async function rowsOf(schema: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) {
    const r = await fx.pool.query<{ row: string }>(`SELECT x::text AS row FROM ${ident(schema)}.${ident(t.name)} x`);
    out[t.name] = r.rows.map((x) => x.row).sort();
  }
  return out;
}

test('a delta activation killed half-way changes nothing; a retry applies it whole', async () => {
  const full = await makeBundle(fx, 'full.tar.gz', { version: '2026-11-20', advisories: 200 });
  const pf = await putBundle(fx, full.path, 'stella-ouk-2026-11-20.tar.gz');
  await recordImport(fx.pool, { bucket: pf.bucket, key: pf.key, etag: pf.etag, size: pf.size });
  const ctx = stageContext(fx);
  for (const stage of [verify, unpack, load, activate]) await stage(pf, ctx);
  const st0 = await readActivePointer(fx.pool);
  const before = await rowsOf(st0.activeSchema!);

  const d = await makeBundle(fx, 'delta.tar.gz', {
    version: '2026-11-21',
    advisories: 0,
    seed: 9,
    delta: { base: { version: '2026-11-20', advisories: 200, seed: 1 }, changed: [1, 2, 3, 50], added: 4, removed: [9, 10] },
  });
  const pd = await putBundle(fx, d.path, 'stella-ouk-2026-11-21.tar.gz');
  await recordImport(fx.pool, { bucket: pd.bucket, key: pd.key, etag: pd.etag, size: pd.size });
  for (const stage of [verify, unpack, load]) await stage(pd, ctx);

  // Hold the last table, so the activation blocks there after changing the others.
  const last = TABLES[TABLES.length - 1].name;
  const holder = new pg.Client({ connectionString: fx.db.url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query(`LOCK TABLE ${ident(st0.activeSchema!)}.${ident(last)} IN ACCESS EXCLUSIVE MODE`);

  const attempt = activate(pd, ctx).then(
    () => null,
    (e: unknown) => e as Error,
  );
  // Wait until the activation is stuck on that lock, then cut its connection.
  let victim: number | null = null;
  for (let i = 0; i < 200 && victim === null; i++) {
    const r = await fx.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1 AND query ILIKE '%' || $2 || '%'`,
      [(holder as unknown as { processID: number }).processID, last],
    );
    victim = r.rows[0]?.pid ?? null;
    if (victim === null) await sleep(25);
  }
  assert.ok(victim, 'the activation reached the held table');
  // It has changed the earlier tables inside its transaction by now.
  await fx.pool.query('SELECT pg_terminate_backend($1)', [victim]);
  const err = await attempt;
  await holder.query('ROLLBACK');
  await holder.end();
  assert.ok(err, 'the killed activation failed');

  const st1 = await readActivePointer(fx.pool);
  assert.equal(st1.activeVersion, '2026-11-20');
  assert.equal(st1.activeImport, st0.activeImport);
  assert.deepEqual(await rowsOf(st0.activeSchema!), before, 'every table as it was before the delta');

  // The stage is idempotent and retryable: run again, it applies the delta whole.
  await activate(pd, stageContext(fx));
  const now = await activeCounts(fx.pool);
  assert.equal(now.version, '2026-11-21');
  assert.deepEqual(now.counts, d.counts);
  assert.equal((await readActivePointer(fx.pool)).activeDigest, d.manifest.db.digest);
});

test('a delta applies to, and rolls back from, a DB loaded before its text columns were COLLATE "C"', async () => {
  const full = await makeBundle(fx, 'full-22.tar.gz', { version: '2026-11-22', advisories: 120, seed: 4 });
  await importThrough(full.path, 'stella-ouk-2026-11-22.tar.gz', [verify, unpack, load, activate]);
  const st0 = await readActivePointer(fx.pool);
  const schema = st0.activeSchema!;
  // As an earlier release loaded it: every text column in the database's default collation.
  const cols = await fx.pool.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 AND data_type = 'text'`,
    [schema],
  );
  for (const c of cols.rows) {
    await fx.pool.query(`ALTER TABLE ${ident(schema)}.${ident(c.table_name)} ALTER COLUMN ${ident(c.column_name)} TYPE text COLLATE "default"`);
  }
  const legacy = await fx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1 AND collation_name = 'C'`, [schema]);
  assert.equal(legacy.rows[0]!.n, 0);
  const before = await rowsOf(schema);

  const d = await makeBundle(fx, 'delta-23.tar.gz', {
    version: '2026-11-23',
    advisories: 0,
    seed: 11,
    delta: { base: { version: '2026-11-22', advisories: 120, seed: 4 }, changed: [2, 7, 30], added: 3, removed: [5] },
  });
  await importThrough(d.path, 'stella-ouk-2026-11-23.tar.gz', [verify, unpack, load, activate]);
  const now = await activeCounts(fx.pool);
  assert.equal(now.version, '2026-11-23');
  assert.deepEqual(now.counts, d.counts);

  await rollback(fx.pool, fx.logger);
  assert.equal((await readActivePointer(fx.pool)).activeVersion, '2026-11-22');
  assert.deepEqual(await rowsOf(schema), before, 'the rollback restores the legacy DB row for row');
});

test('a format-2 delta (every row of each advisory it touches, no db/cleared.tsv) applies and rolls back as before', async () => {
  const full = await makeBundle(fx, 'full-24.tar.gz', { version: '2026-11-24', advisories: 150, seed: 5 });
  await importThrough(full.path, 'stella-ouk-2026-11-24.tar.gz', [verify, unpack, load, activate]);
  const schema = (await readActivePointer(fx.pool)).activeSchema!;
  const before = await rowsOf(schema);

  const d = await makeBundle(fx, 'delta-25.tar.gz', {
    version: '2026-11-25',
    advisories: 0,
    seed: 12,
    formatVersion: 2,
    delta: { base: { version: '2026-11-24', advisories: 150, seed: 5 }, changed: [1, 9, 40, 77], added: 4, removed: [6, 100] },
  });
  assert.equal(d.manifest.formatVersion, 2);
  assert.ok(!d.manifest.members.some((m) => m.path.startsWith('db/cleared.tsv')));
  const pd = await importThrough(d.path, 'stella-ouk-2026-11-25.tar.gz', [verify, unpack, load, activate]);
  const now = await activeCounts(fx.pool);
  assert.equal(now.version, '2026-11-25');
  assert.deepEqual(now.counts, d.counts);
  const undo = undoSchemaFor(pd.importId);
  const own = await fx.pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(undo)}.touched_affected`]);
  assert.equal(own.rows[0]!.t, null, 'a format-2 delta touches the same advisories in every table');

  await rollback(fx.pool, fx.logger);
  assert.equal((await readActivePointer(fx.pool)).activeVersion, '2026-11-24');
  assert.deepEqual(await rowsOf(schema), before, 'the rollback restores the DB row for row');
});

test('a format-3 delta without db/cleared.tsv is refused at load: the active DB stays as it was', async () => {
  const ctx = stageContext(fx);
  const st0 = await readActivePointer(fx.pool);
  const before = await rowsOf(st0.activeSchema!);
  const d = await makeBundle(fx, 'delta-26.tar.gz', {
    version: '2026-11-26',
    advisories: 0,
    seed: 13,
    withoutCleared: true,
    delta: { base: { version: st0.activeVersion!, advisories: 150, seed: 5 }, changed: [2], added: 1, removed: [] },
  });
  const pd = await importThrough(d.path, 'stella-ouk-2026-11-26.tar.gz', [verify, unpack]);
  await assert.rejects(load(pd, ctx), (e: Error & { code?: string }) => e.code === 'MEMBER_MISSING' && /db\/cleared\.tsv/.test(e.message));
  assert.equal((await readActivePointer(fx.pool)).activeImport, st0.activeImport);
  assert.deepEqual(await rowsOf(st0.activeSchema!), before);
});
