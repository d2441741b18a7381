/**
 * The alias graph's compact storage (builder/id-table.ts): ids numbered once,
 * found again by their bytes whatever string object carries them, past every
 * growth of the arena and the hash index; and the union-find on top of it
 * giving the same components and primary ids as a plain Map would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { primaryId } from '../bundle/advisory-id.ts';
import { IdTable } from '../builder/id-table.ts';
import { AliasGraph } from '../builder/merge-key.ts';

describe('IdTable', () => {
  it('numbers each distinct id once, in first-seen order, and gives it back', () => {
    const t = new IdTable();
    const ids = Array.from({ length: 50_000 }, (_, i) => (i % 3 === 0 ? `CVE-2021-${i}` : i % 3 === 1 ? `DSA-é${i}-ü` : `GHSA-${i}`));
    ids.forEach((id, i) => assert.equal(t.intern(id), i));
    assert.equal(t.size, ids.length);
    // the same ids again, as other string objects (slices of a longer text)
    const text = ids.join('\n');
    let at = 0;
    for (const [i, id] of ids.entries()) {
      const copy = text.slice(at, at + id.length);
      at += id.length + 1;
      assert.equal(t.intern(copy), i);
      assert.equal(t.find(copy), i);
      assert.equal(t.get(i), id);
    }
    assert.equal(t.size, ids.length);
    assert.equal(t.find('CVE-2021-1'), -1);
    assert.equal(t.find(''), -1);
    assert.equal(t.intern(''), ids.length);
    assert.equal(t.get(ids.length), '');
  });
});

describe('AliasGraph', () => {
  it('an id seen again after it was added last keeps its component', () => {
    const g = new AliasGraph();
    g.add(['GO-1', 'CVE-2020-0002']);
    g.add(['CVE-2020-0002', 'GHSA-aaaa-bbbb-cccc']);
    g.add(['CVE-2020-0001', 'GHSA-aaaa-bbbb-cccc']);
    g.freeze();
    for (const id of ['GO-1', 'CVE-2020-0002', 'GHSA-aaaa-bbbb-cccc', 'CVE-2020-0001']) assert.equal(g.keyOf(id), 'CVE-2020-0001');
    assert.equal(g.size, 4);
    assert.throws(() => g.add(['X']), /after freeze/);
  });

  it('components and primary ids match a reference union of id sets on a random graph', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const name = (i: number): string => [`CVE-20${10 + (i % 15)}-${1000 + i}`, `GHSA-${i}`, `GO-${i}`, `DSA-${i}`][i % 4]!;
    const g = new AliasGraph();
    // reference: components as sets, merged naively
    const comp = new Map<string, Set<string>>();
    for (let r = 0; r < 3000; r++) {
      const ids = Array.from({ length: 1 + rnd(3) }, () => name(rnd(6000)));
      g.add(ids);
      const merged = new Set<string>();
      for (const id of ids) for (const x of comp.get(id) ?? [id]) merged.add(x);
      for (const x of merged) comp.set(x, merged);
    }
    g.freeze();
    for (const [id, set] of comp) assert.equal(g.keyOf(id), primaryId(set), id);
    assert.equal(g.size, comp.size);
  });
});
