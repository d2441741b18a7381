/**
 * Names from outside reach the terminal escaped. An import
 * record holds an object key with an OSC title sequence, a screen clear and a
 * newline that would forge a row of the status table, a kit version with a
 * bidi override, and a failure message with escape sequences; a BullMQ job
 * failed with such a reason. `stella ouk status` and `stella ouk jobs`
 * (the real CLI, NO_COLOR or not), and the error line of a command given a
 * hostile name, print no control byte but their own newlines, and no forged
 * line: every hostile character shows as a visible escape (`\x1b`, `\n`, …).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { stageFailed } from '../infra/import-records/index.ts';
import { describeError, OukError } from '../lib/errors.ts';
import { excerpt, hasTerminalControl, terminalLines, terminalText } from '../lib/terminal-text.ts';
import { jobIdFor } from '../queue/identity.ts';
import { recordImport } from '../queue/ingest.ts';
import { runStella, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';
import { fixtureEnv, pipelineFixture, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const ESC = '\u001b';
const BEL = '\u0007';
/** Sets the window title, clears the screen, homes the cursor — and a newline that starts a forged row. */
const HOSTILE_KEY = `stella-ouk-${ESC}]0;owned${BEL}${ESC}[2J${ESC}[H\nFORGED-IMPORT  2099-01-01  ACTIVE  .tar.gz`;
const HOSTILE_VERSION = '2026-12-01\u202egnp.exe';
const HOSTILE_ERROR = `manifest says ${ESC}[31mall good${ESC}[0m\r\nFORGED-LINE ok\u009b2J`;
const JOB_REASON = `${ESC}]0;pwned${BEL}bad job\nFORGED-JOB-LINE`;

/** Bytes a terminal would act on: every C0 control but the newline, DEL, C1, line separators, bidi controls. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u061c\u200e\u200f]/;

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let importId: string;

function stella(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: fixtureEnv(fx, redis, extra) });
}

/** The output holds no raw control byte but newlines, and no line of it starts with a forged row. */
function assertInert(what: string, text: string): void {
  const bad = RAW_CONTROL.exec(text);
  assert.equal(bad, null, `${what} printed a raw U+${bad?.[0].charCodeAt(0).toString(16).padStart(4, '0')}:\n${JSON.stringify(text)}`);
  for (const line of text.split('\n')) assert.doesNotMatch(line, /^\s*FORGED/, `${what} printed a forged line: ${JSON.stringify(line)}`);
}

