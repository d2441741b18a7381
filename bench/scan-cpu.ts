/**
 * A scan's CPU time (not a test; no assertion): on the DB a benchmark run
 * left (`BENCH_KEEP=1 npm run bench`), the benchmark's 1,000-component SBOM
 * scanned N times after three warm-up scans, then N different SBOMs once
 * each, as `npm run bench` does; per scan the process's CPU time (user +
 * system, `process.cpuUsage`) beside the wall time. On a machine other work
 * loads, wall times swing with that load and CPU times much less: compare
 * two versions of the code by CPU time, run one after the other against the
 * same DB. ROOT (default: this checkout) is the tree whose scan/ runs, e.g.
 * `git archive <commit> | tar -x -C /tmp/old` with node_modules linked.
 *
 *   DB=postgres://postgres@127.0.0.1:5432/ouk_bench_<tag> N=40 npm run bench:scan-cpu [-- ROOT]
 *
 * It counts the scan's JavaScript and its client-side I/O, not PostgreSQL's
 * own work (another process): the wall time shows that.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const url = process.env.DB;
if (!url) throw new Error('set DB to the database a `BENCH_KEEP=1 npm run bench` run left (ouk_bench_<tag>)');
const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const N = Number(process.env.N || 40);
const { createPool } = (await import(path.join(root, 'infra/db.ts'))) as typeof import('../infra/db.ts');
const { parseSbom } = (await import(path.join(root, 'scan/sbom.ts'))) as typeof import('../scan/sbom.ts');
const { scanSbom } = (await import(path.join(root, 'scan/scan.ts'))) as typeof import('../scan/scan.ts');
const { sbomFromDb } = (await import(path.join(root, 'bench/sbom-from-db.ts'))) as typeof import('./sbom-from-db.ts');

const pool = createPool(url, 4);
const sbom = parseSbom(await sbomFromDb(pool));
const others = [];
for (let i = 0; i < N; i++) others.push(parseSbom(await sbomFromDb(pool, 1000, `scan-${i}`)));

type Run = { wall: number; cpu: number; findings: number };
const one = async (s: ReturnType<typeof parseSbom>): Promise<Run> => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await scanSbom(pool, s);
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000, findings: r.findings.length };
};
const q = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;
const line = (runs: Run[]): string => {
  const cpu = runs.map((r) => r.cpu);
  const wall = runs.map((r) => r.wall);
  const findings = runs.reduce((a, r) => a + r.findings, 0) / runs.length;
  return `CPU p50 ${q(cpu, 0.5).toFixed(1)} ms, p95 ${q(cpu, 0.95).toFixed(1)} ms; wall p50 ${q(wall, 0.5).toFixed(1)} ms, p95 ${q(wall, 0.95).toFixed(1)} ms; ${findings.toFixed(0)} findings`;
};

for (let i = 0; i < 3; i++) await one(sbom);
const repeated: Run[] = [];
for (let i = 0; i < N; i++) repeated.push(await one(sbom));
const varied: Run[] = [];
for (const s of others) varied.push(await one(s));
console.log(`${root}\n  one SBOM, ${N} runs:       ${line(repeated)}\n  ${N} different SBOMs:    ${line(varied)}\n  load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
await pool.end();
