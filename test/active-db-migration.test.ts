/** Migration 007 renames the active-DB pointer (ouk_meta.state → ouk_meta.active_db): a site upgrading keeps its pointer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readActivePointer } from '../infra/active-db.ts';
import { createPool, migrate } from '../infra/db.ts';
import { createTestDatabase } from './helpers/services.ts';

test('an upgraded site keeps its active DB and its previous one', async () => {
  const db = await createTestDatabase('active-db-migration');
  const pool = createPool(db.url, 2);
  try {
    await migrate(pool);
    // The database as a site before 007 has it: the pointer under its old name, pointing somewhere.
    await pool.query('ALTER TABLE ouk_meta.active_db RENAME TO state');
    await pool.query(`DELETE FROM ouk_meta.migrations WHERE name = '007_active_db.sql'`);
    await pool.query(
      `UPDATE ouk_meta.state SET active_import = 'a', active_version = '2026.11.27', active_schema = 'ouk_db_a', active_digest = 'd', previous_import = 'p', activated_at = '2026-11-27T00:00:00Z'`,
    );
    await migrate(pool);
    const pointer = await readActivePointer(pool);
    assert.deepEqual(
      [pointer.activeImport, pointer.activeVersion, pointer.activeSchema, pointer.activeDigest, pointer.previousImport],
      ['a', '2026.11.27', 'ouk_db_a', 'd', 'p'],
    );
    assert.equal((await pool.query(`SELECT to_regclass('ouk_meta.state') AS t`)).rows[0].t, null);
  } finally {
    await pool.end();
    await db.drop();
  }
});
