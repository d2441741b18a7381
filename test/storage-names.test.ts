/** lib/storage-names.ts: every name made is read back by its parser, and nothing else is. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importIdOfJobId, jobIdFor, parseSchemaName, parseStagedKey, schemaName, SCHEMA_KINDS, stagedMarker, stagedPrefix } from '../lib/storage-names.ts';

const ID = '0123456789abcdef01234567';
const DIGEST = 'a'.repeat(64);

describe('storage names', () => {
  test('schema names round-trip, and other names do not parse', () => {
    for (const kind of SCHEMA_KINDS) assert.deepEqual(parseSchemaName(schemaName(kind, ID)), { kind, importId: ID });
    for (const other of ['ouk_meta', `ouk_db_${ID}x`, `ouk_old_${ID}`, `public`]) assert.equal(parseSchemaName(other), null);
    assert.throws(() => schemaName('db', 'not-an-id'), /not an import id/);
  });

  test('staged keys round-trip to their prefix and import', () => {
    assert.deepEqual(parseStagedKey(`${stagedPrefix(DIGEST, ID)}db/advisories.tsv`), { prefix: stagedPrefix(DIGEST, ID), digest: DIGEST, importId: ID });
    assert.equal(parseStagedKey(stagedMarker(DIGEST, ID))?.importId, ID);
    assert.equal(parseStagedKey(`staged/${DIGEST}/short/x`), null);
    assert.equal(parseStagedKey('mirror/stella-ouk-2026-12-01.tar.gz'), null);
  });

  test('job ids round-trip for their own stage only', () => {
    assert.equal(importIdOfJobId(jobIdFor(ID, 'load'), 'load'), ID);
    assert.equal(importIdOfJobId(jobIdFor(ID, 'load'), 'verify'), null);
  });
});
