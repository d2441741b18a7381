/**
 * Same findings, two trees (not a test): the benchmark's SBOMs (the repeated
 * one and N others, bench/sbom-from-db.ts) scanned by this checkout and by
 * ROOT (another tree, e.g. `git archive <commit> | tar -x -C /tmp/old` with
 * node_modules linked), each twice (cold, then from the caches), on the DB a
 * benchmark run left; prints any difference of the whole ScanResult
 * (JSON.stringify) and exits 1 when there is one.
 *
 *   DB=postgres://postgres@127.0.0.1:5432/ouk_bench_<tag> N=12 node --import tsx bench/scan-compare.ts ROOT
 */
import path from 'node:path';
import { createPool } from '../infra/db.ts';
import { parseSbom } from '../scan/sbom.ts';
import { scanSbom } from '../scan/scan.ts';
import { sbomFromDb } from './sbom-from-db.ts';

const url = process.env.DB;
const root = process.argv[2];
if (!url || !root) throw new Error('usage: DB=… node --import tsx bench/scan-compare.ts ROOT');
const N = Number(process.env.N || 12);
const other = (await import(path.join(path.resolve(root), 'scan/scan.ts'))) as typeof import('../scan/scan.ts');
const pool = createPool(url, 4);
const otherPool = createPool(url, 4);
let differ = 0;
let findings = 0;
for (let i = 0; i <= N; i++) {
  const sbom = parseSbom(await sbomFromDb(pool, 1000, i === 0 ? '' : `scan-${i}`));
  for (const round of ['cold', 'cached']) {
    const a = JSON.stringify(await scanSbom(pool, sbom));
    const b = JSON.stringify(await other.scanSbom(otherPool, sbom));
    findings += (JSON.parse(a) as { findings: unknown[] }).findings.length;
    if (a !== b) {
      differ++;
      console.log(`SBOM ${i} (${round}): results differ`);
    }
  }
}
console.log(`${N + 1} SBOMs, twice each: ${differ} differ (${findings} findings compared)`);
await pool.end();
await otherPool.end();
process.exit(differ ? 1 : 0);
