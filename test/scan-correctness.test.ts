/**
 * Scan findings exactly right, against a DB built by the real
 * builder from ALL of ../shared/feeds and the real SBOMs of ../shared/sboms:
 *
 * - every SBOM: at most one finding per (component, vulnerability), and for
 *   components matched by purl exactly the vulnerabilities an independent
 *   OSV-schema reference (helpers/osv-reference.ts) finds in the raw records;
 * - each case the issue names: static-eval 2.1.0 (its CVE and GHSA one advisory,
 *   which GitHub withdrew in its title only: no finding) and jsonwebtoken 0.1.0/0.4.0
 *   (one GHSA stored twice), nats-io/jwt v0.3.0 (aliases named on one side),
 *   woodstox-core 5.0.3 (withdrawn as a duplicate in its details only), netty-common 4.1.118.Final (a stale copy must not
 *   win), tomcat-coyote 9.0.0.M1 and liferay release.dxp.bom 7.2.10-SNAPSHOT
 *   (Maven ordering), weechat 1.6.0-r1 / 1.6-r3 (apk ordering), npm "1.3"
 *   (not a version) and a purl packageurl-js cannot read;
 * - the duplicates GitHub withdrew in words only: Keycloak 10's
 *   are not reported while the advisories they duplicate are, and in no SBOM
 *   is any duplicate a finding of its own on a component its ranges name.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { comparePrimaryPreference, primaryId } from '../bundle/advisory-id.ts';
import { AliasGraph } from '../builder/merge-key.ts';
import { oneFindingPerVulnerability } from '../scan/dedupe.ts';
import { parseSbom, readSbomFile } from '../scan/sbom.ts';
import { type Finding, scanSbom, type ScanResult } from '../scan/scan.ts';
import { OsvReference, type RawRecord, recordAffects } from './helpers/osv-reference.ts';
import { auditWithdrawal } from '../dev/withdrawal-audit.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { ident } from '../infra/db.ts';
import { createLoadedScanDb, feedsDir, type ScanDb } from './helpers/scan-db.ts';
import { sharedDir } from './helpers/services.ts';

const SBOMS = path.join(sharedDir, 'sboms');

let sdb: ScanDb;
let reference: OsvReference;
const results = new Map<string, ScanResult>();
const sbomFiles = fs.readdirSync(SBOMS).filter((f) => f.endsWith('.json')).sort();

before(async () => {
  // every record of ../shared/feeds, built and imported through the real builder and stages
  sdb = await createLoadedScanDb('scan-correctness', { dir: feedsDir }, '2026-11-29');
  reference = new OsvReference(feedsDir);
  for (const f of sbomFiles) results.set(f, await scanSbom(sdb.pool, await readSbomFile(path.join(SBOMS, f))));
});

after(async () => {
  await sdb?.close();
});

const ids = (f: Finding): string[] => [f.advisoryId, ...f.aliases];

function findingsOf(file: string, purlPrefix: string): Finding[] {
  return results.get(file)!.findings.filter((f) => f.purl?.startsWith(purlPrefix));
}

const cdx = (components: { ref: string; purl: string }[]) =>
  parseSbom({
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    components: components.map((c) => ({ type: 'library', 'bom-ref': c.ref, name: c.ref, purl: c.purl })),
  });

async function scanOf(components: { ref: string; purl: string }[]): Promise<ScanResult> {
  return scanSbom(sdb.pool, cdx(components));
}

function idsFor(r: ScanResult, ref: string): string[] {
  return r.findings.filter((f) => f.component === ref).flatMap(ids);
}

describe('every real SBOM', () => {
  it('has SBOMs to scan', () => assert.ok(sbomFiles.length >= 7, sbomFiles.join(', ')));

  for (const file of sbomFiles) {
    it(`${file}: at most one finding per (component, vulnerability)`, () => {
      const r = results.get(file)!;
      const dupes: string[] = [];
      const seen = new Map<string, Finding>();
      for (const f of r.findings) {
        for (const id of ids(f)) {
          const other = seen.get(`${f.component}\u0000${id}`);
          if (other && other !== f) dupes.push(`${f.component}: ${f.advisoryId} and ${other.advisoryId} share ${id}`);
          seen.set(`${f.component}\u0000${id}`, f);
        }
      }
      assert.deepEqual(dupes, []);
    });

    it(`${file}: findings by purl are exactly the vulnerabilities the OSV reference finds in the raw records`, () => {
      const r = results.get(file)!;
      const sbom = parseSbom(JSON.parse(fs.readFileSync(path.join(SBOMS, file), 'utf8')));
      const problems: string[] = [];
      let compared = 0;
      for (const c of sbom.components) {
        if (!c.purl) continue;
        const want = reference.affecting(c.purl, c.version);
        if (want === null) continue;
        compared++;
        const found = r.findings.filter((f) => f.component === c.ref && f.matchedBy === 'purl');
        const got = new Set<string>();
        for (const f of found) {
          const v = ids(f).map((id) => reference.vulnerabilityOf.get(id)).find((x) => x !== undefined);
          if (v === undefined) problems.push(`${c.purl}: ${f.advisoryId} is no OSV vulnerability`);
          else got.add(v);
        }
        if (got.size !== found.length) problems.push(`${c.purl}: ${found.length} findings for ${got.size} vulnerabilities`);
        for (const v of want) if (!got.has(v)) problems.push(`${c.purl}: missed ${v}`);
        for (const v of got) if (!want.has(v)) problems.push(`${c.purl}: reported ${v}, which the reference does not find`);
      }
      assert.ok(compared > 0 || sbom.components.length <= 1, `${file}: no component compared`);
      assert.deepEqual(problems, []);
    });
  }
});

describe('reported scan cases, each against its advisories', () => {
  it('static-eval 2.1.0 (juice-shop): CVE-2021-23334 / GHSA-8v27-2fg9-7h62, one advisory, which GitHub withdrew ("deemed not a vulnerability"): no finding', async () => {
    const f = findingsOf('juice-shop-v11.1.2-bom.json', 'pkg:npm/static-eval@2.1.0');
    assert.deepEqual(f, []);
    const schema = ident((await readActivePointer(sdb.pool)).activeSchema!);
    const r = await sdb.pool.query<{ advisory_id: string; withdrawn: Date | null }>(
      `SELECT a.advisory_id, a.withdrawn FROM ${schema}.advisories a WHERE a.advisory_id IN ('CVE-2021-23334', 'GHSA-8v27-2fg9-7h62')
        OR a.advisory_id IN (SELECT advisory_id FROM ${schema}.aliases WHERE alias IN ('CVE-2021-23334', 'GHSA-8v27-2fg9-7h62'))`,
    );
    assert.deepEqual(r.rows.map((x) => x.advisory_id), ['CVE-2021-23334'], 'one advisory for both ids');
    assert.ok(r.rows[0]!.withdrawn, 'marked withdrawn');
  });

  it('jsonwebtoken 0.1.0 and 0.4.0 (juice-shop): CVE-2022-23529 once each, GHSA-27h2-hvpr-p74q as its alias', () => {
    for (const v of ['0.1.0', '0.4.0']) {
      const f = findingsOf('juice-shop-v11.1.2-bom.json', `pkg:npm/jsonwebtoken@${v}`).filter((x) => ids(x).includes('CVE-2022-23529'));
      assert.deepEqual(f.map((x) => [x.advisoryId, x.aliases]), [['CVE-2022-23529', ['GHSA-27h2-hvpr-p74q']]], `jsonwebtoken ${v}`);
      assert.ok(!findingsOf('juice-shop-v11.1.2-bom.json', `pkg:npm/jsonwebtoken@${v}`).some((x) => x.advisoryId === 'GHSA-27h2-hvpr-p74q'));
    }
  });

  it('nats-io/jwt v0.3.0 (proton-bridge): 3 findings for its 3 vulnerabilities, GO and GHSA ids as aliases', () => {
    const f = findingsOf('proton-bridge-proton-bridge-v1.8.0.bom.json', 'pkg:golang/github.com/nats-io/jwt@v0.3.0');
    assert.deepEqual(f.map((x) => x.advisoryId).sort(), ['CVE-2020-26521', 'CVE-2020-26892', 'CVE-2021-3127']);
    const byId = Object.fromEntries(f.map((x) => [x.advisoryId, x.aliases]));
    assert.deepEqual(byId['CVE-2020-26892'], ['GHSA-2c64-vj8g-vwrq', 'GHSA-4w5x-x539-ppf5', 'GO-2022-0380'], 'GO-2022-0380 names GHSA-2c64, which names nothing back');
    assert.ok(byId['CVE-2021-3127']!.includes('GO-2022-0386') && byId['CVE-2021-3127']!.includes('GHSA-j756-f273-xhp4'));
    assert.ok(byId['CVE-2020-26521']!.includes('GO-2022-0402') && byId['CVE-2020-26521']!.includes('GHSA-h2fg-54x9-5qhq'));
  });

  it('woodstox-core 5.0.3 (keycloak): CVE-2022-40156 / GHSA-4rv7-wj6m-6c6r, which GitHub withdrew as a duplicate in its details only ("## Withdrawn"): no finding', () => {
    const f = findingsOf('keycloak-10.0.2-bom.json', 'pkg:maven/com.fasterxml.woodstox/woodstox-core@5.0.3').filter((x) => ids(x).includes('GHSA-4rv7-wj6m-6c6r') || ids(x).includes('CVE-2022-40156'));
    assert.deepEqual(f, []);
    const sbom = parseSbom(JSON.parse(fs.readFileSync(path.join(SBOMS, 'keycloak-10.0.2-bom.json'), 'utf8')));
    const woodstox = sbom.components.find((c) => c.purl?.startsWith('pkg:maven/com.fasterxml.woodstox/woodstox-core@5.0.3'))!;
    assert.equal(recordAffects(newestCopy('GHSA-4rv7-wj6m-6c6r'), woodstox.purl!, woodstox.version), true, 'its ranges take in woodstox-core 5.0.3: withdrawal alone keeps it out');
  });

  it('netty-common 4.1.118.Final is the fixed release of CVE-2025-25193 (the newer osv/ copy of GHSA-389x-839f-4rhx wins over the stale last_affected)', async () => {
    const r = await scanOf([
      { ref: 'fixed', purl: 'pkg:maven/io.netty/netty-common@4.1.118.Final' },
      { ref: 'vulnerable', purl: 'pkg:maven/io.netty/netty-common@4.1.117.Final' },
    ]);
    assert.ok(!idsFor(r, 'fixed').includes('CVE-2025-25193'));
    const v = r.findings.filter((f) => f.component === 'vulnerable' && f.advisoryId === 'CVE-2025-25193');
    assert.equal(v.length, 1);
    assert.equal(v[0]!.fixedVersion, '4.1.118');
  });

  it('tomcat-coyote 9.0.0.M1 sorts below 9.0.0-M11 (Maven): not affected by CVE-2024-21733 (>= 9.0.0-M11, < 9.0.44)', async () => {
    const r = await scanOf([
      { ref: 'm1', purl: 'pkg:maven/org.apache.tomcat/tomcat-coyote@9.0.0.M1' },
      { ref: 'm11', purl: 'pkg:maven/org.apache.tomcat/tomcat-coyote@9.0.0.M11' },
      { ref: '9.0.43', purl: 'pkg:maven/org.apache.tomcat/tomcat-coyote@9.0.43' },
      { ref: '9.0.44', purl: 'pkg:maven/org.apache.tomcat/tomcat-coyote@9.0.44' },
    ]);
    assert.ok(!idsFor(r, 'm1').includes('CVE-2024-21733'), '9.0.0.M1 < 9.0.0-M11');
    assert.ok(idsFor(r, 'm11').includes('CVE-2024-21733'));
    assert.ok(idsFor(r, '9.0.43').includes('CVE-2024-21733'));
    assert.ok(!idsFor(r, '9.0.44').includes('CVE-2024-21733'));
  });

  it('liferay release.dxp.bom 7.2.10-SNAPSHOT sorts below 7.2.10.fp17 (Maven): affected in [7.2.0, 7.2.10.fp17)', async () => {
    const r = await scanOf([
      { ref: 'snapshot', purl: 'pkg:maven/com.liferay.portal/release.dxp.bom@7.2.10-SNAPSHOT' },
      { ref: 'fp17', purl: 'pkg:maven/com.liferay.portal/release.dxp.bom@7.2.10.fp17' },
    ]);
    assert.ok(idsFor(r, 'snapshot').includes('CVE-2024-25152'), 'GHSA-p28x-4r5h-ph6j: [7.2.0, 7.2.10.fp17)');
    assert.ok(idsFor(r, 'snapshot').includes('CVE-2024-25602'));
    assert.ok(!idsFor(r, 'fp17').includes('CVE-2024-25152'));
  });

  it('weechat on Alpine 3.5: 1.6.0-r1 is the fix of CVE-2017-8073, 1.6-r3 sorts below it (apk-tools: a trailing .0 is not nothing)', async () => {
    const r = await scanOf([
      { ref: '1.6.0-r1', purl: 'pkg:apk/alpine/weechat@1.6.0-r1?distro=3.5.2' },
      { ref: '1.6-r3', purl: 'pkg:apk/alpine/weechat@1.6-r3?distro=3.5.2' },
    ]);
    assert.ok(!idsFor(r, '1.6.0-r1').includes('CVE-2017-8073'));
    const f = r.findings.filter((x) => x.component === '1.6-r3' && x.advisoryId === 'CVE-2017-8073');
    assert.equal(f.length, 1);
    assert.equal(f[0]!.fixedVersion, '1.6.0-r1');
  });

  it('npm "1.3" is not an npm version: listed under notChecked, not matched', async () => {
    const r = await scanOf([{ ref: 'short', purl: 'pkg:npm/lodash@1.3' }]);
    assert.deepEqual(r.findings, []);
    assert.equal(r.summary.notChecked, 1);
    assert.match(r.notChecked[0]!.reason, /version "1\.3" cannot be checked: npm SemVer: .*all three numbers/);
  });

  it('a purl packageurl-js cannot read says what is wrong with it, never the library\'s internal error', async () => {
    const r = await scanOf([
      { ref: 'go-v', purl: 'pkg:golang/github.com/nats-io/jwt@v0.3' },
      { ref: 'no-scheme', purl: 'npm/lodash@4.17.20' },
      { ref: 'no-name', purl: 'pkg:npm/@4.17.20' },
    ]);
    const why = Object.fromEntries(r.notChecked.map((n) => [n.component, n.reason]));
    assert.equal(why['go-v'], 'invalid purl: golang version "v0.3" starts with "v" but is not a semantic version (vMAJOR.MINOR.PATCH)');
    assert.equal(why['no-scheme'], "invalid purl: missing the 'pkg:' scheme (pkg:type/namespace/name@version)");
    assert.ok(why['no-name'], 'pkg:npm/@4.17.20 is not checked');
    for (const reason of Object.values(why)) assert.doesNotMatch(reason, /is not defined|TypeError|ReferenceError/);
  });
});

/** Every copy of a raw record in ../shared/feeds (ghsa/ and osv/), the newest first. */
function copiesOf(id: string): RawRecord[] {
  const files = [path.join(feedsDir, 'ghsa', `${id}.json`), ...fs.readdirSync(path.join(feedsDir, 'osv')).map((eco) => path.join(feedsDir, 'osv', eco, `${id}.json`))];
  return files
    .filter((f) => fs.existsSync(f))
    .map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as RawRecord & { details?: string })
    .sort((a, b) => Date.parse(b.modified ?? '0') - Date.parse(a.modified ?? '0'));
}

