/** lib/errors.ts failureText / parseFailureText: a job's failure text carries its code, read back by the same rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failureText, OukError, parseFailureText } from '../lib/errors.ts';

test('a failure text round-trips its code and message; text without a known code keeps all of it', () => {
  const e = new OukError('SIGNATURE_MISSING', 'no .sig beside it: upload it');
  assert.deepEqual(parseFailureText(failureText(e)), { code: 'SIGNATURE_MISSING', message: 'no .sig beside it: upload it' });
  assert.deepEqual(parseFailureText('error[DIGEST_CHANGED]: replaced'), { code: 'DIGEST_CHANGED', message: 'replaced' });
  assert.deepEqual(parseFailureText('NOT_A_CODE: whatever'), { code: null, message: 'NOT_A_CODE: whatever' });
  assert.deepEqual(parseFailureText('job stalled more than allowable limit'), { code: null, message: 'job stalled more than allowable limit' });
});
