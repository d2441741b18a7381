/**
 * Version ordering per ecosystem, against vectors taken from elsewhere, each
 * line `a OP b` held both ways round:
 *
 * - osv-scalibr's semantic test data (../shared/conformance/osv-semantic, see
 *   its SOURCES.md), the vectors OSV's own scanner is held to. Where a vector
 *   disagrees with the ecosystem's own tool, the tool wins: TOOL_WINS lists
 *   each such line with the tool's answer and why, and the test holds both
 *   (the vector fails as written, the tool's answer holds);
 * - test/fixtures/version-vectors/*.txt: vectors for the ecosystems the
 *   conformance set does not cover, each file naming its ecosystems
 *   (`# ecosystems:`) and the tool test or documentation every line comes
 *   from (`# source:`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { compare, mayBeEqual, parse, schemeFor, supportedEcosystems } from '../scan/versions/index.ts';
import { sharedDir } from './helpers/services.ts';

const VECTORS = path.join(sharedDir, 'conformance/osv-semantic');
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/version-vectors');

/** Which orderings each vector file is run against (the file name names the ecosystem). */
const FILE_ECOSYSTEMS: Record<string, string[]> = {
  alpine: ['Alpine:v3.18', 'Wolfi', 'Chainguard'],
  debian: ['Debian:12', 'Ubuntu:22.04:LTS'],
  maven: ['Maven'],
  nuget: ['NuGet'],
  packagist: ['Packagist'],
  pypi: ['PyPI'],
  redhat: ['Red Hat', 'AlmaLinux:9', 'Rocky Linux:8', 'openSUSE:Leap 15.5'],
  rubygems: ['RubyGems'],
  semver: ['SEMVER', 'npm', 'crates.io', 'Go', 'Bitnami'],
};

type Op = '<' | '=' | '>';

/** osv-scalibr vectors that disagree with the ecosystem's own tool: the tool's answer holds instead. */
const TOOL_WINS: Record<string, { line: string; tool: Op; why: string }[]> = {
  'maven-versions.txt': [
    {
      line: '1-1 = 1-ga-1',
      tool: '>',
      why: 'Maven 3.9.6 (ComparableVersion): "1-ga-1" parses to [1, [ga, [1]]]; "ga" is the release qualifier, trimmed, leaving [1, [[1]]]; a number beats a list, so 1-1 > 1-ga-1',
    },
  ],
  'alpine-versions.txt': [
    { line: '1-r = 1-r0', tool: '<', why: 'apk-tools: "-r" without a number is an invalid token, which ranks below the revision r0' },
    { line: '1-r0-1 = 1-r-2', tool: '>', why: 'apk-tools: "1-r-2" is invalid at "-r" (no number) while "1-r0-1" still has its revision there; the invalid token ranks lowest' },
    ...['0..1..0 < 0..1..1', '0...1...0 < 0...1...1', '0...1...0.r1 < 0...1...0.r2', '0...1...0r1 < 0...1...0r2', '0..8 > 0...8'].map((line) => ({
      line,
      tool: '=' as Op,
      why: 'apk-tools: a "." must be followed by a number, so both versions turn invalid at the same token after equal prefixes, and apk_version_compare answers EQUAL',
    })),
    { line: '0.8.21.r2 > 0.8.21.r1', tool: '=', why: 'apk-tools: ".r" is not a number after ".": both invalid at the same token, EQUAL' },
    { line: '6.6.2p1 < 6.6.2p2', tool: '=', why: 'apk-tools: a digit after the letter is invalid in both, at the same token: EQUAL' },
    ...['.2 > .1', 'a < b', 'c > b'].map((line) => ({ line, tool: '=' as Op, why: 'apk-tools: neither starts with a number; both invalid at the first token: EQUAL' })),
  ],
};

interface Vector {
  line: number;
  text: string;
  a: string;
  op: Op;
  b: string;
}

function readVectors(file: string): Vector[] {
  const out: Vector[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text === '' || text.startsWith('#') || text.startsWith('//')) return;
      const parts = text.split(' ');
      assert.equal(parts.length, 3, `${path.basename(file)}:${i + 1}: cannot read "${text}"`);
      const [a, op, b] = parts as [string, string, string];
      assert.ok(op === '<' || op === '=' || op === '>', `${path.basename(file)}:${i + 1}: operator ${op}`);
      out.push({ line: i + 1, text, a, op, b });
    });
  return out;
}

const EXPECT = { '<': -1, '=': 0, '>': 1 } as const;

function both(eco: string, a: string, b: string): [number | string, number | string] {
  try {
    return [compare(eco, a, b), compare(eco, b, a)];
  } catch (e) {
    return [`threw ${(e as Error).message}`, ''];
  }
}

/** The lines of `vectors` that do not hold both ways under `eco` (apart from `skip`). */
function failures(eco: string, vectors: Vector[], skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const v of vectors) {
    if (skip.has(v.text)) continue;
    const want = EXPECT[v.op];
    const [ab, ba] = both(eco, v.a, v.b);
    if (ab !== want || ba !== -want) out.push(`line ${v.line}: ${v.text} (got ${ab}, reversed ${ba})`);
  }
  return out;
}

