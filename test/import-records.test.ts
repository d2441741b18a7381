/**
 * The import record's owner (infra/import-records/): the state machine its
 * named transitions check, and the state groups every caller uses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPool, migrate, type Pool } from '../infra/db.ts';
import {
  createImport,
  FINISHED_STATES,
  getImport,
  markActive,
  MOVES_TO,
  requeue,
  requeueForReactivation,
  rollBack,
  stageFailed,
  supersede,
  UNFINISHED_STATES,
  type ImportState,
} from '../infra/import-records/index.ts';
import { isOukError } from '../lib/errors.ts';
import { createTestDatabase, type TestDatabase } from './helpers/services.ts';

let db: TestDatabase;
let pool: Pool;
let n = 0;

async function importIn(state: ImportState): Promise<string> {
  const id = (++n).toString(16).padStart(24, '0');
  await createImport(pool, { id, bucket: 'b', objectKey: `k${n}`, etag: 'e', size: null, allowDowngrade: false, force: false, startedBy: 'cli' });
  // the test's own way into a state: the owner has no "set any state" on purpose
  await pool.query('UPDATE ouk_meta.imports SET state = $2 WHERE id = $1', [id, state]);
  return id;
}

async function stateOf(id: string): Promise<ImportState | undefined> {
  return (await getImport(pool, id))?.state;
}

describe('import records', () => {
  before(async () => {
    db = await createTestDatabase('import-records');
    pool = createPool(db.url, 2);
    await migrate(pool);
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  test('the groups split the states: unfinished, finished, and failed apart', () => {
    const all = Object.keys(MOVES_TO).sort();
    assert.deepEqual([...UNFINISHED_STATES, ...FINISHED_STATES, 'failed'].sort(), all);
  });

  test('activation, supersession and rollback follow the machine', async () => {
    const a = await importIn('activating');
    await markActive(pool, a, new Date('2026-01-01T00:00:00Z'));
    assert.equal(await stateOf(a), 'active');
    const b = await importIn('activating');
    await supersede(pool, a);
    await markActive(pool, b, new Date('2026-01-02T00:00:00Z'));
    assert.equal(await stateOf(a), 'superseded');
    await rollBack(pool, b, a);
    assert.deepEqual([await stateOf(a), await stateOf(b)], ['active', 'rolled-back']);
    await requeueForReactivation(pool, b);
    assert.equal(await stateOf(b), 'queued');
    assert.equal((await getImport(pool, b))?.allowDowngrade, true);
  });

  test('a move the machine lacks is refused with a code and changes nothing', async () => {
    const failed = await importIn('failed');
    await assert.rejects(supersede(pool, failed), (e) => isOukError(e) && e.code === 'IMPORT_FAILED' && /is failed and cannot become superseded/.test(e.message));
    const queued = await importIn('queued');
    await assert.rejects(requeueForReactivation(pool, await importIn('active')), (e) => isOukError(e) && e.code === 'IMPORT_FAILED');
    await assert.rejects(rollBack(pool, queued, failed), (e) => isOukError(e) && e.code === 'IMPORT_FAILED');
    assert.deepEqual([await stateOf(failed), await stateOf(queued)], ['failed', 'queued']);
    await assert.rejects(markActive(pool, 'f'.repeat(24), new Date()), (e) => isOukError(e) && e.code === 'IMPORT_NOT_FOUND');
  });

  test('a retry or a final failure leaves a finished import as it is', async () => {
    const active = await importIn('active');
    await requeue(pool, active);
    await stageFailed(pool, active, 'images', 'REGISTRY_UNAVAILABLE', 'down', true);
    assert.equal(await stateOf(active), 'active');
    const failed = await importIn('failed');
    await requeue(pool, failed);
    assert.equal(await stateOf(failed), 'queued');
  });
});
