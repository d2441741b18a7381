/**
 * The four stage functions, called directly (no queue), against real
 * PostgreSQL and s3rver: a full import end to end, idempotent reruns, and every
 * refusal verify and unpack owe the operator. Every test builds its own world
 * (database, bucket, trusted key; `importBase` when it needs an active DB), so
 * any one runs alone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { activate } from '../functions/activate.ts';
import { stagedMarker, stagedPrefix } from '../functions/context.ts';
import { load } from '../functions/load.ts';
import { objectExists, removeObjectsUnder } from '../infra/store.ts';
import { beginStage, getImport, stageFailed } from '../infra/import-records/index.ts';
import { rollback } from '../functions/rollback.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { isOukError } from '../lib/errors.ts';
import { writeBundle } from '../bundle/writer.ts';
import { writeSignatureFiles } from '../signing/index.ts';
import { Readable } from 'node:stream';
import path from 'node:path';
import { activeCounts, expiredTimes, makeBundle, pipelineFixture, putBundle, putFile, registerImport, runStages, stageContext, type PipelineFixture } from './pipeline-fixtures.ts';
import type { SyntheticBundle } from './fixtures/synthetic-bundle.ts';
import type { StagePayload } from '../functions/context.ts';
import { TABLES } from '../bundle/tables.ts';
import { ident, withActiveSnapshot } from '../infra/db.ts';

/** Each test's own world: a database, an s3rver bucket and a key pair the stages trust. */
let fx: PipelineFixture;

beforeEach(async () => {
  fx = await pipelineFixture('pipeline-stages');
});
afterEach(async () => {
  await fx?.close();
});

type Uploaded = StagePayload & { size: number };

const register = (p: Uploaded, flags: { allowDowngrade?: boolean; force?: boolean } = {}): Promise<void> => registerImport(fx, p, flags);

/** The first full kit, 2026-11-20 (300 advisories, seed 1), uploaded and registered. */
async function uploadBase(): Promise<{ bundle: SyntheticBundle; payload: Uploaded }> {
  const bundle = await makeBundle(fx, 'full-1.tar.gz', { version: '2026-11-20', advisories: 300, imageBytes: 1000 });
  const payload = await putBundle(fx, bundle.path, 'stella-ouk-2026-11-20.tar.gz');
  await register(payload);
  return { bundle, payload };
}

/** That kit taken through every stage: the active DB most tests start from. */
async function importBase(): Promise<{ bundle: SyntheticBundle; payload: Uploaded }> {
  const base = await uploadBase();
  await runStages(base.payload, stageContext(fx));
  return base;
}

/** A signed kit (2026-11-21) with one byte flipped after signing, uploaded and registered as `stella-ouk-<name>.tar.gz`. */
async function uploadTampered(name: string, advisories: number): Promise<Uploaded> {
  const b = await makeBundle(fx, `${name}.tar.gz`, { version: '2026-11-21', advisories });
  const buf = fs.readFileSync(b.path);
  buf[buf.length - 100] ^= 0xff;
  fs.writeFileSync(b.path, buf);
  const p = await putBundle(fx, b.path, `stella-ouk-${name}.tar.gz`);
  await register(p);
  return p;
}

/** Every row of every table of the active DB, sorted, from one snapshot. */
async function activeRows(): Promise<Record<string, string[]>> {
  return withActiveSnapshot(fx.pool, async (client, active) => {
    const out: Record<string, string[]> = {};
    for (const t of TABLES) {
      const r = await client.query<{ row: string }>(`SELECT x::text AS row FROM ${ident(active.schema)}.${ident(t.name)} x`);
      out[t.name] = r.rows.map((x) => x.row).sort();
    }
    return out;
  });
}

function code(e: unknown): string {
  return isOukError(e) ? e.code : `not an OukError: ${String(e)}`;
}

async function rejectsWith(fn: () => Promise<unknown>, want: string, re?: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    assert.equal(code(e), want, (e as Error).message);
    if (re) assert.match((e as Error).message, re);
    return e as Error;
  }
  assert.fail(`expected ${want}`);
}

