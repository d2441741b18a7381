/**
 * The import graph (dependency-cruiser, rules in .dependency-cruiser.cjs):
 * the tree has no cycle and no upward or sideways import; and the rules
 * themselves catch both in a small tree built here, so the check can fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot, tmpDir } from './helpers/services.ts';

const CONFIG = path.join(repoRoot, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(repoRoot, 'node_modules', '.bin', 'depcruise');
const TREE = ['lib', 'bundle', 'signing', 'infra', 'identity', 'catalog', 'builder', 'scan', 'functions', 'queue', 'api', 'cli', 'publisher', 'bench', 'test', 'bin', 'dev'];

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

function cruise(cwd: string, dirs: string[]): Violation[] {
  const r = spawnSync(DEPCRUISE, ['--config', CONFIG, '--output-type', 'json', ...dirs], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.ok(r.stdout, `depcruise printed nothing: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

describe('import graph', () => {
  test('no cycles, and every import points down the layers', () => {
    const violations = cruise(repoRoot, TREE.filter((d) => fs.existsSync(path.join(repoRoot, d))));
    assert.deepEqual(
      violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`),
      [],
    );
  });

  test('the rules catch an upward import, a sideways one, product code using tests, a stage using a stage, and a cycle', () => {
    const dir = tmpDir('layers');
    const write = (file: string, text: string): void => {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    };
    write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }));
    write('lib/config.ts', "import { flow } from '../queue/flow.ts';\nexport const c = flow;\n");
    write('queue/flow.ts', 'export const flow = 1;\n');
    write('scan/match.ts', "import { merge } from '../builder/merge.ts';\nexport const m = merge;\n");
    write('builder/merge.ts', 'export const merge = 1;\n');
    write('functions/load.ts', "import { fixture } from '../test/fixtures/x.ts';\nexport const l = fixture;\n");
    write('test/fixtures/x.ts', 'export const fixture = 1;\n');
    write('api/a.ts', "import { b } from './b.ts';\nexport const a = () => b;\n");
    write('api/b.ts', "import { a } from './a.ts';\nexport const b = () => a;\n");
    write('queue/mail.ts', "import { d } from '../publisher/token-desk/desk.ts';\nexport const m = d;\n");
    write('publisher/token-desk/desk.ts', "import { s } from '../../scan/score.ts';\nexport const d = s;\n");
    write('scan/score.ts', 'export const s = 1;\n');
    write('queue/sync-job.ts', "import { s } from '../publisher/sync/index.ts';\nexport const j = s;\n");
    write('publisher/sync/index.ts', "import { db } from '../../infra/db.ts';\nexport const s = db;\n");
    write('infra/db.ts', 'export const db = 1;\n');
    write('functions/activate.ts', "import { l } from './load.ts';\nexport const a = l;\n");
    const found = new Set(cruise(dir, ['lib', 'queue', 'scan', 'builder', 'functions', 'test', 'api', 'publisher', 'infra']).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`));
    for (const want of [
      'lib-is-the-bottom: lib/config.ts → queue/flow.ts',
      'scanner-does-not-use-the-builder: scan/match.ts → builder/merge.ts',
      'production-uses-no-tooling: functions/load.ts → test/fixtures/x.ts',
      'no-circular: api/a.ts → api/b.ts',
      'nothing-below-uses-the-token-desk: queue/mail.ts → publisher/token-desk/desk.ts',
      'token-desk-stands-on-lib-and-infra: publisher/token-desk/desk.ts → scan/score.ts',
      'site-knows-no-publisher: queue/sync-job.ts → publisher/sync/index.ts',
      'publisher-uses-only-the-builder-side: publisher/sync/index.ts → infra/db.ts',
      'no-stage-imports-a-stage: functions/activate.ts → functions/load.ts',
    ]) {
      assert.ok(found.has(want), `expected "${want}" among:\n${[...found].join('\n')}`);
    }
  });
});
