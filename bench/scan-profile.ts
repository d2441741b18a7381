/**
 * Where a full-size scan's time goes (not a test; no assertion): on the DB a
 * benchmark run left (`BENCH_KEEP=1 npm run bench`), the benchmark's
 * 1,000-component SBOM scanned N times under the V8 CPU profiler, then the
 * profile read per function (self and inclusive time, per scan) and the scan's
 * queries timed alone.
 *
 *   DB=postgres://postgres@127.0.0.1:5432/ouk_bench_<tag> N=60 npm run bench:scan-profile
 *
 * With VARIED=1, N different SBOMs each scanned once instead (nothing cached
 * yet for most of their packages).
 *
 * docs/performance.md (the scan section) quotes its figures.
 */
import { Session } from 'node:inspector/promises';
import { createPool, withActiveSnapshot } from '../infra/db.ts';
import { queryEnrichment } from '../scan/enrichment.ts';
import { identifyPurl, lookupKeys } from '../scan/identify.ts';
import { queryAffected, queryHeadlines } from '../scan/match.ts';
import { parseSbom } from '../scan/sbom.ts';
import { scanSbom } from '../scan/scan.ts';
import { kitVexStatements } from '../scan/vex.ts';
import { sbomFromDb } from './sbom-from-db.ts';

const url = process.env.DB;
if (!url) throw new Error('set DB to the database a `BENCH_KEEP=1 npm run bench` run left (ouk_bench_<tag>)');
const N = Number(process.env.N || 60);
const pool = createPool(url, 4);
const sbom = parseSbom(await sbomFromDb(pool));
// VARIED=1: N different SBOMs, each scanned once (what the caches cannot answer), instead of one N times
const varied = process.env.VARIED ? await Promise.all(Array.from({ length: N }, async (_, i) => parseSbom(await sbomFromDb(pool, 1000, `profile-${i}`)))) : null;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.start');
const times: number[] = [];
let findings = 0;
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  findings = (await scanSbom(pool, varied?.[i] ?? sbom)).findings.length;
  times.push(performance.now() - t0);
}
const { profile } = (await session.post('Profiler.stop')) as { profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } };
session.disconnect();

times.sort((a, b) => a - b);
console.log(`${N} scans, ${findings} findings: p50 ${times[Math.floor(N / 2)]!.toFixed(1)} ms, p95 ${times[Math.floor((N - 1) * 0.95)]!.toFixed(1)} ms (under the profiler)`);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: ProfileNode): string => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}`;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i]! / 1000 / N;
  const leaf = name(byId.get(id)!);
  self.set(leaf, (self.get(leaf) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur)!);
    if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + dt), seen.add(k);
  }
});
const top = (m: Map<string, number>, k: number): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([f, ms]) => `  ${ms.toFixed(1).padStart(6)} ms  ${f}`).join('\n');
console.log(`self time, ms a scan:\n${top(self, 20)}\ninclusive time, ms a scan:\n${top(inclusive, 30)}`);

// the scan's queries alone, each in its own snapshot as the scan runs them
const pairs = new Map<string, { ecosystem: string; package: string }>();
for (const c of sbom.components) {
  const id = c.purl ? identifyPurl(c.purl, c.version) : null;
  if (id?.ok) for (const k of lookupKeys(id)) pairs.set(`${k.ecosystem}\0${k.package}`, k);
}
const q: Record<string, number[]> = {};
const time = async (k: string, f: () => Promise<unknown>): Promise<void> => {
  const t0 = performance.now();
  await f();
  (q[k] ??= []).push(performance.now() - t0);
};
for (let i = 0; i < 20; i++) {
  await withActiveSnapshot(pool, async (client, active) => {
    let ids: string[] = [];
    await time('candidate rows (queryAffected)', async () => (ids = [...new Set((await queryAffected(client, active.schema, [...pairs.values()])).map((r) => r.advisory_id))]));
    await time('headlines and aliases of the candidates (queryHeadlines)', () => queryHeadlines(client, active.schema, ids));
    await time('KEV and EPSS (queryEnrichment)', () => queryEnrichment(client, active.schema, ids));
    await time("the kit's VEX (kitVexStatements)", () => kitVexStatements(client, active.schema, ids));
  });
}
for (const [k, v] of Object.entries(q)) console.log(`${k}: p50 ${v.sort((a, b) => a - b)[10]!.toFixed(1)} ms`);
await pool.end();