describe('stages', () => {
  test('a full bundle goes verify → unpack → load → activate and becomes the active DB', async () => {
    const { bundle: b, payload: first } = await uploadBase();
    const ctx = stageContext(fx);

    const v = await verify(first, ctx);
    assert.equal(v.digest, b.sha256);
    assert.equal(v.version, '2026-11-20');
    assert.ok(ctx.reports.some((r) => r.unit === 'bytes' && r.done === b.size), 'verify reports the bytes it checked');

    const u = await unpack(first, ctx);
    assert.equal(u.members, b.manifest.members.length);
    assert.ok(await objectExists(fx.s3.store, fx.s3.bucket, stagedMarker(b.sha256, first.importId)));
    assert.ok(await objectExists(fx.s3.store, fx.s3.bucket, `${stagedPrefix(b.sha256, first.importId)}db/advisories.tsv`));

    const l = await load(first, ctx);
    assert.deepEqual(l.counts, b.counts);
    // Loaded but not active: readers still see nothing.
    assert.equal((await readActivePointer(fx.pool)).activeImport, null);

    const a = await activate(first, ctx);
    assert.equal(a.version, '2026-11-20');
    const active = await activeCounts(fx.pool);
    assert.equal(active.version, '2026-11-20');
    assert.deepEqual(active.counts, b.counts);
    const rec = await getImport(fx.pool, first.importId);
    assert.equal(rec?.state, 'active');
    assert.equal(rec?.stages.activate?.state, 'done');
    // Staged members are removed once active.
    assert.equal(await objectExists(fx.s3.store, fx.s3.bucket, stagedMarker(b.sha256, first.importId)), false);
    const pk = await fx.pool.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1`, [a.schema]);
    assert.ok(pk.rows[0].n >= 7, 'primary key and indexes are built');
  });

  test('running every stage again changes nothing', async () => {
    const { payload: first } = await importBase();
    const before = await fx.pool.query('SELECT count(*)::int AS n FROM ouk_meta.activations');
    const ctx = stageContext(fx);
    await verify(first, ctx);
    await unpack(first, ctx);
    await load(first, ctx);
    const again = await activate(first, ctx);
    assert.equal(again.already, true);
    const afterN = await fx.pool.query('SELECT count(*)::int AS n FROM ouk_meta.activations');
    assert.equal(afterN.rows[0].n, before.rows[0].n);
    assert.equal((await activeCounts(fx.pool)).version, '2026-11-20');
  });

  test('a tampered tarball stops at verify and the old DB stays active', async () => {
    await importBase();
    const p = await uploadTampered('tampered', 50);
    await rejectsWith(() => verify(p, stageContext(fx)), 'SIGNATURE_MISMATCH');
    const rec = await getImport(fx.pool, p.importId);
    assert.equal(rec?.digest, null, 'nothing from a bundle that failed verification is recorded');
    assert.equal((await activeCounts(fx.pool)).version, '2026-11-20');
  });

  test('a bundle whose .sig is not beside it is refused at once (not retried), saying what to do', async () => {
    const b = await makeBundle(fx, 'nosig.tar.gz', { version: '2026-11-22', advisories: 20 });
    const p = await putBundle(fx, b.path, 'stella-ouk-nosig.tar.gz', false);
    await register(p);
    const e = await rejectsWith(() => verify(p, stageContext(fx, { attempt: { number: 1, max: 3 } })), 'SIGNATURE_MISSING', /no signature stella-ouk-nosig\.tar\.gz\.sig beside the tarball.*resumes by itself.*stella ouk retry/);
    assert.equal((e as { retryable?: boolean }).retryable, false, 'the tarball is complete: waiting would only hide the fault');
  });

  test('a bundle signed by a key the host does not trust is refused', async () => {
    const other = await pipelineFixtureKeyOnly();
    const b = await makeBundle(fx, 'foreign.tar.gz', { version: '2026-11-23', advisories: 10 }, false);
    await writeSignatureFiles(b.path, other);
    const p = await putBundle(fx, b.path, 'stella-ouk-foreign.tar.gz');
    await register(p);
    await rejectsWith(() => verify(p, stageContext(fx)), 'SIGNATURE_MISMATCH');
  });

  test('an older or equal version is refused unless allowed; an expired one unless forced', async () => {
    await importBase();
    const old = await makeBundle(fx, 'old.tar.gz', { version: '2026-11-10', advisories: 10 });
    const p = await putBundle(fx, old.path, 'stella-ouk-2026-11-10.tar.gz');
    await register(p);
    await rejectsWith(() => verify(p, stageContext(fx)), 'DOWNGRADE_REFUSED', /older than the active 2026-11-20.*--allow-downgrade/);
    const same = await makeBundle(fx, 'same.tar.gz', { version: '2026-11-20', advisories: 11 });
    const ps = await putBundle(fx, same.path, 'stella-ouk-same.tar.gz');
    await register(ps);
    await rejectsWith(() => verify(ps, stageContext(fx)), 'DOWNGRADE_REFUSED', /same version/);
    await register(p, { allowDowngrade: true });
    const v = await verify(p, stageContext(fx));
    assert.equal(v.version, '2026-11-10');

    const times = expiredTimes();
    const exp = await makeBundle(fx, 'expired.tar.gz', { version: '2026-11-24', advisories: 10, ...times });
    const pe = await putBundle(fx, exp.path, 'stella-ouk-expired.tar.gz');
    await register(pe);
    await rejectsWith(() => verify(pe, stageContext(fx)), 'BUNDLE_EXPIRED', new RegExp(`expired at ${times.expires.slice(0, 10)}.*--force`));
    // the stage's clock decides, not the wall clock: a day before it expired, the same kit passes
    const pb = await putBundle(fx, exp.path, 'stella-ouk-expired-b.tar.gz');
    await register(pb);
    const dayBefore = new Date(Date.parse(times.expires) - 86_400_000);
    assert.equal((await verify(pb, stageContext(fx, { now: () => dayBefore }))).version, '2026-11-24');
    await register(pe, { force: true });
    assert.equal((await verify(pe, stageContext(fx))).version, '2026-11-24');
  });

  test('activate re-checks the version order under the lock', async () => {
    // The downgrade passed verify with --allow-downgrade; a newer import activated since must not be undone without it.
    const { payload: first } = await importBase();
    const b = await makeBundle(fx, 'race.tar.gz', { version: '2026-11-20', advisories: 12 });
    const p = await putBundle(fx, b.path, 'stella-ouk-race.tar.gz');
    await register(p, { allowDowngrade: true });
    const ctx = stageContext(fx);
    await verify(p, ctx);
    await unpack(p, ctx);
    await load(p, ctx);
    await fx.pool.query('UPDATE ouk_meta.imports SET allow_downgrade = false WHERE id = $1', [p.importId]);
    await rejectsWith(() => activate(p, ctx), 'DOWNGRADE_REFUSED');
    assert.equal((await activeCounts(fx.pool)).version, '2026-11-20');
    assert.equal((await readActivePointer(fx.pool)).activeImport, first.importId);
  });

  test('a member that does not match the signed manifest stops unpack, and nothing stays staged', async () => {
    const b = await makeBundle(fx, 'liar-src.tar.gz', { version: '2026-11-25', advisories: 10 }, false);
    // Rewrite the bundle with one member's bytes changed but the manifest left as is, and sign THAT.
    const { readBundle } = await import('../bundle/reader.ts');
    const members = new Map<string, Buffer>();
    await readBundle(fs.createReadStream(b.path), {
      async onMember(m, s) {
        const chunks: Buffer[] = [];
        for await (const c of s) chunks.push(c as Buffer);
        members.set(m.path, Buffer.concat(chunks));
      },
    });
    const aliases = Buffer.from(members.get('db/aliases.tsv')!);
    aliases[0] = 'X'.charCodeAt(0);
    members.set('db/aliases.tsv', aliases);
    const out = path.join(fx.dir, 'liar.tar.gz');
    await writeBundle(fs.createWriteStream(out), b.manifest, [...members].map(([p, buf]) => ({ path: p, size: buf.length, open: () => Readable.from([buf]) })));
    await writeSignatureFiles(out, fx.privateKey);
    const p = await putBundle(fx, out, 'stella-ouk-liar.tar.gz');
    await register(p);
    const ctx = stageContext(fx);
    await verify(p, ctx);
    await rejectsWith(() => unpack(p, ctx), 'MEMBER_CHECKSUM_MISMATCH', /db\/aliases\.tsv/);
    const rec = await getImport(fx.pool, p.importId);
    const left: string[] = [];
    for await (const o of fx.s3.store.listObjectsV2(fx.s3.bucket, stagedPrefix(rec!.digest!, p.importId), true)) left.push((o as { name: string }).name);
    assert.deepEqual(left, []);
  });

  test('a second full import switches the DB; rollback goes back to the first, atomically', async () => {
    const { payload: first } = await importBase();
    const firstRows = await activeRows();
    const b = await makeBundle(fx, 'full-2.tar.gz', { version: '2026-11-26', advisories: 400, seed: 2 });
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-11-26.tar.gz');
    await register(p);
    await runStages(p, stageContext(fx));
    const now = await activeCounts(fx.pool);
    assert.equal(now.version, '2026-11-26');
    assert.equal(now.counts.advisories, 400);
    assert.equal((await getImport(fx.pool, first.importId))?.state, 'superseded');

    const r = await rollback(fx.pool, fx.logger);
    assert.equal(r.to.version, '2026-11-20');
    assert.equal((await activeCounts(fx.pool)).counts.advisories, 300);
    assert.deepEqual(await activeRows(), firstRows, 'the first DB again, row for row');
    assert.equal((await getImport(fx.pool, p.importId))?.state, 'rolled-back');
    await rejectsWith(() => rollback(fx.pool, fx.logger), 'NO_PREVIOUS_DB');
  });

  test('a delta applies to its base only, costs its own rows, and rolls back', async () => {
    await importBase();
    const base = await activeCounts(fx.pool); // 2026-11-20, 300 advisories, seed 1
    assert.equal(base.version, '2026-11-20');
    const baseRows = await activeRows();
    const baseDigest = (await readActivePointer(fx.pool)).activeDigest;
    const wrong = await makeBundle(fx, 'delta-wrong.tar.gz', {
      version: '2026-11-28',
      advisories: 0,
      seed: 3,
      delta: { base: { version: '2026-11-26', advisories: 400, seed: 2 }, changed: [1], added: 1, removed: [] },
    });
    const pw = await putBundle(fx, wrong.path, 'stella-ouk-delta-wrong.tar.gz');
    await register(pw);
    await rejectsWith(() => verify(pw, stageContext(fx)), 'DELTA_BASE_MISMATCH', /delta 2026-11-28 \(built on 2026-11-26\) cannot apply to active 2026-11-20: import the full kit 2026-11-26 or the missing deltas \(this delta then resumes by itself once 2026-11-26 is active\)/);

    const d = await makeBundle(fx, 'delta.tar.gz', {
      version: '2026-11-27',
      advisories: 0,
      seed: 5,
      delta: { base: { version: '2026-11-20', advisories: 300, seed: 1 }, changed: [3, 10, 299], added: 5, removed: [7, 8] },
    });
    const pd = await putBundle(fx, d.path, 'stella-ouk-delta-2026-11-27.tar.gz');
    await register(pd);
    await runStages(pd, stageContext(fx));
    const now = await activeCounts(fx.pool);
    assert.equal(now.version, '2026-11-27');
    assert.deepEqual(now.counts, d.counts, 'the active DB has the rows the delta says it yields');
    const st = await readActivePointer(fx.pool);
    assert.equal(st.activeDigest, d.manifest.db.digest);
    const rec = await getImport(fx.pool, pd.importId);
    assert.deepEqual(rec?.stages.activate?.result && (rec.stages.activate.result as { counts: unknown }).counts, d.counts);

    await rollback(fx.pool, fx.logger);
    const back = await activeCounts(fx.pool);
    assert.equal(back.version, '2026-11-20');
    assert.deepEqual(back.counts, base.counts);
    assert.deepEqual(await activeRows(), baseRows, 'the base DB again, row for row');
    assert.equal((await readActivePointer(fx.pool)).activeDigest, baseDigest);
  });

  // What queue/workers.ts does around a stage: beginStage, the stage, and on an error stageFailed, final on the last attempt or a non-retryable error.

  test('a final stage failure is recorded on the import', async () => {
    const p = await uploadTampered('tampered-final', 20);
    await beginStage(fx.pool, p.importId, 'verify', 1);
    const e = await rejectsWith(() => verify(p, stageContext(fx)), 'SIGNATURE_MISMATCH');
    await stageFailed(fx.pool, p.importId, 'verify', code(e), e.message, true);
    const rec = await getImport(fx.pool, p.importId);
    assert.equal(rec?.state, 'failed');
    assert.equal(rec?.errorCode, 'SIGNATURE_MISMATCH');
    assert.equal(rec?.error, e.message);
    assert.equal(rec?.stages.verify?.state, 'failed');
    assert.equal(rec?.stages.verify?.code, 'SIGNATURE_MISMATCH');
    assert.equal(rec?.stages.verify?.error, e.message);
  });

  test('a non-final stage failure is recorded on the stage only, and the next attempt clears it', async () => {
    const b = await makeBundle(fx, 'late-sig.tar.gz', { version: '2026-11-22', advisories: 20 });
    const p = await putBundle(fx, b.path, 'stella-ouk-late-sig.tar.gz', false);
    await register(p);
    await beginStage(fx.pool, p.importId, 'verify', 1);
    const e = await rejectsWith(() => verify(p, stageContext(fx, { attempt: { number: 1, max: 3 } })), 'SIGNATURE_MISSING');
    await stageFailed(fx.pool, p.importId, 'verify', code(e), e.message, false);
    const retrying = await getImport(fx.pool, p.importId);
    assert.equal(retrying?.stages.verify?.state, 'retrying');
    assert.equal(retrying?.stages.verify?.code, 'SIGNATURE_MISSING');
    assert.equal(retrying?.state, 'verifying', 'the import is still in its stage, not failed');
    assert.equal(retrying?.errorCode, null);
    assert.equal(retrying?.error, null);

    // the .sig arrives; the second attempt passes
    await putFile(fx, `${b.path}.sig`, `${p.key}.sig`);
    await beginStage(fx.pool, p.importId, 'verify', 2);
    await verify(p, stageContext(fx, { attempt: { number: 2, max: 3 } }));
    const done = await getImport(fx.pool, p.importId);
    assert.deepEqual([done?.stages.verify?.state, done?.stages.verify?.attempts, done?.stages.verify?.code], ['done', 2, null]);
    assert.equal(done?.errorCode, null);
  });

  test('a failure reported for a stage already done changes nothing: done stays done', async () => {
    const { payload } = await importBase();
    for (const final of [false, true]) {
      await stageFailed(fx.pool, payload.importId, 'verify', 'IMPORT_FAILED', 'a stale report', final);
      const rec = await getImport(fx.pool, payload.importId);
      assert.equal(rec?.stages.verify?.state, 'done');
      assert.equal(rec?.state, 'active', 'a finished import keeps its state');
      assert.equal(rec?.errorCode, null);
    }
    assert.equal((await readActivePointer(fx.pool)).activeImport, payload.importId);
  });

  test('the same bytes under two names: activating one leaves the other\'s staged members alone', async () => {
    const b = await makeBundle(fx, 'twice.tar.gz', { version: '2026-11-28', advisories: 40 });
    const a = await putBundle(fx, b.path, 'drop-a/stella-ouk-2026-11-28.tar.gz');
    const c = await putBundle(fx, b.path, 'drop-b/stella-ouk-2026-11-28.tar.gz');
    await register(a);
    // the same version as `a`, which is active by the time `c` activates
    await register(c, { allowDowngrade: true });
    const ctx = stageContext(fx);
    await verify(a, ctx);
    await verify(c, ctx);
    await unpack(a, ctx);
    await unpack(c, ctx);
    await load(a, ctx);
    await activate(a, ctx);
    assert.equal(await objectExists(fx.s3.store, fx.s3.bucket, stagedMarker(b.sha256, a.importId)), false, 'the activated import cleaned its own staging');
    assert.ok(await objectExists(fx.s3.store, fx.s3.bucket, stagedMarker(b.sha256, c.importId)), 'the other import keeps its staging');
    await load(c, ctx);
    await activate(c, ctx);
    assert.equal((await readActivePointer(fx.pool)).activeImport, c.importId);
    assert.deepEqual((await activeCounts(fx.pool)).counts, b.counts);
  });

  test('load stages the members again when they vanished after unpack', async () => {
    const b = await makeBundle(fx, 'restage.tar.gz', { version: '2026-12-01', advisories: 30 });
    const p = await putBundle(fx, b.path, 'stella-ouk-2026-12-01.tar.gz');
    await register(p);
    const ctx = stageContext(fx);
    await verify(p, ctx);
    await unpack(p, ctx);
    assert.ok((await removeObjectsUnder(fx.s3.store, fx.s3.bucket, stagedPrefix(b.sha256, p.importId))) > 0);
    const l = await load(p, ctx);
    assert.deepEqual(l.counts, b.counts);
    await activate(p, ctx);
    assert.deepEqual((await activeCounts(fx.pool)).counts, b.counts);
  });
});

async function pipelineFixtureKeyOnly(): Promise<string> {
  const { generateKeyPair } = await import('../signing/index.ts');
  const kp = await generateKeyPair();
  const f = path.join(fx.dir, 'other.key');
  fs.writeFileSync(f, kp.privateKeyPem);
  return f;
}