function newestCopy(id: string): RawRecord & { details?: string } {
  const copy = copiesOf(id)[0];
  assert.ok(copy, `${id} is in ../shared/feeds`);
  return copy;
}

/** The advisories a duplicate's own text says it duplicates ("… a duplicate of GHSA-…", "Duplicate of CVE-… / GHSA-…"). */
function duplicated(details: string | undefined): string[] {
  const sentence = /duplicate of\b([^\n]*)/i.exec(details ?? '')?.[1] ?? '';
  return [...new Set(sentence.match(/\b(?:GHSA(?:-[0-9a-z]{4}){3}|CVE-\d{4}-\d{4,})\b/gi) ?? [])];
}

describe('withdrawn duplicates: a duplicate never adds a finding', () => {
  const KEYCLOAK = 'keycloak-10.0.2-bom.json';

  it('Keycloak 10: GHSA-3hrr-xwvg-hxvr, GHSA-57rh-gr4v-j5f6, GHSA-4xx7-2cx3-x473, GHSA-jrmh-v64j-mjm9 (RESTEasy), GHSA-rm7j-f5g5-27vv (JSON-Java) are reported nowhere; the advisories they duplicate still are, once per component', () => {
    const sbom = parseSbom(JSON.parse(fs.readFileSync(path.join(SBOMS, KEYCLOAK), 'utf8')));
    const pairs: [duplicate: string, original: string][] = [
      ['GHSA-3hrr-xwvg-hxvr', 'GHSA-cq42-vhv7-xr7p'],
      ['GHSA-57rh-gr4v-j5f6', 'GHSA-xmmm-jw76-q7vg'],
      ['GHSA-4xx7-2cx3-x473', 'GHSA-xgfv-xpx8-qhcr'],
      ['GHSA-jrmh-v64j-mjm9', 'GHSA-2c6g-pfx3-w7h8'],
      ['GHSA-rm7j-f5g5-27vv', 'GHSA-4jq9-2xhw-jpx7'],
    ];
    for (const [dup, original] of pairs) {
      const raw = newestCopy(dup);
      assert.deepEqual(duplicated(raw.details), [original], `${dup} says it duplicates ${original}`);
      const named = sbom.components.filter((c) => c.purl && recordAffects(raw, c.purl, c.version) === true);
      assert.ok(named.length > 0, `${dup}'s own ranges take in a Keycloak component (so it was reported before)`);
      const findings = results.get(KEYCLOAK)!.findings;
      assert.deepEqual(findings.filter((f) => ids(f).includes(dup)).map((f) => `${f.purl} ${f.advisoryId}`), [], `${dup} is reported nowhere`);
      const kept = findings.filter((f) => ids(f).includes(original));
      assert.ok(kept.length > 0, `${original}, which ${dup} duplicates, is still reported`);
      assert.equal(new Set(kept.map((f) => f.component)).size, kept.length, `${original}: once per component`);
    }
  });

  it('every SBOM, every record withdrawn in words: on each component its ranges name, it adds no finding (a finding carrying its id is one a standing record of the same vulnerability gives)', async (t) => {
    const audit = await auditWithdrawal(feedsDir);
    const checked: string[] = [];
    const problems: string[] = [];
    const sboms = sbomFiles.map((file) => ({ file, sbom: parseSbom(JSON.parse(fs.readFileSync(path.join(SBOMS, file), 'utf8'))) }));
    for (const withdrawn of new Set(audit.inWords.map((r) => r.id))) {
      const raw = newestCopy(withdrawn);
      for (const { file, sbom } of sboms) {
        for (const c of sbom.components) {
          if (!c.purl || recordAffects(raw, c.purl, c.version) !== true) continue;
          checked.push(`${file} ${c.purl} ${withdrawn}`);
          const standing = reference.affecting(c.purl, c.version) ?? new Set<string>();
          for (const f of results.get(file)!.findings.filter((x) => x.component === c.ref && ids(x).includes(withdrawn))) {
            if (!standing.has(reference.vulnerabilityOf.get(withdrawn)!)) problems.push(`${file} ${c.purl}: ${f.advisoryId} (${f.aliases.join(', ')}) is reported only through the withdrawn ${withdrawn}`);
          }
        }
      }
    }
    t.diagnostic(`${checked.length} (withdrawn record, component) pairs: ${checked.join('; ')}`);
    assert.deepEqual(problems, []);
    assert.ok(checked.length >= 6, `(withdrawn record, component) pairs checked: ${checked.join('; ')}`);
  });
});

