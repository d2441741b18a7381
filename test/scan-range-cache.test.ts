/**
 * The per-process cache of compiled ranges and versions (scan/range-cache.ts):
 * a cached entry answers exactly as the uncached evaluation does, on every
 * affected entry of a sample of real OSV records and a spread of versions;
 * keys cannot collide across ecosystems; unreadable JSON stays unreadable;
 * the bound holds and an aged entry still answers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createRangeCache } from '../scan/range-cache.ts';
import { evaluate, evaluateCompiled, type OsvRange } from '../scan/ranges.ts';
import { sharedDir } from './helpers/services.ts';

interface OsvAffected {
  package?: { ecosystem?: string };
  ranges?: OsvRange[];
  versions?: string[];
}

function sample(ecosystemDir: string, n: number): OsvAffected[] {
  const dir = path.join(sharedDir, 'feeds', 'osv', ecosystemDir);
  return fs
    .readdirSync(dir)
    .sort()
    .slice(0, n)
    .flatMap((f) => (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { affected?: OsvAffected[] }).affected ?? []);
}

describe('range cache', () => {
  it('answers as the uncached evaluation on real records, whatever was cached before', () => {
    const cache = createRangeCache(3_000); // small: entries age through both generations during the test
    let compared = 0;
    for (const dir of fs.readdirSync(path.join(sharedDir, 'feeds', 'osv')).sort()) {
      for (const a of sample(dir, 15)) {
        const eco = a.package?.ecosystem ?? '';
        const ranges = a.ranges ?? [];
        const list = a.versions ?? [];
        const events = ranges.flatMap((r) => r.events ?? []).flatMap((e) => Object.values(e) as string[]);
        const versions = [...new Set([...events, ...list.slice(0, 3), '0.0.1', '1.0.0', '99.0.0', 'not a version'])].filter((v) => v !== '0');
        const rangesText = JSON.stringify(ranges);
        const versionsText = JSON.stringify(list);
        for (const v of versions) {
          const compiled = cache.ranges(eco, rangesText);
          assert.ok(compiled);
          assert.deepEqual(evaluateCompiled(compiled, v, () => cache.versions(versionsText)), evaluate(eco, v, ranges, list), `${eco} ${rangesText} at ${v}`);
          compared++;
        }
      }
    }
    assert.ok(compared > 500, `only ${compared} checks`);
  });

  it('keeps ecosystems apart and unreadable rows unreadable', () => {
    const cache = createRangeCache();
    const ranges = JSON.stringify([{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.0' }] }]);
    const pypi = cache.ranges('PyPI', ranges)!;
    const npm = cache.ranges('npm', ranges)!;
    assert.equal(pypi.ecosystem, 'PyPI');
    assert.equal(npm.ecosystem, 'npm');
    // "1.0" is a PEP 440 version, not an npm one
    assert.equal(evaluateCompiled(pypi, '0.9', () => null).status, 'affected');
    assert.equal(evaluateCompiled(npm, '0.9', () => null).status, 'undetermined');
    // an ecosystem that looks like the start of a key does not reach another's entry
    assert.equal(cache.ranges('3:npm', ranges)!.ecosystem, '3:npm');
    assert.equal(cache.ranges('npm', '{"not":"an array"}'), null);
    assert.equal(cache.ranges('npm', 'not json'), null);
    assert.equal(cache.versions('nope'), null);
    assert.deepEqual(cache.versions('["1.0.0","2.0.0"]')!.list, ['1.0.0', '2.0.0']);
  });
});
