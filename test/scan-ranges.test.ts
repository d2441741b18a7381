/**
 * OSV range evaluation on real records from ../shared/feeds, and on the
 * examples of the OSV schema's own documentation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { evaluate, type OsvRange, type Verdict } from '../scan/ranges.ts';
import { sharedDir } from './helpers/services.ts';

interface OsvAffected {
  package: { ecosystem: string; name: string };
  ranges?: OsvRange[];
  versions?: string[];
}

function record(rel: string): { affected: OsvAffected[] } {
  return JSON.parse(fs.readFileSync(path.join(sharedDir, 'feeds', rel), 'utf8')) as { affected: OsvAffected[] };
}

function check(rel: string, i: number, version: string): Verdict {
  const a = record(rel).affected[i]!;
  return evaluate(a.package.ecosystem, version, a.ranges ?? [], a.versions ?? []);
}

describe('real OSV records', () => {
  it('Go (SEMVER, fixed): GO-2020-0001 gin < 1.6.0', () => {
    assert.deepEqual(check('osv/Go/GO-2020-0001.json', 0, 'v1.5.0'), { status: 'affected', range: '<1.6.0', fixed: '1.6.0' });
    assert.deepEqual(check('osv/Go/GO-2020-0001.json', 0, 'v1.6.0'), { status: 'unaffected' });
    assert.deepEqual(check('osv/Go/GO-2020-0001.json', 0, 'v1.9.1'), { status: 'unaffected' });
  });

  it('PyPI (ECOSYSTEM with two intervals, plus a GIT range that is skipped): PYSEC-2017-11 django-cms', () => {
    assert.deepEqual(check('osv/PyPI/PYSEC-2017-11.json', 0, '3.0.13'), { status: 'affected', range: '<3.0.14', fixed: '3.0.14' });
    assert.deepEqual(check('osv/PyPI/PYSEC-2017-11.json', 0, '3.1.0'), { status: 'affected', range: '>=3.1, <3.1.1', fixed: '3.1.1' });
    assert.deepEqual(check('osv/PyPI/PYSEC-2017-11.json', 0, '3.0.14'), { status: 'unaffected' });
    assert.deepEqual(check('osv/PyPI/PYSEC-2017-11.json', 0, '3.1.1'), { status: 'unaffected' });
  });

  it('Bitnami (SEMVER with last_affected): activemq', () => {
    const rel = 'osv/Bitnami/BIT-activemq-2021-21350.json';
    // ranges: [0, fixed 5.15.14) and [5.16.0, last_affected 5.16.0], [5.16.1, last_affected 5.16.1]
    assert.equal(check(rel, 0, '5.15.13').status, 'affected');
    assert.equal(check(rel, 0, '5.15.14').status, 'unaffected');
    assert.deepEqual(check(rel, 0, '5.16.1'), { status: 'affected', range: '>=5.16.1, <=5.16.1', fixed: null });
    assert.equal(check(rel, 0, '5.16.2').status, 'unaffected');
  });

  it('Alpine (apk ordering and an enumerated versions list): CVE-2006-20001 apache2', () => {
    const rel = 'osv/Alpine/CVE-2006-20001.json';
    assert.equal(check(rel, 0, '2.4.54-r0').status, 'affected');
    assert.equal(check(rel, 0, '2.4.55-r0').status, 'unaffected');
    assert.equal(check(rel, 0, '2.4.55-r1').status, 'unaffected');
  });

  it('Debian (dpkg ordering): CVE-2002-0380 tcpdump', () => {
    const rel = 'osv/Debian/CVE-2002-0380.json';
    assert.equal(check(rel, 0, '3.7.1-1.1').status, 'affected');
    assert.equal(check(rel, 0, '3.7.1-1.2').status, 'unaffected');
    assert.equal(check(rel, 0, '1:3.0-1').status, 'unaffected', 'an epoch outranks any upstream version');
  });

  it('AlmaLinux (rpm ordering): ALBA-2019:1970 authd', () => {
    const rel = 'osv/AlmaLinux/ALBA-2019_1970.json';
    assert.equal(check(rel, 0, '1.4.4-5.el8').status, 'affected');
    assert.equal(check(rel, 0, '1.4.4-5.el8_0.1').status, 'unaffected');
  });

  it('an unparseable installed version is undetermined, never unaffected', () => {
    const v = check('osv/Go/GO-2020-0001.json', 0, '(devel)');
    assert.equal(v.status, 'undetermined');
    assert.match(v.status === 'undetermined' ? v.reason : '', /SemVer/);
  });

  it('an ECOSYSTEM range of an ecosystem without an ordering is undetermined', () => {
    const v = evaluate('Hackage', '1.0', [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0' }] }], []);
    assert.equal(v.status, 'undetermined');
  });

  it('GIT-only data without a versions list is undetermined; with a list, not listed means unaffected', () => {
    const git: OsvRange[] = [{ type: 'GIT', repo: 'https://example.invalid/r', events: [{ introduced: '0' }, { fixed: 'abc' }] }];
    assert.equal(evaluate('PyPI', '1.0', git, []).status, 'undetermined');
    assert.equal(evaluate('PyPI', '1.0', git, ['0.9']).status, 'unaffected');
    assert.equal(evaluate('PyPI', '0.9', git, ['0.9']).status, 'affected');
    // another PEP 440 spelling of a listed version is the same version
    assert.deepEqual(evaluate('PyPI', '0.9.0', git, ['0.9']), { status: 'affected', range: 'listed version', fixed: null });
  });

  it('versions given as a function are read only when no range decides; null (unreadable) is undetermined', () => {
    const ranges: OsvRange[] = [{ type: 'ECOSYSTEM', events: [{ introduced: '1.0' }, { fixed: '2.0' }] }];
    let calls = 0;
    const list = (): string[] => (calls++, ['3.0', '03.0.0']);
    assert.equal(evaluate('PyPI', '1.5', ranges, list).status, 'affected');
    assert.equal(calls, 0, 'a range decided: the list is not read');
    assert.deepEqual(evaluate('PyPI', '3.0.0', ranges, list), { status: 'affected', range: 'listed version', fixed: null });
    assert.equal(evaluate('PyPI', '4.0', ranges, list).status, 'unaffected');
    assert.equal(calls, 2);
    assert.equal(evaluate('PyPI', '4.0', ranges, () => null).status, 'undetermined');
  });
});

describe('OSV schema examples', () => {
  const semver = (events: OsvRange['events']): OsvRange[] => [{ type: 'SEMVER', events }];
  it('introduced 0 alone: every version', () => {
    assert.deepEqual(evaluate('npm', '0.0.1', semver([{ introduced: '0' }]), []), { status: 'affected', range: 'all versions', fixed: null });
  });
  it('multiple intervals [1.0.0, 1.0.2) and [3.0.0, 3.2.5)', () => {
    const r = semver([{ introduced: '1.0.0' }, { fixed: '1.0.2' }, { introduced: '3.0.0' }, { fixed: '3.2.5' }]);
    const at = (v: string) => evaluate('npm', v, r, []).status;
    assert.deepEqual(['0.9.0', '1.0.0', '1.0.1', '1.0.2', '2.0.0', '3.0.0', '3.2.4', '3.2.5'].map(at), [
      'unaffected', 'affected', 'affected', 'unaffected', 'unaffected', 'affected', 'affected', 'unaffected',
    ]);
  });
  it('events out of order are sorted first', () => {
    const r = semver([{ fixed: '3.2.5' }, { introduced: '3.0.0' }, { fixed: '1.0.2' }, { introduced: '1.0.0' }]);
    assert.equal(evaluate('npm', '3.1.0', r, []).status, 'affected');
    assert.equal(evaluate('npm', '2.0.0', r, []).status, 'unaffected');
  });
  it('limit bounds the range from above', () => {
    const r = semver([{ introduced: '1.0.0' }, { limit: '2.0.0' }]);
    assert.equal(evaluate('npm', '1.5.0', r, []).status, 'affected');
    assert.equal(evaluate('npm', '2.0.0', r, []).status, 'unaffected');
    assert.equal(evaluate('npm', '1.5.0', semver([{ introduced: '1.0.0' }, { limit: '*' }]), []).status, 'affected');
  });
  it('last_affected includes that version only', () => {
    const r = semver([{ introduced: '0' }, { last_affected: '1.4.0' }]);
    assert.deepEqual(evaluate('npm', '1.4.0', r, []), { status: 'affected', range: '<=1.4.0', fixed: null });
    assert.equal(evaluate('npm', '1.4.1', r, []).status, 'unaffected');
  });
  it('pre-releases sort below their release', () => {
    const r = semver([{ introduced: '0' }, { fixed: '2.0.0' }]);
    assert.equal(evaluate('npm', '2.0.0-rc.1', r, []).status, 'affected');
  });
});
