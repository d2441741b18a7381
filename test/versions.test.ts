/**
 * Version ordering per ecosystem, against every vector of osv-scalibr's
 * semantic test data (../shared/conformance/osv-semantic, see its SOURCES.md):
 * each `a OP b` line must hold both ways round.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compare, parse, schemeFor, supportedEcosystems } from '../scan/versions/index.ts';
import { sharedDir } from './helpers/services.ts';

const VECTORS = path.join(sharedDir, 'conformance/osv-semantic');

/** Which orderings each vector file is run against (the file name names the ecosystem). */
const FILE_ECOSYSTEMS: Record<string, string[]> = {
  alpine: ['Alpine:v3.18', 'Wolfi'],
  debian: ['Debian:12', 'Ubuntu:22.04:LTS'],
  maven: ['Maven'],
  nuget: ['NuGet'],
  packagist: ['Packagist'],
  pypi: ['PyPI'],
  redhat: ['Red Hat', 'AlmaLinux:9', 'Rocky Linux:8', 'openSUSE:Leap 15.5'],
  rubygems: ['RubyGems'],
  semver: ['SEMVER', 'npm', 'crates.io', 'Go', 'Bitnami'],
};

interface Vector {
  line: number;
  a: string;
  op: '<' | '=' | '>';
  b: string;
}

function readVectors(file: string): Vector[] {
  const out: Vector[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text === '' || text.startsWith('# ') || text.startsWith('// ')) return;
      const parts = text.split(' ');
      assert.equal(parts.length, 3, `${path.basename(file)}:${i + 1}: cannot read "${text}"`);
      const [a, op, b] = parts as [string, string, string];
      assert.ok(op === '<' || op === '=' || op === '>', `${path.basename(file)}:${i + 1}: operator ${op}`);
      out.push({ line: i + 1, a, op, b });
    });
  return out;
}

const EXPECT = { '<': -1, '=': 0, '>': 1 } as const;

describe('osv-scalibr conformance vectors', () => {
  const files = fs.readdirSync(VECTORS).filter((f) => f.endsWith('.txt')).sort();
  it('finds the vector files', () => {
    assert.ok(files.length >= 9, `only ${files.length} vector files in ${VECTORS}`);
  });
  for (const file of files) {
    const key = file.replace(/-versions.*$/, '');
    const ecosystems = FILE_ECOSYSTEMS[key];
    it(`${file} has an ecosystem mapping`, () => assert.ok(ecosystems, `no ecosystem for ${file}`));
    for (const eco of ecosystems ?? []) {
      it(`${file} under ${eco}: every line holds both ways`, () => {
        const vectors = readVectors(path.join(VECTORS, file));
        assert.ok(vectors.length > 0);
        const failures: string[] = [];
        for (const v of vectors) {
          const want = EXPECT[v.op];
          let ab: number | string;
          let ba: number | string;
          try {
            ab = compare(eco, v.a, v.b);
            ba = compare(eco, v.b, v.a);
          } catch (e) {
            ab = ba = `threw ${(e as Error).message}`;
          }
          if (ab !== want || ba !== -want) failures.push(`line ${v.line}: ${v.a} ${v.op} ${v.b} (got ${ab}, reversed ${ba})`);
        }
        assert.deepEqual(failures, [], `${failures.length} of ${vectors.length} failed:\n${failures.slice(0, 30).join('\n')}`);
      });
    }
  }
});

