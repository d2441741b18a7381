/**
 * Scans against a DB built from real records of ../shared/feeds: SBOMs
 * (written here, and the real ones of ../shared/sboms) whose components are
 * named in those advisories. A vulnerable version is found with the right
 * advisory and fixed version, the fixed version is clean, a withdrawn
 * advisory is never reported, and what cannot be checked is listed as such.
 * Also: one snapshot per scan, even when an activation commits mid-scan.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { isOukError } from '../lib/errors.ts';
import { parseSbom, parseSbomText, readSbomFile, type Sbom } from '../scan/sbom.ts';
import { type Finding, scanSbom, type ScanResult } from '../scan/scan.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { ident } from '../infra/db.ts';
import { createLoadedScanDb, createScanDb, loadFeeds, type ScanDb } from './helpers/scan-db.ts';
import { sharedDir } from './helpers/services.ts';

export const SCAN_FEEDS = {
  files: [
    'ghsa/GHSA-29mw-wpgm-hmr9.json', // lodash < 4.17.21 (CVE-2020-28500)
    'ghsa/GHSA-4xc9-xhrj-v574.json', // lodash < 4.17.11 (CVE-2018-16487)
    'osv/PyPI/PYSEC-2017-11.json', // django-cms
    'osv/Go/GO-2020-0001.json', // gin < 1.6.0
    'osv/Go/GO-2026-6170.json', // lib/pq, withdrawn
    'osv/Alpine/CVE-2022-37434.json', // zlib
    'osv/Alpine/CVE-2006-20001.json', // apache2 (merged with the NVD record below)
    'osv/Debian/CVE-2002-0380.json', // tcpdump
    'osv/AlmaLinux/ALBA-2019_1970.json', // authd
    'osv/Bitnami/BIT-activemq-2021-21350.json', // activemq, last_affected
    'ghsa/GHSA-22wj-vf5f-wrvj.json', // Maven com.h2database:h2
    'ghsa/GHSA-3hcm-6fjc-47qq.json', // NuGet NuGet.Commands
    'ghsa/GHSA-3fhf-6939-qg8p.json', // RubyGems rest-client
    'ghsa/GHSA-2jcw-r79x-4r5v.json', // Packagist moodle/moodle
    'ghsa/GHSA-mmjf-f5jw-w72q.json', // crates.io openssl-src
  ],
  nvd: ['CVE-2006-20001', 'CVE-2005-0891'], // apache http_server < 2.4.55; gnome gtk [2.0.0, 2.2.4)
};

const cdx = (specVersion: string, components: unknown[]) => ({ bomFormat: 'CycloneDX', specVersion, version: 1, components });
const comp = (ref: string, purl: string | null, extra: Record<string, unknown> = {}) => ({
  type: 'library',
  'bom-ref': ref,
  name: purl ? purl.replace(/^pkg:[^/]+\/(?:[^@]*\/)?([^@/?]+).*$/, '$1') : ref,
  ...(purl ? { purl } : {}),
  ...extra,
});

/** findings of one component; an advisory is named by its id or any alias */
function of(r: ScanResult, ref: string): Finding[] {
  return r.findings.filter((f) => f.component === ref);
}
function names(fs: Finding[]): string[] {
  return fs.flatMap((f) => [f.advisoryId, ...f.aliases]);
}

