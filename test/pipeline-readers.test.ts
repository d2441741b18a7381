/**
 * Readers during an import and its activation: several loops read the active
 * DB continuously (each read = one REPEATABLE READ snapshot through
 * withActiveSnapshot, several queries long) while another DB is verified,
 * unpacked, loaded and activated — first a full bundle (the state switches to
 * a new schema), then a delta (applied in place to the active schema, table by
 * table), then the delta's rollback (its undo rows put back the same way). No read may error, every read must be internally consistent (its
 * counts and its content fingerprint are those of the one version it saw),
 * reads before the switch see the old DB and reads after it the new one, and a
 * read that began before the switch finishes on the old version.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { ident, withActiveSnapshot } from '../infra/db.ts';
import { activate } from '../functions/activate.ts';
import { load } from '../functions/load.ts';
import { rollback } from '../functions/rollback.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { recordImport } from '../queue/ingest.ts';
import { makeBundle, pipelineFixture, putBundle, stageContext, type PipelineFixture } from './pipeline-fixtures.ts';
import type { StagePayload } from '../functions/context.ts';

let fx: PipelineFixture;
before(async () => {
  fx = await pipelineFixture('pipeline-readers');
});
after(async () => {
  await fx?.close();
});

const TABLE_NAMES = ['advisories', 'aliases', 'affected', 'cpes'];

/** What one read saw: the version, every table's count and a fingerprint of the content, all from one snapshot. */
interface Seen {
  version: string;
  counts: Record<string, number>;
  /** md5 of every advisory's id and content hash, and of every affected row: a changed advisory changes it. */
  fingerprint: string;
}

interface Read extends Seen {
  start: number;
  end: number;
}

async function importAll(p: StagePayload & { size: number }, hooks: { beforeActivate?: () => Promise<void> } = {}): Promise<{ activatedAt: number }> {
  await recordImport(fx.pool, p);
  const ctx = stageContext(fx);
  await verify(p, ctx);
  await unpack(p, ctx);
  await load(p, ctx);
  await hooks.beforeActivate?.();
  await activate(p, ctx);
  return { activatedAt: performance.now() };
}