describe('validity (what can be checked)', () => {
  const cases: [string, string, boolean][] = [
    ['npm', '4.17.20', true],
    ['npm', 'v1.2.3', true],
    ['npm', '^1.2.3', false],
    ['npm', 'latest', false],
    ['npm', 'file:../local', false],
    ['npm', '1.2.x', false],
    ['PyPI', '2.31.0', true],
    ['PyPI', '1!2.0.post1.dev3', true],
    ['PyPI', '0.1-bulbasaur', false],
    ['Go', 'v0.0.0-20191109021931-daa7c04131f5', true],
    ['Go', 'v2.3.0+incompatible', true],
    ['Go', '(devel)', false],
    ['Maven', '2.9.10.7', true],
    ['Maven', '${jackson.version}', false],
    ['Maven', 'LATEST', false],
    ['crates.io', '0.10.55', true],
    ['RubyGems', '6.1.4.1', true],
    ['RubyGems', '1.0 beta', false],
    ['NuGet', '13.0.1', true],
    ['NuGet', '4.3.0.1-beta', true],
    ['NuGet', '1.2.3.4.5', false],
    ['Packagist', 'v7.12.0', true],
    ['Packagist', 'dev-master', false],
    ['Debian:12', '1:2.38.1-5+deb12u1', true],
    ['Debian:12', '1.2.3-not-a-debian:version!@#$', false],
    ['Ubuntu:20.04:LTS', '2:8.39-12ubuntu0.1', true],
    ['Alpine:v3.18', '1.2.13-r0', true],
    ['Alpine:v3.18', '1.2.0_rc1_p2-r10', true],
    ['Alpine:v3.18', '1.2_blah', false],
    ['AlmaLinux:8', '1:1.1.1k-12.el8_9', true],
    ['AlmaLinux:8', 'not a version', false],
  ];
  for (const [eco, v, ok] of cases) {
    it(`${eco} ${JSON.stringify(v)} is ${ok ? '' : 'not '}checkable`, () => {
      const r = parse(eco, v);
      assert.equal(r.ok, ok, r.ok ? 'parsed' : r.reason);
    });
  }

  it('an unknown ecosystem has no ordering and is not checkable', () => {
    assert.equal(schemeFor('Hackage'), null);
    const r = parse('Hackage', '1.0');
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /no version ordering/);
    assert.throws(() => compare('Hackage', '1', '2'), /no version ordering/);
  });

  it('lists the ecosystems it orders', () => {
    for (const e of ['npm', 'PyPI', 'Maven', 'Go', 'crates.io', 'RubyGems', 'NuGet', 'Packagist', 'Debian', 'Ubuntu', 'Alpine', 'AlmaLinux', 'Rocky Linux', 'Red Hat']) {
      assert.ok(supportedEcosystems().includes(e), e);
    }
  });
});

describe('ecosystem examples beyond the vectors', () => {
  const lt = (eco: string, a: string, b: string) => it(`${eco}: ${a} < ${b}`, () => {
    assert.equal(compare(eco, a, b), -1);
    assert.equal(compare(eco, b, a), 1);
  });
  lt('Go', 'v0.0.0-20191109021931-daa7c04131f5', 'v0.0.1');
  lt('Go', '1.19.12', 'v1.20.0');
  lt('npm', '4.17.20', '4.17.21');
  lt('npm', '1.0.0-rc.1', '1.0.0');
  lt('crates.io', '0.9.99', '0.10.0');
  lt('Debian:12', '1:1.0', '2:0.1');
  lt('Debian:12', '2.36.1-8', '2.36.1-8+deb12u1');
  lt('Debian:12', '1.0~rc1', '1.0');
  lt('Alpine:v3.18', '1.2.12-r1', '1.2.12-r2');
  lt('Alpine:v3.18', '1.2_rc1', '1.2');
  lt('AlmaLinux:8', '1.1.1k-7.el8_6', '1.1.1k-12.el8_9');
  lt('AlmaLinux:8', '3.6.8-1.el8', '1:1.0-1.el8');
  lt('PyPI', '2.0.0rc1', '2.0.0');
  lt('PyPI', '1.0.post1', '1.1.dev0');
  lt('Maven', '2.9.10.7', '2.9.10.8');
  lt('Maven', '2.13.0-rc1', '2.13.0');
  lt('NuGet', '12.0.3', '13.0.1');
  lt('RubyGems', '6.1.4', '6.1.4.1');
  lt('Packagist', '7.12.0', '7.30.4');
});
