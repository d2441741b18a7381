/**
 * The scan's per-process cache of the active DB (scan/active-db-cache.ts),
 * on real PostgreSQL and the real pipeline stages: a repeated scan is
 * answered without reading the candidate rows or the headlines again (the
 * tables are locked away from it and it still finishes, with the same
 * result); and every move of the active-DB pointer empties it — a delta
 * applied in place in the same schema, a rollback, another full kit — so
 * the next scan reports exactly what the new DB holds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { buildBundle } from '../builder/build.ts';
import { activate } from '../functions/activate.ts';
import { load } from '../functions/load.ts';
import { rollback } from '../functions/rollback.ts';
import { unpack } from '../functions/unpack.ts';
import { verify } from '../functions/verify.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { ident } from '../infra/db.ts';
import { parseSbom, type Sbom } from '../scan/sbom.ts';
import { scanSbom, type ScanResult } from '../scan/scan.ts';
import { putBundle, registerImport, stageContext } from './pipeline-fixtures.ts';
import { createScanDb, feedsDir, loadFeeds, type ScanDb } from './helpers/scan-db.ts';
import { tmpDir } from './helpers/services.ts';

const LODASH = 'ghsa/GHSA-29mw-wpgm-hmr9.json'; // CVE-2020-28500: lodash < 4.17.21
const GIN = 'osv/Go/GO-2020-0001.json'; // gin < 1.6.0

const sbom: Sbom = parseSbom({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  version: 1,
  components: [
    { type: 'library', 'bom-ref': 'lodash', name: 'lodash', version: '4.17.20', purl: 'pkg:npm/lodash@4.17.20' },
    { type: 'library', 'bom-ref': 'gin', name: 'gin', version: '1.5.0', purl: 'pkg:golang/github.com/gin-gonic/gin@1.5.0' },
    { type: 'library', 'bom-ref': 'left-pad', name: 'left-pad', version: '1.3.0', purl: 'pkg:npm/left-pad@1.3.0' },
  ],
});

/** A feeds directory of the given real records. */
function feeds(name: string, files: string[]): string {
  const dir = tmpDir(`db-cache-${name}`);
  for (const rel of files) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.symlinkSync(path.join(feedsDir, rel), path.join(dir, rel));
  }
  return dir;
}

const found = (r: ScanResult): string[] => r.findings.map((f) => `${f.component} ${f.advisoryId}`).sort();

describe('the scan cache of the active DB', () => {
  let sdb: ScanDb;
  let baseKit: string;

  before(async () => {
    sdb = await createScanDb('scan-db-cache');
    const base = await loadFeeds(sdb, { dir: feeds('base', [LODASH, GIN]) }, '2026-11-29');
    await base.activate();
    baseKit = base.bundle.out;
  });
  after(async () => {
    await sdb?.close();
  });

  /** Builds the delta of `files` against the base kit and takes it through verify → unpack → load → activate. */
  async function activateDelta(files: string[], version: string): Promise<void> {
    const { fx } = sdb;
    const name = `stella-ouk-${version}.tar.gz`;
    const bundle = await buildBundle({ feedsDir: feeds(version, files), keyPath: fx.privateKey, out: path.join(fx.dir, name), version, tmpDir: fx.dir, base: baseKit, fullOut: path.join(fx.dir, `full-${name}`) });
    assert.equal(bundle.manifest.kind, 'delta');
    const payload = await putBundle(fx, bundle.out, name);
    await registerImport(fx, payload);
    const ctx = stageContext(fx, { now: () => new Date(bundle.manifest.created) });
    await verify(payload, ctx);
    await unpack(payload, ctx);
    await load(payload, ctx);
    await activate(payload, ctx);
  }

  it('answers a repeated scan from the cache: the candidate and headline tables are not read again', async () => {
    const first = await scanSbom(sdb.pool, sbom);
    assert.deepEqual(found(first), ['gin CVE-2020-36567', 'lodash CVE-2020-28500']);
    const schema = (await readActivePointer(sdb.pool)).activeSchema!;
    const blocker = new pg.Client({ connectionString: sdb.db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`LOCK TABLE ${ident(schema)}.affected, ${ident(schema)}.advisories, ${ident(schema)}.aliases IN ACCESS EXCLUSIVE MODE`);
      // a scan that read those tables would wait for the lock: watch for that wait, or for the scan's end
      let watching = true;
      const scanning = scanSbom(sdb.pool, sbom).then((r) => ({ done: r }));
      const blocked = (async () => {
        while (watching) {
          const w = await blocker.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
          if (w.rowCount) return { blocked: true as const };
          await new Promise((res) => setImmediate(res));
        }
        return { blocked: false as const };
      })();
      const outcome = await Promise.race([scanning, blocked]);
      watching = false;
      await blocked;
      await blocker.query('COMMIT');
      await scanning; // released by the COMMIT when it was waiting
      assert.ok('done' in outcome, 'the repeated scan waited for a table the cache holds');
      assert.deepEqual(outcome.done, first, 'and its result is the first scan\'s');
    } finally {
      await blocker.end();
    }
  });

  it('is emptied by a delta applied in place, a rollback and another full kit: each scan reports what its DB holds', async () => {
    const before = await scanSbom(sdb.pool, sbom);
    assert.deepEqual(found(before), ['gin CVE-2020-36567', 'lodash CVE-2020-28500']);
    const schema = (await readActivePointer(sdb.pool)).activeSchema!;

    // the delta withdraws lodash's advisory from the same schema (its rows deleted in place)
    await activateDelta([GIN], '2026-11-30');
    assert.equal((await readActivePointer(sdb.pool)).activeSchema, schema, 'a delta changes the active schema in place');
    const afterDelta = await scanSbom(sdb.pool, sbom);
    assert.equal(afterDelta.dbVersion, '2026-11-30');
    assert.deepEqual(found(afterDelta), ['gin CVE-2020-36567']);

    // the rollback puts the rows back: the cache (which now says "lodash: no rows") is dropped again
    await rollback(sdb.pool, sdb.fx.logger, new Date('2026-11-30T12:00:00Z'));
    const afterRollback = await scanSbom(sdb.pool, sbom);
    assert.equal(afterRollback.dbVersion, '2026-11-29');
    assert.deepEqual(afterRollback.findings, before.findings);

    // another full kit: lodash only
    await (await loadFeeds(sdb, { dir: feeds('lodash-only', [LODASH]) }, '2026-12-01')).activate();
    const afterFull = await scanSbom(sdb.pool, sbom);
    assert.equal(afterFull.dbVersion, '2026-12-01');
    assert.deepEqual(found(afterFull), ['lodash CVE-2020-28500']);
  });
});