before(async () => {
  fx = await pipelineFixture('terminal-text');
  redis = testRedisPrefix('terminal-text');
  const rec = await recordImport(fx.pool, { bucket: fx.s3.bucket, key: HOSTILE_KEY, etag: '0123456789abcdef0123456789abcdef', size: 1 }, {}, 'webhook');
  importId = rec.record.id;
  await fx.pool.query('UPDATE ouk_meta.imports SET version = $2 WHERE id = $1', [importId, HOSTILE_VERSION]);
  await stageFailed(fx.pool, importId, 'verify', 'MANIFEST_INVALID', HOSTILE_ERROR, true);

  // a verify job in BullMQ, failed with a hostile reason: `stella ouk jobs` reads it live
  const connection = new Redis(redis.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('verify', { connection, prefix: redis.prefix });
  const worker = new Worker(
    'verify',
    async () => {
      throw new UnrecoverableError(JOB_REASON);
    },
    { connection, prefix: redis.prefix },
  );
  await queue.add('verify', { importId }, { jobId: jobIdFor(importId, 'verify'), attempts: 1 });
  await waitFor('the verify job to fail', async () => (await queue.getJob(jobIdFor(importId, 'verify')))?.isFailed());
  await worker.close();
  await queue.close();
  connection.disconnect();
});

after(async () => {
  await redis?.cleanup();
  await fx?.close();
});

describe('names from outside reach the terminal escaped', () => {
  it('terminalText writes out C0, DEL, C1, line separators and bidi controls, and nothing else', () => {
    assert.equal(terminalText('plain key-1.tar.gz (ok) ünïcödé \\ back'), 'plain key-1.tar.gz (ok) ünïcödé \\ back');
    assert.equal(terminalText(`a\nb\r\tc${ESC}[2J${BEL}\u0000\u007f`), 'a\\nb\\r\\tc\\x1b[2J\\x07\\x00\\x7f');
    assert.equal(terminalText('\u009b31m \u2028 \u202e \u2066 \u200f'), '\\x9b31m \\u2028 \\u202e \\u2066 \\u200f');
    assert.equal(hasTerminalControl(HOSTILE_KEY), true);
    assert.equal(hasTerminalControl('stella-ouk-2026-12-01.tar.gz'), false);
    assert.equal(terminalLines(['one', `two\nFORGED`]), 'one\ntwo\\nFORGED\n');
    // an excerpt: the first characters, escaped, and the length — never the whole
    const long = `${ESC}[2J${'x'.repeat(5000)}`;
    const e = excerpt(long, 40);
    assert.ok(e.length < 80, e);
    assert.match(e, /^\\x1b\[2Jx+… \(5004 characters\)$/);
    // describeError: one line, escaped
    const line = describeError(new OukError('USAGE', HOSTILE_ERROR));
    assert.doesNotMatch(line, RAW_CONTROL);
    assert.equal(line.split('\n').length, 1);
    assert.equal(describeError(new Error(`boom\n${ESC}[2J`)), 'error[INTERNAL]: boom\\n\\x1b[2J');
  });

  for (const noColor of [false, true]) {
    it(`stella ouk status prints the hostile key, version and error escaped${noColor ? ' (NO_COLOR=1)' : ''}`, async () => {
      const r = await stella(['ouk', 'status'], noColor ? { NO_COLOR: '1' } : {});
      assert.equal(r.code, 0, r.stderr);
      assertInert('stella ouk status', r.stdout + r.stderr);
      // the operator still sees what the strings hold, as escapes, on the import's own line
      const row = r.stdout.split('\n').find((l) => l.startsWith(importId));
      assert.ok(row, r.stdout);
      assert.ok(row.includes('stella-ouk-\\x1b]0;owned\\x07\\x1b[2J\\x1b[H\\nFORGED-IMPORT'), row);
      assert.ok(row.includes('2026-12-01\\u202egnp.exe'), row);
      assert.match(r.stdout, /└ MANIFEST_INVALID: manifest says \\x1b\[31mall good\\x1b\[0m\\r\\nFORGED-LINE ok\\x9b2J\n/);
    });
  }

  it('stella ouk jobs (and --failed) print the key, the record\'s error and the job\'s failed reason escaped', async () => {
    for (const args of [['ouk', 'jobs'], ['ouk', 'jobs', '--failed']]) {
      const r = await stella(args);
      assert.equal(r.code, 0, r.stderr);
      assertInert(args.join(' '), r.stdout + r.stderr);
      assert.ok(r.stdout.includes('\\x1b]0;pwned\\x07bad job FORGED-JOB-LINE'), r.stdout); // the live job's reason, on one line
      assert.ok(r.stdout.includes(`${importId}  2026-12-01\\u202egnp.exe  FAILED  stella-ouk-\\x1b]0;owned`), r.stdout);
    }
    // JSON stays JSON: the strings are whole, escaped by JSON.stringify
    const json = await stella(['ouk', 'jobs', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.doesNotMatch(json.stdout, /[\u0000-\u0009\u000b-\u001f]/);
    const view = (JSON.parse(json.stdout) as { imports: Array<{ id: string; objectKey: string }> }).imports.find((i) => i.id === importId);
    assert.equal(view?.objectKey, HOSTILE_KEY);
  });

  it('an error line naming a hostile name is one escaped line; a 5,000-character name is echoed as a short excerpt', async () => {
    const path = `/nonexistent/${ESC}]0;owned${BEL}\nFORGED-ERROR.tar.gz`;
    const verify = await stella(['ouk', 'verify', path, '--key', fx.publicKey]);
    assert.equal(verify.code, 41, verify.stderr);
    assertInert('stella ouk verify', verify.stdout + verify.stderr);
    assert.equal(verify.stderr.trimEnd().split('\n').length, 1, verify.stderr);
    assert.ok(verify.stderr.includes('/nonexistent/\\x1b]0;owned\\x07\\nFORGED-ERROR.tar.gz'), verify.stderr);

    const name = `${ESC}[2J${'n'.repeat(5000)}`;
    const diff = await stella(['sbom', 'diff', name]);
    assert.equal(diff.code, 2, diff.stderr);
    assertInert('stella sbom diff', diff.stderr);
    assert.ok(diff.stderr.length < 400, `the error echoes ${diff.stderr.length} characters`);
    assert.match(diff.stderr, /^error\[USAGE\]: SBOM name "\\x1b\[2Jn+… \(5004 characters\)" is not usable/);
  });
});