describe('scan against real advisories', () => {
  let sdb: ScanDb;
  before(async () => {
    sdb = await createLoadedScanDb('scan', SCAN_FEEDS, '2026-11-29');
  });
  after(async () => {
    await sdb?.close();
  });

  it('finds vulnerable versions, with the advisory, range, fixed version and DB version; fixed versions are clean', async () => {
    const sbom = parseSbom(
      cdx('1.6', [
        comp('lodash-old', 'pkg:npm/lodash@4.17.10'),
        comp('lodash-20', 'pkg:npm/lodash@4.17.20'),
        comp('lodash-fixed', 'pkg:npm/lodash@4.17.21'),
        comp('django-cms', 'pkg:pypi/django-cms@3.0.13'),
        comp('django-cms-fixed', 'pkg:pypi/Django_CMS@3.0.14'),
        comp('gin', 'pkg:golang/github.com/gin-gonic/gin@v1.5.0'),
        comp('gin-fixed', 'pkg:golang/github.com/gin-gonic/gin@v1.6.0'),
        comp('pq', 'pkg:golang/github.com/lib/pq@v1.10.9'),
        comp('zlib', 'pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.16.2&origin=zlib'),
        comp('zlib-fixed', 'pkg:apk/alpine/zlib@1.2.12-r2?arch=x86_64&distro=3.16.2&origin=zlib'),
        comp('tcpdump', 'pkg:deb/debian/tcpdump@3.7.1-1.1?arch=amd64&distro=debian-11'),
        comp('tcpdump-fixed', 'pkg:deb/debian/tcpdump@4.99.0-2?arch=amd64&distro=bullseye'),
        comp('authd', 'pkg:rpm/almalinux/authd@1.4.4-5.el8?arch=x86_64&distro=almalinux-8'),
        comp('authd-fixed', 'pkg:rpm/almalinux/authd@1.4.4-5.el8_0.1?arch=x86_64&distro=almalinux-8'),
        comp('activemq', 'pkg:bitnami/activemq@5.16.1'),
        comp('h2', 'pkg:maven/com.h2database/h2@2.1.214'),
        comp('h2-fixed', 'pkg:maven/com.h2database/h2@2.2.220'),
        comp('nuget', 'pkg:nuget/NuGet.Commands@5.0.1'),
        comp('gem', 'pkg:gem/rest-client@1.7.0'),
        comp('composer', 'pkg:composer/moodle/moodle@v2.8.1'),
        comp('cargo', 'pkg:cargo/openssl-src@300.0.3'),
        comp('cargo-fixed', 'pkg:cargo/openssl-src@300.0.4'),
      ]),
    );
    const r = await scanSbom(sdb.pool, sbom);
    assert.equal(r.dbVersion, '2026-11-29');
    assert.ok(r.findings.every((f) => f.dbVersion === '2026-11-29'));

    const old = of(r, 'lodash-old');
    assert.deepEqual(old.map((f) => f.advisoryId).sort(), ['CVE-2018-16487', 'CVE-2020-28500']);
    const l20 = of(r, 'lodash-20');
    assert.equal(l20.length, 1);
    assert.equal(l20[0]!.advisoryId, 'CVE-2020-28500');
    assert.ok(l20[0]!.aliases.includes('GHSA-29mw-wpgm-hmr9'));
    assert.equal(l20[0]!.affectedRange, '<4.17.21');
    assert.equal(l20[0]!.fixedVersion, '4.17.21');
    assert.equal(l20[0]!.installedVersion, '4.17.20');
    assert.equal(l20[0]!.ecosystem, 'npm');
    assert.equal(l20[0]!.severity, 'MEDIUM'); // GitHub's MODERATE

    assert.ok(names(of(r, 'django-cms')).includes('PYSEC-2017-11'));
    assert.ok(names(of(r, 'gin')).includes('GO-2020-0001'));
    assert.equal(of(r, 'gin')[0]!.fixedVersion, '1.6.0');
    assert.ok(of(r, 'zlib').some((f) => f.advisoryId === 'CVE-2022-37434' && f.fixedVersion === '1.2.12-r2' && f.ecosystem === 'Alpine:v3.16'));
    assert.ok(of(r, 'tcpdump').some((f) => f.advisoryId === 'CVE-2002-0380' && f.ecosystem === 'Debian:11'));
    assert.ok(of(r, 'authd').some((f) => f.advisoryId === 'ALBA-2019:1970' && f.fixedVersion === '1.4.4-5.el8_0.1'));
    assert.ok(of(r, 'activemq').some((f) => names([f]).includes('BIT-activemq-2021-21350') && f.affectedRange === '>=5.16.1, <=5.16.1'));
    assert.ok(of(r, 'h2').some((f) => f.advisoryId === 'CVE-2022-45868' && f.fixedVersion === '2.2.220'));
    assert.ok(names(of(r, 'nuget')).includes('GHSA-3hcm-6fjc-47qq'));
    assert.ok(names(of(r, 'gem')).includes('GHSA-3fhf-6939-qg8p'));
    assert.ok(names(of(r, 'composer')).includes('GHSA-2jcw-r79x-4r5v'));
    assert.ok(names(of(r, 'cargo')).includes('GHSA-mmjf-f5jw-w72q'));

    for (const clean of ['lodash-fixed', 'django-cms-fixed', 'gin-fixed', 'zlib-fixed', 'tcpdump-fixed', 'authd-fixed', 'h2-fixed', 'cargo-fixed']) {
      assert.deepEqual(of(r, clean), [], `${clean} should be clean`);
    }
    assert.deepEqual(of(r, 'pq'), [], 'a withdrawn advisory is never reported');
    assert.equal(r.summary.components, 22);
    assert.equal(r.summary.checked, 22);
    assert.equal(r.summary.notChecked, 0);
    assert.equal(r.summary.findings, r.findings.length);
    // severity-sorted
    const order = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'NONE', 'UNKNOWN'];
    assert.deepEqual(r.findings.map((f) => order.indexOf(f.severity)), [...r.findings.map((f) => order.indexOf(f.severity))].sort((a, b) => a - b));
  });

  it('matches CPE-only components against NVD configurations', async () => {
    const sbom = parseSbom(
      cdx('1.5', [
        comp('httpd', null, { name: 'httpd', version: '2.4.54', cpe: 'cpe:2.3:a:apache:http_server:2.4.54:*:*:*:*:*:*:*' }),
        comp('httpd-fixed', null, { name: 'httpd', cpe: 'cpe:2.3:a:apache:http_server:2.4.55:*:*:*:*:*:*:*' }),
        comp('gtk', null, { name: 'gtk', version: '2.2.3', cpe: 'cpe:2.3:a:gnome:gtk:*:*:*:*:*:*:*:*' }),
        comp('gtk-old', null, { name: 'gtk', version: '1.2.10', cpe: 'cpe:2.3:a:gnome:gtk:*:*:*:*:*:*:*:*' }),
      ]),
    );
    const r = await scanSbom(sdb.pool, sbom);
    const httpd = of(r, 'httpd');
    assert.equal(httpd.length, 1);
    assert.equal(httpd[0]!.advisoryId, 'CVE-2006-20001');
    assert.equal(httpd[0]!.matchedBy, 'cpe');
    assert.equal(httpd[0]!.fixedVersion, '2.4.55');
    assert.equal(httpd[0]!.cvssScore, 7.5);
    assert.deepEqual(of(r, 'httpd-fixed'), []);
    assert.equal(of(r, 'gtk')[0]?.advisoryId, 'CVE-2005-0891');
    assert.equal(of(r, 'gtk')[0]?.affectedRange, '>=2.0.0, <2.2.4');
    assert.deepEqual(of(r, 'gtk-old'), [], 'below versionStartIncluding');
  });

  it('reports what cannot be checked, with the reason, never as clean', async () => {
    const sbom = parseSbom(
      cdx('1.6', [
        comp('hackage', 'pkg:hackage/aeson@2.1.0.0'),
        comp('tag', 'pkg:npm/lodash@latest'),
        comp('no-distro', 'pkg:deb/debian/tcpdump@3.7.1-1.1'),
        comp('devel', 'pkg:golang/github.com/gin-gonic/gin@(devel)'),
        comp('nothing', null, { name: 'mystery', version: '1.0' }),
        comp('redhat', 'pkg:rpm/redhat/openssl@1.1.1k-7.el8_6?distro=rhel-8'),
      ]),
    );
    const r = await scanSbom(sdb.pool, sbom);
    assert.equal(r.findings.length, 0);
    assert.equal(r.summary.checked, 0);
    assert.equal(r.summary.notChecked, 6);
    const why = Object.fromEntries(r.notChecked.map((n) => [n.component, n.reason]));
    assert.match(why.hackage!, /purl type "hackage"/);
    assert.match(why.tag!, /version "latest" cannot be checked/);
    assert.match(why['no-distro']!, /without a distro qualifier/);
    assert.match(why.devel!, /cannot be checked/);
    assert.match(why.nothing!, /no purl or CPE/);
    assert.match(why.redhat!, /Red Hat/);
  });

  it('reads SPDX 2.3 (purl and cpe23Type external refs)', async () => {
    const spdx = {
      spdxVersion: 'SPDX-2.3',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: 't',
      dataLicense: 'CC0-1.0',
      documentNamespace: 'https://example.invalid/t',
      creationInfo: { created: '2026-11-29T00:00:00Z', creators: ['Tool: test'] },
      packages: [
        { SPDXID: 'SPDXRef-lodash', name: 'lodash', versionInfo: '4.17.20', downloadLocation: 'NOASSERTION', externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:npm/lodash@4.17.20' }] },
        { SPDXID: 'SPDXRef-gtk', name: 'gtk', versionInfo: '2.1.0', downloadLocation: 'NOASSERTION', externalRefs: [{ referenceCategory: 'SECURITY', referenceType: 'cpe23Type', referenceLocator: 'cpe:2.3:a:gnome:gtk:2.1.0:*:*:*:*:*:*:*' }] },
      ],
    };
    const r = await scanSbom(sdb.pool, parseSbomText(JSON.stringify(spdx)));
    assert.equal(r.sbom.format, 'SPDX');
    assert.equal(of(r, 'SPDXRef-lodash')[0]?.advisoryId, 'CVE-2020-28500');
    assert.equal(of(r, 'SPDXRef-gtk')[0]?.advisoryId, 'CVE-2005-0891');
  });

  it('scans the real juice-shop SBOM (CycloneDX, nested components)', async () => {
    const sbom = await readSbomFile(path.join(sharedDir, 'sboms/juice-shop-v11.1.2-bom.json'));
    assert.ok(sbom.components.length > 800);
    const r = await scanSbom(sdb.pool, sbom);
    const lodash = r.findings.filter((f) => f.package === 'lodash');
    const byVersion = (v: string) => lodash.filter((f) => f.installedVersion === v).map((f) => f.advisoryId).sort();
    assert.deepEqual(byVersion('4.17.19'), ['CVE-2020-28500']);
    assert.deepEqual(byVersion('2.4.2'), ['CVE-2018-16487', 'CVE-2020-28500']);
    assert.ok(r.summary.checked > 800);
  });

  it('scans the real osv-scanner SPDX SBOM (Ubuntu focal)', async () => {
    const sbom = await readSbomFile(path.join(sharedDir, 'sboms/osv-scanner-only-unimportant.spdx.json'));
    const r = await scanSbom(sdb.pool, sbom);
    assert.equal(r.summary.components, 1);
    assert.equal(r.summary.checked, 1, 'pcre3 on Ubuntu:20.04:LTS is checkable (no advisory in this DB)');
  });

  it('refuses what is not a supported SBOM with SBOM_INVALID', () => {
    const bad = (text: string, re: RegExp) =>
      assert.throws(() => parseSbomText(text), (e) => isOukError(e) && e.code === 'SBOM_INVALID' && re.test(e.message));
    bad('{not json', /not valid JSON/);
    bad('[]', /an array, not a JSON object/);
    bad('{"hello":1}', /neither CycloneDX/);
    bad(JSON.stringify(cdx('1.1', [])), /specVersion "1.1" is not supported/);
    bad(JSON.stringify(cdx('1.6', [{ type: 'library', version: '1' }])), /components\[0\]\.name is missing/);
    bad(JSON.stringify(cdx('1.6', [{ name: 'a', components: [{ name: 'b', purl: 7 }] }])), /components\[0\]\.components\[0\]\.purl is number/);
    bad(JSON.stringify({ spdxVersion: 'SPDX-2.3', packages: [{ name: 'x' }] }), /packages\[0\]\.SPDXID is missing/);
    bad(JSON.stringify({ spdxVersion: 'SPDX-3.0' }), /SPDX-3.0.*not supported/);
  });

  it('one consistent snapshot: an activation committed mid-scan is not seen by that scan', async () => {
    // a world of its own (it switches the active DB and empties the old one): a lodash DB active, a Go-only DB loaded to switch to
    const own = await createScanDb('scan-snapshot');
    try {
      await (await loadFeeds(own, { files: ['ghsa/GHSA-29mw-wpgm-hmr9.json'] }, '2026-11-29')).activate();
      const oldSchema = (await readActivePointer(own.pool)).activeSchema!;
      const next = await loadFeeds(own, { files: ['osv/Go/GO-2020-0001.json'] }, '2026-11-30');
      const sbom: Sbom = parseSbom(cdx('1.6', [comp('lodash', 'pkg:npm/lodash@4.17.20')]));
      const blocker = new pg.Client({ connectionString: own.db.url });
      await blocker.connect();
      try {
        // hold the active DB's affected table so the scan stops right after taking its snapshot
        await blocker.query('BEGIN');
        await blocker.query(`LOCK TABLE ${ident(oldSchema)}.affected IN ACCESS EXCLUSIVE MODE`);
        const scanning = scanSbom(own.pool, sbom);
        for (let i = 0; ; i++) {
          const w = await own.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%unnest%'`);
          if (w.rowCount) break;
          if (i > 2000) throw new Error('the scan never reached the affected table');
          await new Promise((res) => setTimeout(res, 5));
        }
        // mid-scan: the other DB is activated (the real activate stage), and the old one's rows are deleted
        assert.equal((await next.activate()).version, '2026-11-30');
        await blocker.query(`DELETE FROM ${ident(oldSchema)}.affected`);
        await blocker.query('COMMIT');
        const r = await scanning;
        assert.equal(r.dbVersion, '2026-11-29', 'the scan kept the DB it started on');
        assert.deepEqual(r.findings.map((f) => f.advisoryId), ['CVE-2020-28500'], 'and saw its rows as of its snapshot');
        const again = await scanSbom(own.pool, sbom);
        assert.equal(again.dbVersion, '2026-11-30');
        assert.deepEqual(again.findings, []);
      } finally {
        await blocker.end();
      }
    } finally {
      await own.close();
    }
  });
});