async function see(client: pg.PoolClient, schema: string, version: string, pauseMs: number): Promise<Seen> {
  const counts: Record<string, number> = {};
  const parts: string[] = [];
  for (const t of TABLE_NAMES) {
    const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(schema)}.${ident(t)}`);
    counts[t] = Number(r.rows[0].n);
    if (t === 'advisories') {
      const f = await client.query<{ f: string }>(`SELECT md5(string_agg(advisory_id || ' ' || content_hash, ',' ORDER BY advisory_id)) AS f FROM ${ident(schema)}.advisories`);
      parts.push(f.rows[0].f);
    }
    if (t === 'affected') {
      const f = await client.query<{ f: string }>(
        `SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) AS f FROM (SELECT advisory_id, ecosystem, package, ranges FROM ${ident(schema)}.affected) x`,
      );
      parts.push(f.rows[0].f);
    }
    if (pauseMs) await sleep(pauseMs);
  }
  return { version, counts, fingerprint: parts.join('/') };
}

/** One read: every table in one snapshot, with pauses between, so an activation can fall inside it. */
async function readOnce(pauseMs: number): Promise<Read> {
  const start = performance.now();
  return withActiveSnapshot(fx.pool, async (client, active) => ({ ...(await see(client, active.schema, active.version, pauseMs)), start, end: performance.now() }));
}

/** The active DB, read while nothing else runs. */
async function quiet(): Promise<Seen> {
  return withActiveSnapshot(fx.pool, (client, active) => see(client, active.schema, active.version, 0));
}

/** Waits until `cond` holds, checking every 20 ms, for at most 60 s (the assertions after it then say what is missing). */
async function until(cond: () => boolean): Promise<void> {
  for (const end = Date.now() + 60_000; !cond() && Date.now() < end; ) await sleep(20);
}

/**
 * Runs `change` (an import or a rollback, which calls `beforeSwitch` just
 * before it activates) while readers run; checks every read against the quiet
 * views of the DB before (`from`) and after (`to`).
 */
async function switchUnderReaders(
  change: (beforeSwitch: () => Promise<void>) => Promise<void>,
  from: Seen,
  to: { version: string; counts: Record<string, number> },
): Promise<Seen> {
  let stop = false;
  const reads: Read[] = [];
  const errors: unknown[] = [];
  const loops = Array.from({ length: 4 }, (_, i) =>
    (async () => {
      while (!stop) {
        try {
          reads.push(await readOnce(i % 2 ? 5 : 0));
        } catch (e) {
          errors.push(e);
        }
      }
    })(),
  );

  // A long read: starts on the old DB, waits until the activation has committed, then reads again in the same snapshot.
  let releaseLong!: () => void;
  const switched = new Promise<void>((r) => (releaseLong = r));
  let longStarted!: () => void;
  const longIsIn = new Promise<void>((r) => (longStarted = r));
  const long = withActiveSnapshot(fx.pool, async (client, active) => {
    const before = await see(client, active.schema, active.version, 0);
    longStarted();
    await switched;
    const after = await see(client, active.schema, active.version, 0);
    const again = await client.query<{ active_version: string }>('SELECT active_version FROM ouk_meta.active_db');
    return { before, after, pointer: again.rows[0].active_version };
  });

  // However busy the machine, readers are under way (one read done) before the change starts…
  await until(() => reads.length > 0);
  let activateStart = 0;
  await change(async () => {
    await longIsIn;
    activateStart = performance.now();
  });
  const activatedAt = performance.now();
  assert.equal((await readActivePointer(fx.pool)).activeVersion, to.version);
  releaseLong();
  // …and go on until enough reads are in, some of them started after the switch.
  await until(() => reads.length > 20 && reads.some((r) => r.start > activatedAt));
  stop = true;
  await Promise.all(loops);
  const longRead = await long;
  const now = await quiet();
  assert.deepEqual(now.counts, to.counts, `the new DB (${to.version}) has the rows its bundle says`);
  assert.notEqual(now.fingerprint, from.fingerprint, 'the new DB differs from the old');
  const views: Record<string, Seen> = { [from.version]: from, [to.version]: now };

  assert.deepEqual(errors, [], 'no reader failed');
  assert.ok(reads.length > 20, `enough reads happened (${reads.length})`);
  for (const r of reads) {
    const want = views[r.version];
    assert.ok(want, `a read saw ${r.version}, neither ${from.version} nor ${to.version}`);
    assert.deepEqual({ counts: r.counts, fingerprint: r.fingerprint }, { counts: want.counts, fingerprint: want.fingerprint }, `read of ${r.version} is the whole of that version, not a mix`);
  }
  const before = reads.filter((r) => r.end < activateStart);
  const afterSwitch = reads.filter((r) => r.start > activatedAt);
  assert.ok(before.length > 0 && afterSwitch.length > 0, `reads on both sides of the switch (${before.length} before, ${afterSwitch.length} after)`);
  for (const r of before) assert.equal(r.version, from.version, 'a read done before the switch saw the old DB');
  for (const r of afterSwitch) assert.equal(r.version, to.version, 'a read started after the switch sees the new DB');

  assert.deepEqual(longRead.before, from);
  assert.deepEqual(longRead.after, from, 'the long read finished on its snapshot of the old DB');
  assert.equal(longRead.pointer, from.version, 'even the pointer it reads is its snapshot');
  return now;
}

function importing(p: StagePayload & { size: number }): (beforeSwitch: () => Promise<void>) => Promise<void> {
  return async (beforeSwitch) => {
    await importAll(p, { beforeActivate: beforeSwitch });
  };
}

test('readers never see a mix, never fail, and finish on the snapshot they started with: a full switch, a delta applied in place, its rollback', async () => {
  const v1 = await makeBundle(fx, 'r1.tar.gz', { version: '2026-11-20', advisories: 1500, seed: 1 });
  const v2 = await makeBundle(fx, 'r2.tar.gz', { version: '2026-11-21', advisories: 2500, seed: 2 });
  await importAll(await putBundle(fx, v1.path, 'r1.tar.gz'));
  const at1 = await quiet();
  assert.deepEqual(at1.counts, v1.counts);

  // A full import: the state moves to a new schema.
  const at2 = await switchUnderReaders(importing(await putBundle(fx, v2.path, 'r2.tar.gz')), at1, { version: '2026-11-21', counts: v2.counts });

  // A delta: the active schema itself is changed, table by table, in one transaction.
  const changed = Array.from({ length: 120 }, (_, k) => k * 20 + 3);
  const removed = Array.from({ length: 40 }, (_, k) => k * 50 + 11);
  const d3 = await makeBundle(fx, 'r3.tar.gz', {
    version: '2026-11-22',
    advisories: 0,
    seed: 3,
    delta: { base: { version: '2026-11-21', advisories: 2500, seed: 2 }, changed, added: 150, removed },
  });
  assert.equal(d3.manifest.kind, 'delta');
  const schemaBefore = (await readActivePointer(fx.pool)).activeSchema;
  const at3 = await switchUnderReaders(importing(await putBundle(fx, d3.path, 'r3.tar.gz')), at2, { version: '2026-11-22', counts: d3.counts });
  assert.equal((await readActivePointer(fx.pool)).activeSchema, schemaBefore, 'the delta was applied to the active schema, in place');

  // Its rollback: the undo rows go back into the same schema, in one transaction.
  const back = await switchUnderReaders(
    async (beforeSwitch) => {
      await beforeSwitch();
      await rollback(fx.pool, fx.logger);
    },
    at3,
    { version: '2026-11-21', counts: v2.counts },
  );
  assert.deepEqual(back, at2, 'the rollback restored the DB before the delta exactly (same content fingerprint)');
});
