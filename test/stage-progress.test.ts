/** readStageProgress (functions/context.ts): the one reading of a stage job's progress, and its three readers' views of it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProgress } from '../api/dashboard.ts';
import { readStageProgress } from '../functions/context.ts';

test('a StageProgress, a bare percentage and {progress} read the same way everywhere', () => {
  assert.deepEqual(readStageProgress({ unit: 'bytes', done: 50, total: 200 }), { done: 50, total: 200, unit: 'bytes', percent: 25 });
  assert.deepEqual(readStageProgress({ unit: 'rows', done: 7, total: null }), { done: 7, total: null, unit: 'rows', percent: null });
  assert.equal(readStageProgress(42)?.percent, 42);
  assert.equal(readStageProgress({ progress: 10 })?.percent, 10);
  assert.equal(readStageProgress({ done: 300, total: 200 })?.percent, 100);
  for (const junk of [null, 'x', [1], undefined]) assert.equal(readStageProgress(junk), null);
  // the dashboard adds the ring's percentage and keeps the raw counters
  assert.deepEqual(formatProgress({ unit: 'members', done: 1, total: 4 }), { unit: 'members', done: 1, total: 4, progress: 25 });
  assert.deepEqual(formatProgress({ unit: 'members', done: 1, total: null }), { unit: 'members', done: 1, total: null });
});