describe('the rules, on their own', () => {
  it('primary id: the oldest CVE (by year, then number), then GHSA, then other ids in byte order', () => {
    assert.equal(primaryId(['GO-2021-0159', 'CVE-2015-5741', 'CVE-2015-5739', 'GHSA-aaaa-bbbb-cccc']), 'CVE-2015-5739');
    assert.equal(primaryId(['CVE-2021-10000', 'CVE-2021-9999']), 'CVE-2021-9999');
    assert.equal(primaryId(['PYSEC-2020-1', 'GHSA-zzzz-zzzz-zzzz', 'GO-2020-1']), 'GHSA-zzzz-zzzz-zzzz');
    assert.equal(primaryId(['PYSEC-2020-1', 'GO-2020-1']), 'GO-2020-1');
    assert.ok(comparePrimaryPreference('CVE-2014-99999', 'CVE-2015-0001') < 0);
  });

  it('alias graph: edges count both ways and components are joined transitively', () => {
    const g = new AliasGraph();
    g.add(['GO-2022-0380', 'CVE-2020-26892', 'GHSA-2c64-vj8g-vwrq']); // GO names both
    g.add(['GHSA-2c64-vj8g-vwrq']); // the GHSA names nothing back
    g.add(['GHSA-27h2-hvpr-p74q']); // a copy without aliases
    g.add(['GHSA-27h2-hvpr-p74q', 'CVE-2022-23529']); // the copy with them
    g.add(['X-1', 'CVE-2000-2']);
    g.add(['X-1', 'CVE-2000-1']); // two CVEs through X-1
    g.freeze();
    assert.equal(g.keyOf('GHSA-2c64-vj8g-vwrq'), 'CVE-2020-26892');
    assert.equal(g.keyOf('GO-2022-0380'), 'CVE-2020-26892');
    assert.equal(g.keyOf('GHSA-27h2-hvpr-p74q'), 'CVE-2022-23529');
    assert.equal(g.keyOf('CVE-2000-2'), 'CVE-2000-1');
    assert.equal(g.keyOf('NEVER-SEEN'), 'NEVER-SEEN');
  });

  it('scan side: findings of a component sharing an id become one, named by the primary id, with the purl match kept', () => {
    const base = {
      summary: null, severity: 'HIGH' as const, cvssScore: null, cvssVector: null, package: 'p', ecosystem: 'npm', purl: 'pkg:npm/p@1',
      installedVersion: '1', affectedRange: '<2', fixedVersion: '2', dbVersion: 'v',
    };
    const out = oneFindingPerVulnerability([
      { ...base, advisoryId: 'GHSA-27h2-hvpr-p74q', aliases: [], matchedBy: 'purl', component: 'a' },
      { ...base, advisoryId: 'CVE-2022-23529', aliases: ['GHSA-27h2-hvpr-p74q'], matchedBy: 'cpe', component: 'a' },
      { ...base, advisoryId: 'CVE-2022-23529', aliases: ['GHSA-27h2-hvpr-p74q'], matchedBy: 'purl', component: 'b' },
      { ...base, advisoryId: 'CVE-2020-1', aliases: [], matchedBy: 'purl', component: 'b' },
    ]);
    assert.deepEqual(
      out.map((f) => [f.component, f.advisoryId, f.aliases, f.matchedBy]),
      [
        ['a', 'CVE-2022-23529', ['GHSA-27h2-hvpr-p74q'], 'purl'],
        ['b', 'CVE-2022-23529', ['GHSA-27h2-hvpr-p74q'], 'purl'],
        ['b', 'CVE-2020-1', [], 'purl'],
      ],
    );
  });
});