describe('osv-scalibr conformance vectors', () => {
  const files = fs.readdirSync(VECTORS).filter((f) => f.endsWith('.txt')).sort();
  it('finds the vector files', () => {
    assert.ok(files.length >= 9, `only ${files.length} vector files in ${VECTORS}`);
  });
  for (const file of files) {
    const key = file.replace(/-versions.*$/, '');
    const ecosystems = FILE_ECOSYSTEMS[key];
    const wins = TOOL_WINS[file] ?? [];
    it(`${file} has an ecosystem mapping`, () => assert.ok(ecosystems, `no ecosystem for ${file}`));
    for (const eco of ecosystems ?? []) {
      it(`${file} under ${eco}: every line holds both ways (the tool's own answer where it disagrees)`, () => {
        const vectors = readVectors(path.join(VECTORS, file));
        assert.ok(vectors.length > 0);
        const bad = failures(eco, vectors, new Set(wins.map((w) => w.line)));
        assert.deepEqual(bad, [], `${bad.length} of ${vectors.length} failed:\n${bad.slice(0, 30).join('\n')}`);
        for (const w of wins) {
          const v = vectors.find((x) => x.text === w.line);
          assert.ok(v, `${file} still has the line "${w.line}"`);
          assert.equal(failures(eco, [v]).length, 1, `"${w.line}" now holds as written: drop it from TOOL_WINS`);
          const [ab, ba] = both(eco, v.a, v.b);
          assert.deepEqual([ab, ba], [EXPECT[w.tool], EXPECT[w.tool] === 0 ? 0 : -EXPECT[w.tool]], `${v.a} ${w.tool} ${v.b}, as the tool says: ${w.why}`);
        }
      });
    }
  }
});

describe('the listed-version prefilter (mayBeEqual)', () => {
  it('never separates two versions any vector file calls equal', () => {
    const files = [
      ...fs.readdirSync(VECTORS).filter((f) => f.endsWith('.txt')).map((f) => path.join(VECTORS, f)),
      ...fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.txt')).map((f) => path.join(FIXTURES, f)),
    ];
    let equal = 0;
    for (const file of files) {
      for (const v of readVectors(file).filter((x) => x.op === '=')) {
        equal++;
        assert.ok(mayBeEqual(v.a, v.b) && mayBeEqual(v.b, v.a), `${path.basename(file)}:${v.line}: ${v.text}`);
      }
    }
    assert.ok(equal > 150, `only ${equal} equal pairs found`);
  });
  it('separates versions whose leading numbers differ, and never one with an epoch or no leading number', () => {
    assert.equal(mayBeEqual('1.2.3', '2.0'), false);
    assert.equal(mayBeEqual('v10.0', '1.0'), false);
    assert.equal(mayBeEqual('01.0', '1.0'), true);
    assert.equal(mayBeEqual('1:1.0', '2.0'), true);
    assert.equal(mayBeEqual('1!1.0', '2.0'), true);
    assert.equal(mayBeEqual('alpha-1', '1'), true);
  });
});

describe('ecosystem vectors (test/fixtures/version-vectors)', () => {
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.txt')).sort();
  it('finds the vector files', () => {
    assert.ok(files.length >= 8, `only ${files.length} vector files in ${FIXTURES}`);
  });
  for (const file of files) {
    const text = fs.readFileSync(path.join(FIXTURES, file), 'utf8');
    const ecosystems = /^# ecosystems: (.+)$/m.exec(text)?.[1]?.split(',').map((e) => e.trim()) ?? [];
    it(`${file} names its ecosystems, and the source of its first vector`, () => {
      assert.ok(ecosystems.length > 0, `${file} has no "# ecosystems:" line`);
      const firstVector = text.split('\n').findIndex((l) => l !== '' && !l.startsWith('#'));
      assert.ok(text.split('\n').slice(0, firstVector).some((l) => /^# source: \S/.test(l)), `${file} names no source before its first vector`);
    });
    for (const eco of ecosystems) {
      it(`${file} under ${eco}: every line holds both ways`, () => {
        const vectors = readVectors(path.join(FIXTURES, file));
        assert.ok(vectors.length > 0);
        const bad = failures(eco, vectors);
        assert.deepEqual(bad, [], `${bad.length} of ${vectors.length} failed:\n${bad.slice(0, 30).join('\n')}`);
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
    ['npm', '1.3', false], // npm versions have all three numbers
    ['npm', '1', false],
    ['npm', '1.0.0-rc.1+build.5', true],
    ['npm', '90071992547409910.0.0', false], // above 2^53: node-semver test/fixtures/invalid-versions.js
    ['PyPI', '2.31.0', true],
    ['PyPI', '1!2.0.post1.dev3', true],
    ['PyPI', '0.1-bulbasaur', false],
    ['Go', 'v0.0.0-20191109021931-daa7c04131f5', true],
    ['Go', 'v2.3.0+incompatible', true],
    ['Go', '(devel)', false],
    ['Hex', '1.4.5-6-g3318bd5+ignore', true], // elixir version_test.exs parse/1
    ['Hex', '2.3', false],
    ['Hex', '2.03.0', false],
    ['Pub', '1.2.3+build.1', true], // pub_semver version_test.dart parse()
    ['Pub', '1.0', false],
    ['Pub', '1.2.3.4', false],
    ['SwiftURL', '0.9.21-alpha.beta+1011', true], // SwiftPM VersionTests.swift testFromString
    ['SwiftURL', '1.2', false],
    ['SwiftURL', '1.2.3.4', false],
    ['Alpine:v3.18', '1.0~ab12-r3', true], // apk-tools: {~hash} before -r
    ['Alpine:v3.18', '1.2a3', false],
    ['Wolfi', '1.6.0-r1', true],
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
