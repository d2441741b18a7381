/**
 * Readers during an import and its activation: several loops read the active
 * DB continuously (each read = one REPEATABLE READ snapshot through
 * withActiveSnapshot, several queries long) while a second DB is verified,
 * unpacked, loaded and activated. No read may error, every read must be
 * internally consistent (all its counts are those of the one version it saw),
 * reads before the switch see the old DB and reads after it the new one, and a
 * read that began before the switch finishes on the old version.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ident, withActiveSnapshot } from '../infra/db.ts';
import { activate } from '../functions/activate.ts';
import { load } from '../functions/load.ts';
import { readState } from '../functions/state.ts';
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

interface Read {
  version: string;
  counts: Record<string, number>;
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

/** One read: every table counted in one snapshot, with pauses between, so a switch can fall inside it. */
async function readOnce(pauseMs: number): Promise<Read> {
  const start = performance.now();
  return withActiveSnapshot(fx.pool, async (client, active) => {
    const counts: Record<string, number> = {};
    for (const t of TABLE_NAMES) {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(active.schema)}.${ident(t)}`);
      counts[t] = Number(r.rows[0].n);
      if (pauseMs) await sleep(pauseMs);
    }
    return { version: active.version, counts, start, end: performance.now() };
  });
}

test('readers never see a mix, never fail, and finish on the snapshot they started with', async () => {
  const v1 = await makeBundle(fx, 'r1.tar.gz', { version: '2026-11-20', advisories: 1500, seed: 1 });
  const v2 = await makeBundle(fx, 'r2.tar.gz', { version: '2026-11-21', advisories: 2500, seed: 2 });
  const expected: Record<string, Record<string, number>> = { '2026-11-20': v1.counts, '2026-11-21': v2.counts };
  await importAll(await putBundle(fx, v1.path, 'r1.tar.gz'));

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

  // A long read: starts on the old DB, waits until the switch has committed, then reads again in the same snapshot.
  let releaseLong!: () => void;
  const switched = new Promise<void>((r) => (releaseLong = r));
  let longStarted!: () => void;
  const longIsIn = new Promise<void>((r) => (longStarted = r));
  const long = withActiveSnapshot(fx.pool, async (client, active) => {
    const before = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(active.schema)}.advisories`);
    longStarted();
    await switched;
    const after = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(active.schema)}.advisories`);
    const again = await client.query<{ active_version: string }>('SELECT active_version FROM ouk_meta.state');
    return { version: active.version, before: Number(before.rows[0].n), after: Number(after.rows[0].n), pointer: again.rows[0].active_version };
  });

  await sleep(100);
  const p2 = await putBundle(fx, v2.path, 'r2.tar.gz');
  let activateStart = 0;
  const { activatedAt } = await importAll(p2, {
    beforeActivate: async () => {
      await longIsIn;
      activateStart = performance.now();
    },
  });
  assert.equal((await readState(fx.pool)).activeVersion, '2026-11-21');
  releaseLong();
  await sleep(200);
  stop = true;
  await Promise.all(loops);
  const longRead = await long;

  assert.deepEqual(errors, [], 'no reader failed');
  assert.ok(reads.length > 20, `enough reads happened (${reads.length})`);
  for (const r of reads) assert.deepEqual(r.counts, expected[r.version], `read of ${r.version} is internally consistent`);
  const before = reads.filter((r) => r.end < activateStart);
  const afterSwitch = reads.filter((r) => r.start > activatedAt);
  assert.ok(before.length > 0 && afterSwitch.length > 0, `reads on both sides of the switch (${before.length} before, ${afterSwitch.length} after)`);
  for (const r of before) assert.equal(r.version, '2026-11-20', 'a read done before the switch saw the old DB');
  for (const r of afterSwitch) assert.equal(r.version, '2026-11-21', 'a read started after the switch sees the new DB');

  assert.equal(longRead.version, '2026-11-20');
  assert.equal(longRead.before, 1500);
  assert.equal(longRead.after, 1500, 'the long read finished on its snapshot of the old DB');
  assert.equal(longRead.pointer, '2026-11-20', 'even the pointer it reads is its snapshot');
});
