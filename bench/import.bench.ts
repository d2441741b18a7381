/**
 * The full-size kit benchmark (`npm run bench [-- --json]`; not a test, no
 * assertion on time). Everything at real density, from the corpus
 * bench/corpus.ts derives from the real records in ../shared/feeds:
 *
 *  1. the corpus (BENCH_SCALE, default 1: ~870,000 feed records) and the full
 *     kit `stella ouk build` makes of it — build time and builder peak RSS —
 *     both cached in bench/out/;
 *  2. the real services as separate processes, as in production: s3rver
 *     (dev/s3rver-main.ts) posting its events to the API (api/main.ts),
 *     one worker (queue/worker-main.ts), a fresh database and key prefix;
 *  3. object put → active DB of the kit, each stage's own time, the worker's
 *     and the API's peak RSS;
 *  4. in the same run, the naive floor: gunzip of a plain .tar.gz of the same
 *     rows as TSV, piped into psql COPY of bare tables, no indexes; the median
 *     of BENCH_FLOOR_RUNS (3) runs, each (and the pipeline's) from a CHECKPOINT;
 *  5. deltas of BENCH_DELTAS % of the corpus's records (default 0.1,1: the
 *     corpus with that share of records edited, built with --base), each put
 *     → active, then rolled back so each applies to the same base;
 *  6. scans of a 1,000-component SBOM (components taken from the DB so that
 *     they hit) against the full-size DB: p50 and p95 over BENCH_SCANS runs,
 *     after 3 warm-up scans (a running API is warm); then BENCH_SCANS
 *     different SBOMs scanned once each (other packages; rows an earlier
 *     SBOM shared are already compiled, scan/range-cache.ts, as at a site);
 *  7. re-scan after a nightly delta: BENCH_RESCAN_SBOMS (100) stored SBOMs of
 *     1,000 components each (`stella sbom add`'s function), then the first
 *     delta of BENCH_DELTAS put → active; measured from the activation's
 *     commit to the last stored SBOM's result for it (the worker's rescan
 *     queue, OUK_RESCAN_CONCURRENCY), then rolled back;
 *  8. a full kit onto the DB of its lineage: the full kit of the first
 *     delta's corpus (that delta's --full-out, same version) put while the
 *     first full kit is active — the load stages only the advisories whose
 *     content_hash differs (functions/common/onto-load.ts) — put → active and
 *     the load's choice (`fullOntoLineage` in import.json), then rolled back.
 *
 * Prints the figures, rewrites the import section of docs/performance.md and,
 * with --json, writes bench/out/import.json.
 *
 *   BENCH_SCALE=1 BENCH_DELTAS=0.1,1 npm run bench -- --json
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseManifest, type Manifest } from '../bundle/manifest.ts';
import { contentPath } from '../bundle/member-codec.ts';
import { TABLES } from '../bundle/tables.ts';
import { rollback } from '../functions/rollback.ts';
import { createPool, ident } from '../infra/db.ts';
import { createTableSql } from '../infra/db-schema.ts';
import { getImport, type ImportRecord } from '../infra/import-records/index.ts';
import { createStore, uploadStream } from '../infra/store.ts';
import { parseStoreEndpoint } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { importIdFor } from '../queue/identity.ts';
import { parseSbom } from '../scan/sbom.ts';
import { scanSbom } from '../scan/scan.ts';
import { storedSbomScanner } from '../scan/stored.ts';
import { addSbom } from '../functions/sboms/rescan.ts';
import { latestActivation } from '../infra/activations.ts';
import { generateKeyPair } from '../signing/index.ts';
import { formatBytes } from '../cli/import/preflight.ts';
import { writeCorpus } from './corpus.ts';
import { sbomFromDb } from './sbom-from-db.ts';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(repoRoot, 'bench', 'out');
const SCALE = Number(process.env.BENCH_SCALE || 1);
const DELTAS = (process.env.BENCH_DELTAS ?? '0.1,1').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
const SCANS = Number(process.env.BENCH_SCANS || 40);
const FLOOR_RUNS = Number(process.env.BENCH_FLOOR_RUNS || 3);
/** Scans run before the measured ones (JIT and caches warm, as in a running API). */
const WARMUP_SCANS = 3;
const RESCAN_SBOMS = Number(process.env.BENCH_RESCAN_SBOMS || 100);
const JSON_OUT = process.argv.includes('--json');
const adminUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const stella = path.join(repoRoot, 'bin', 'stella.js');
const log = (m: string): void => void process.stderr.write(`[bench] ${m}\n`);
const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Peak RSS (VmHWM) of a live process, in MiB. */
function peakRssMiB(pid: number | undefined): number | null {
  if (!pid) return null;
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

interface BuiltKit {
  file: string;
  manifest: Manifest;
  bytes: number;
  buildSeconds: number;
  builderPeakRssMiB: number;
}

/** `stella ouk build` under GNU time (for its peak RSS), cached beside the kit. */
async function buildKit(feeds: string, out: string, version: string, key: string, base?: string, fullOut?: string): Promise<BuiltKit> {
  const meta = `${out}.bench.json`;
  // the kit where it is now (the cache may have been written from another checkout)
  if (fs.existsSync(out) && fs.existsSync(meta) && (!fullOut || fs.existsSync(fullOut))) return { ...(JSON.parse(fs.readFileSync(meta, 'utf8')) as BuiltKit), file: out };
  await fsp.mkdir(path.dirname(out), { recursive: true });
  const t = performance.now();
  const args = [stella, 'ouk', 'build', '--feeds', feeds, '--key', key, '--out', out, '--version', version, '--expires-days', '3650', ...(base ? ['--base', base] : []), ...(fullOut ? ['--full-out', fullOut] : [])];
  const { stderr } = await run('/usr/bin/time', ['-f', 'PEAK_RSS_KB %M', process.execPath, ...args], { maxBuffer: 64 << 20, cwd: repoRoot });
  const buildSeconds = (performance.now() - t) / 1000;
  const peak = Number(/PEAK_RSS_KB (\d+)/.exec(stderr)?.[1] ?? 0);
  const { stdout } = await run('tar', ['-xzOf', out, 'manifest.json'], { maxBuffer: 64 << 20 });
  const kit: BuiltKit = { file: out, manifest: parseManifest(stdout), bytes: fs.statSync(out).size, buildSeconds, builderPeakRssMiB: Math.round(peak / 1024) };
  fs.writeFileSync(meta, JSON.stringify(kit));
  log(`built ${path.basename(out)}: ${formatBytes(kit.bytes)} in ${buildSeconds.toFixed(0)} s, builder peak RSS ${kit.builderPeakRssMiB} MiB`);
  return kit;
}

/** The naive floor's input: a plain .tar.gz of the kit's DB rows as TSV (gzip -6), cached. */
async function plainTarball(kit: BuiltKit): Promise<{ file: string; members: string[] }> {
  const file = kit.file.replace(/\.tar\.gz$/, '.plain.tar.gz');
  const members = TABLES.map((t) => t.member);
  if (!fs.existsSync(file)) {
    const dir = await fsp.mkdtemp(path.join(outDir, 'plain-'));
    try {
      await run('tar', ['-xzf', kit.file, '-C', dir, ...kit.manifest.members.filter((m) => m.role === 'db' && TABLES.some((t) => t.member === contentPath(m))).map((m) => m.path)]);
      for (const m of kit.manifest.members) if (m.compression === 'zstd' && fs.existsSync(path.join(dir, m.path))) await run('zstd', ['-d', '-q', '--rm', path.join(dir, m.path)]);
      await run('tar', ['-czf', file, '-C', dir, ...members]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  return { file, members };
}

/**
 * A copy of the corpus with `percent` % of its OSV/GHSA records edited (a
 * hard-linked tree: edited files are replaced, not written through), for a
 * delta of about that share of advisories.
 */
async function editedCorpus(corpus: string, percent: number): Promise<{ dir: string; edited: number }> {
  const dir = `${corpus}-edit-${percent}`;
  const done = path.join(dir, '.edited.json');
  if (fs.existsSync(done)) return JSON.parse(fs.readFileSync(done, 'utf8')) as { dir: string; edited: number };
  await fsp.rm(dir, { recursive: true, force: true });
  await run('cp', ['-al', corpus, dir]);
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) await walk(f);
      else if (e.name.endsWith('.json') && !e.name.startsWith('.')) files.push(f);
    }
  };
  for (const feed of ['osv', 'ghsa']) await walk(path.join(dir, feed));
  files.sort();
  const want = Math.max(1, Math.round((files.length * percent) / 100));
  const step = files.length / want;
  for (let k = 0; k < want; k++) {
    const f = files[Math.floor(k * step)]!;
    const rec = JSON.parse(await fsp.readFile(f, 'utf8')) as { modified?: string; summary?: string };
    rec.modified = '2026-11-21T00:00:00Z';
    rec.summary = `${rec.summary ?? ''} (revised)`;
    await fsp.writeFile(`${f}.tmp`, JSON.stringify(rec));
    await fsp.rename(`${f}.tmp`, f); // a new inode: the corpus's own file is untouched
  }
  const result = { dir, edited: want };
  fs.writeFileSync(done, JSON.stringify(result));
  return result;
}

/** The full kit of the `pct` % delta's corpus (that delta's `--full-out`). */
function fullOutOf(pct: number): string {
  return path.join(outDir, `kit-${SCALE}`, `delta-${pct}`, 'stella-ouk-2026-11-21-full.tar.gz');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]!;
}

function stageMs(rec: ImportRecord, s: 'verify' | 'unpack' | 'load' | 'activate'): number {
  const st = rec.stages[s];
  return st?.startedAt && st.finishedAt ? Date.parse(st.finishedAt) - Date.parse(st.startedAt) : NaN;
}

async function main(): Promise<void> {
  await fsp.mkdir(outDir, { recursive: true });
  const keyDir = path.join(outDir, 'keys');
  await fsp.mkdir(keyDir, { recursive: true });
  const privateKey = path.join(keyDir, 'cosign.key');
  const publicKey = path.join(keyDir, 'cosign.pub');
  if (!fs.existsSync(privateKey)) {
    const kp = await generateKeyPair();
    fs.writeFileSync(privateKey, kp.privateKeyPem, { mode: 0o600 });
    fs.writeFileSync(publicKey, kp.publicKeyPem);
  }

  // ---- corpus and kit ----------------------------------------------------------
  const corpusDir = path.join(outDir, `corpus-${SCALE}`);
  const corpus = await writeCorpus(corpusDir, SCALE, { log });
  const kitDir = path.join(outDir, `kit-${SCALE}`);
  const full = await buildKit(corpusDir, path.join(kitDir, 'stella-ouk-2026-11-20.tar.gz'), '2026-11-20', privateKey);
  const rows = Object.fromEntries(full.manifest.members.filter((m) => m.role === 'db').map((m) => [contentPath(m).replace(/^db\/|\.tsv$/g, ''), m.rows ?? 0]));
  const dbBytes = full.manifest.members.filter((m) => m.role === 'db').reduce((n, m) => n + (m.content?.size ?? m.size), 0);
  log(`kit: ${full.manifest.db.advisories} advisories, ${formatBytes(full.bytes)} (${formatBytes(dbBytes)} of DB rows), rows ${JSON.stringify(rows)}`);
  const plain = await plainTarball(full);

  // ---- services ------------------------------------------------------------------
  const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  const dbName = `ouk_bench_${tag}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${ident(dbName)}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stella-bench-'));
  const s3Port = await freePort();
  const apiPort = await freePort();
  const bucket = 'ouk-bench';
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    OUK_QUEUE_PREFIX: `bench-${tag}`,
    S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    OUK_BUCKET: bucket,
    OUK_TRUSTED_KEYS: publicKey,
    OUK_WEBHOOK_TOKEN: `bench-${tag}`,
    OUK_WEBHOOK_URL: `http://127.0.0.1:${apiPort}/hooks/minio`,
    STELLA_API_PORT: String(apiPort),
    STELLA_API_HOST: '127.0.0.1',
    STELLA_STATE_DIR: stateDir,
    OUK_RECONCILE_SECONDS: '3600',
    STELLA_AIRGAP: 'true',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'warn',
  };
  const children: Record<string, ChildProcess> = {};
  const start = (name: string, entry: string): void => {
    const out = fs.openSync(path.join(stateDir, `${name}.log`), 'a');
    children[name] = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
  };
  const pool = createPool(databaseUrl, 4);
  const cleanup = async (): Promise<void> => {
    for (const c of Object.values(children)) c.kill('SIGTERM');
    await sleep(500);
    await pool.end().catch(() => undefined);
    if (!process.env.BENCH_KEEP) {
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
      await a.end();
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  };

  try {
    start('s3rver', 'dev/s3rver-main.ts');
    start('api', 'api/main.ts');
    start('worker', 'queue/worker-main.ts');
    const store = createStore(parseStoreEndpoint(`http://127.0.0.1:${s3Port}`, 'S3RVER', 'S3RVER', 5 * 1024 ** 3));
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false);
      const s3ok = await store.bucketExists(bucket).catch(() => false);
      if (ok && s3ok) break;
      if (i > 240) throw new Error(`services did not come up; logs in ${stateDir}`);
      await sleep(250);
    }
    await sleep(1500); // the worker process settles

    // ---- the floor: gunzip | psql COPY, bare tables -------------------------------
    // Measured FLOOR_RUNS times (the median is the floor), each from a fresh CHECKPOINT, as the
    // pipeline run is: a run never pays for the dirty pages and WAL of the one before.
    const floorSchema = 'ouk_floor';
    const toCommand = `psql -q -v ON_ERROR_STOP=1 "${databaseUrl}" -c "\\copy ${floorSchema}.$(basename "$TAR_FILENAME" .tsv) from stdin"`;
    const floorCmd = `tar -xzf ${plain.file} --to-command='${toCommand}' ${plain.members.join(' ')}`;
    const floorRuns: number[] = [];
    for (let i = 0; i < FLOOR_RUNS; i++) {
      await pool.query(`CREATE SCHEMA ${floorSchema}`);
      for (const t of TABLES) await pool.query(createTableSql(floorSchema, t));
      await pool.query('CHECKPOINT');
      const t0 = performance.now();
      await run('bash', ['-c', floorCmd], { maxBuffer: 1 << 20 });
      floorRuns.push(performance.now() - t0);
      await pool.query(`DROP SCHEMA ${floorSchema} CASCADE`);
    }
    const floorMs = [...floorRuns].sort((a, b) => a - b)[Math.floor(floorRuns.length / 2)]!;
    log(`floor: ${sec(floorMs)} (median of ${floorRuns.map(sec).join(', ')})`);
    // For the reader, not the ratio: the same one-pass load with the COPY settings the pipeline's
    // load uses (lz4 for large values, COPY FREEZE into a table emptied in the same transaction).
    const tunedCommand = `PGOPTIONS='-c default_toast_compression=lz4' psql -q -v ON_ERROR_STOP=1 "${databaseUrl}" -c BEGIN -c "TRUNCATE ${floorSchema}.$(basename "$TAR_FILENAME" .tsv)" -c "\\copy ${floorSchema}.$(basename "$TAR_FILENAME" .tsv) from stdin with (freeze)" -c COMMIT`;
    const tunedCmd = `tar -xzf ${plain.file} --to-command='${tunedCommand.replace(/'/g, `'"'"'`)}' ${plain.members.join(' ')}`;
    await pool.query(`CREATE SCHEMA ${floorSchema}`);
    for (const t of TABLES) await pool.query(createTableSql(floorSchema, t));
    await pool.query('CHECKPOINT');
    const tuned0 = performance.now();
    await run('bash', ['-c', tunedCmd], { maxBuffer: 1 << 20 });
    const tunedFloorMs = performance.now() - tuned0;
    await pool.query(`DROP SCHEMA ${floorSchema} CASCADE`);
    log(`floor with the pipeline's COPY settings (lz4, FREEZE): ${sec(tunedFloorMs)}`);
    await pool.query('CHECKPOINT');

    // ---- the pipeline: put → active -------------------------------------------------
    const put = async (file: string, key: string): Promise<{ id: string; putMs: number; t0: number }> => {
      await uploadStream(store, bucket, `${key}.sig`, fs.createReadStream(`${file}.sig`), fs.statSync(`${file}.sig`).size);
      const t0 = performance.now();
      const up = await uploadStream(store, bucket, key, fs.createReadStream(file, { highWaterMark: 1 << 20 }), fs.statSync(file).size);
      return { id: importIdFor(bucket, key, up.etag), putMs: performance.now() - t0, t0 };
    };
    const waitActive = async (id: string, t0: number): Promise<{ ms: number; rec: ImportRecord }> => {
      for (;;) {
        const rec = await getImport(pool, id);
        if (rec?.stages.activate?.state === 'done') return { ms: performance.now() - t0, rec };
        if (rec?.state === 'failed') throw new Error(`import failed: ${rec.errorCode}: ${rec.error}`);
        await sleep(50);
      }
    };
    const p = await put(full.file, path.basename(full.file));
    const done = await waitActive(p.id, p.t0);
    const stages = Object.fromEntries((['verify', 'unpack', 'load', 'activate'] as const).map((s) => [s, stageMs(done.rec, s)]));
    const ratio = done.ms / floorMs;
    log(`pipeline: put ${sec(p.putMs)}, put → active ${sec(done.ms)} (${Object.entries(stages).map(([s, ms]) => `${s} ${sec(ms)}`).join(', ')}), ratio ${ratio.toFixed(2)}`);

    // ---- scans of a 1,000-component SBOM ----------------------------------------------
    const sbom = parseSbom(await sbomFromDb(pool));
    const times: number[] = [];
    let findings = 0;
    for (let i = 0; i < WARMUP_SCANS; i++) await scanSbom(pool, sbom);
    for (let i = 0; i < SCANS; i++) {
      const s0 = performance.now();
      const r = await scanSbom(pool, sbom);
      times.push(performance.now() - s0);
      findings = r.findings.length;
    }
    times.sort((a, b) => a - b);
    // The same scans over SCANS different SBOMs, each scanned once: no scan finds the versions of
    // its packages already parsed by the one before (the per-process memo of PEP 440 keys and Maven
    // parses), as a site's first scan of a new image would.
    const others = [];
    for (let i = 0; i < SCANS; i++) others.push(parseSbom(await sbomFromDb(pool, 1000, `scan-${i}`)));
    const variedTimes: number[] = [];
    let variedFindings = 0;
    for (const other of others) {
      const s0 = performance.now();
      const r = await scanSbom(pool, other);
      variedTimes.push(performance.now() - s0);
      variedFindings += r.findings.length;
    }
    variedTimes.sort((a, b) => a - b);
    const scan = {
      components: sbom.components.length,
      findings,
      runs: SCANS,
      p50Ms: Math.round(percentile(times, 0.5)),
      p95Ms: Math.round(percentile(times, 0.95)),
      varied: { sboms: SCANS, findingsMean: Math.round(variedFindings / SCANS), p50Ms: Math.round(percentile(variedTimes, 0.5)), p95Ms: Math.round(percentile(variedTimes, 0.95)) },
    };
    log(`scan: ${scan.components} components, ${findings} findings, p50 ${scan.p50Ms} ms, p95 ${scan.p95Ms} ms over ${SCANS} runs; ${SCANS} different SBOMs once each: p50 ${scan.varied.p50Ms} ms, p95 ${scan.varied.p95Ms} ms`);

    // ---- deltas ---------------------------------------------------------------------------
    const logger = createLogger('bench', { level: 'warn' });
    const deltas: Array<{ percent: number; advisories: number; bytes: number; putToActiveSeconds: number; loadSeconds: number; activateSeconds: number; rollbackSeconds: number }> = [];
    for (const pct of DELTAS) {
      const edited = await editedCorpus(corpusDir, pct);
      const d = await buildKit(edited.dir, path.join(kitDir, `delta-${pct}`, 'stella-ouk-2026-11-21.tar.gz'), '2026-11-21', privateKey, full.file, fullOutOf(pct));
      const changes = d.manifest.db.changes;
      const touched = changes ? changes.added + changes.changed + changes.removed : 0;
      const dp = await put(d.file, `delta-${pct}-${path.basename(d.file)}`);
      const dd = await waitActive(dp.id, dp.t0);
      const rt = performance.now();
      await rollback(pool, logger);
      const rollbackMs = performance.now() - rt;
      deltas.push({ percent: pct, advisories: touched, bytes: d.bytes, putToActiveSeconds: dd.ms / 1000, loadSeconds: stageMs(dd.rec, 'load') / 1000, activateSeconds: stageMs(dd.rec, 'activate') / 1000, rollbackSeconds: rollbackMs / 1000 });
      log(`delta ${pct} % (${touched} advisories, ${formatBytes(d.bytes)}): put → active ${sec(dd.ms)}, rollback ${sec(rollbackMs)}`);
    }

    // ---- re-scan of stored SBOMs after a nightly delta --------------------------------------
    let rescan: { sboms: number; components: number; seconds: number; delta: number; outcomes: Record<string, number> } | null = null;
    if (DELTAS.length && RESCAN_SBOMS > 0) {
      const pct = DELTAS[0]!;
      const deps = { pool, scanner: storedSbomScanner(pool), logger: createLogger('bench', { level: 'warn' }), now: () => new Date() };
      let components = 0;
      for (let i = 0; i < RESCAN_SBOMS; i++) {
        const doc = await sbomFromDb(pool, 1000, `sbom-${i}`);
        const r = await addSbom(deps, { name: `bench-${i}`, document: doc, bytes: JSON.stringify(doc).length, maxBytes: 64 << 20 });
        components += r.components;
      }
      log(`stored ${RESCAN_SBOMS} SBOMs (${components} components), each scanned once`);
      const edited = await editedCorpus(corpusDir, pct);
      const d = await buildKit(edited.dir, path.join(kitDir, `delta-${pct}`, 'stella-ouk-2026-11-21.tar.gz'), '2026-11-21', privateKey, full.file, fullOutOf(pct));
      const dp = await put(d.file, `rescan-delta-${pct}-${path.basename(d.file)}`);
      const dd = await waitActive(dp.id, dp.t0);
      const committed = Date.parse(dd.rec.stages.activate!.finishedAt!);
      const act = (await latestActivation(pool))!;
      for (;;) {
        const n = (await pool.query<{ n: number; last: Date | null }>('SELECT count(*)::int AS n, max(computed_at) AS last FROM ouk_meta.sbom_results WHERE activation_seq = $1', [act.seq])).rows[0]!;
        if (n.n >= RESCAN_SBOMS) {
          const outcomes = Object.fromEntries(
            (await pool.query<{ scanned: boolean; n: number }>('SELECT scanned, count(*)::int AS n FROM ouk_meta.sbom_results WHERE activation_seq = $1 GROUP BY scanned', [act.seq])).rows.map((r) => [r.scanned ? 'scanned' : 'carried', r.n]),
          );
          rescan = { sboms: RESCAN_SBOMS, components, seconds: +((n.last!.getTime() - committed) / 1000).toFixed(2), delta: pct, outcomes };
          break;
        }
        await sleep(50);
      }
      log(`re-scan of ${RESCAN_SBOMS} stored SBOMs after the ${pct} % delta: ${rescan.seconds} s (${JSON.stringify(rescan.outcomes)})`);
      await rollback(pool, logger);
    }

    // ---- a full kit onto its predecessor: the full kit of the first delta's corpus, put → active -------
    // The site holds full (2026-11-20); the full kit of 2026-11-21 (the first delta's --full-out, the
    // same DB as that delta) shares its lineage: the load stages only its difference.
    let fullOntoLineage: { changedPercent: number; advisories: number; bytes: number; putToActiveSeconds: number; loadSeconds: number; activateSeconds: number; mode: string } | null = null;
    if (DELTAS.length) {
      const pct = DELTAS[0]!;
      const file = fullOutOf(pct);
      const fp = await put(file, `full-onto-${pct}-${path.basename(file)}`);
      const fd = await waitActive(fp.id, fp.t0);
      const loaded = fd.rec.stages.load?.result as { mode?: string; onto?: { changed: number; added: number; removed: number } } | undefined;
      const touched = loaded?.onto ? loaded.onto.changed + loaded.onto.added + loaded.onto.removed : 0;
      fullOntoLineage = {
        changedPercent: +((100 * touched) / full.manifest.db.advisories).toFixed(3),
        advisories: touched,
        bytes: fs.statSync(file).size,
        putToActiveSeconds: +(fd.ms / 1000).toFixed(2),
        loadSeconds: +(stageMs(fd.rec, 'load') / 1000).toFixed(2),
        activateSeconds: +(stageMs(fd.rec, 'activate') / 1000).toFixed(2),
        mode: loaded?.mode ?? 'unknown',
      };
      log(`full kit onto its predecessor (${fullOntoLineage.mode}): put → active ${sec(fd.ms)} (load ${fullOntoLineage.loadSeconds} s, activate ${fullOntoLineage.activateSeconds} s)`);
      await rollback(pool, logger);
    }

    const workerPeak = peakRssMiB(children.worker?.pid);
    const apiPeak = peakRssMiB(children.api?.pid);

    // ---- report ---------------------------------------------------------------------------
    const figures = {
      scale: SCALE,
      corpusRecords: corpus.records,
      advisories: full.manifest.db.advisories,
      affectedRows: rows.affected ?? 0,
      rows,
      bundleBytes: full.bytes,
      dbBytes,
      buildSeconds: Math.round(full.buildSeconds),
      builderPeakRssMiB: full.builderPeakRssMiB,
      putToActiveSeconds: +(done.ms / 1000).toFixed(2),
      stagesSeconds: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, +(v / 1000).toFixed(2)])),
      floorSeconds: +(floorMs / 1000).toFixed(2),
      floorRunsSeconds: floorRuns.map((ms) => +(ms / 1000).toFixed(2)),
      tunedFloorSeconds: +(tunedFloorMs / 1000).toFixed(2),
      ratio: +ratio.toFixed(2),
      workerPeakRssMiB: workerPeak,
      apiPeakRssMiB: apiPeak,
      deltas: deltas.map((d) => ({ ...d, putToActiveSeconds: +d.putToActiveSeconds.toFixed(2), loadSeconds: +d.loadSeconds.toFixed(2), activateSeconds: +d.activateSeconds.toFixed(2), rollbackSeconds: +d.rollbackSeconds.toFixed(2) })),
      scan,
      rescan,
      fullOntoLineage,
    };
    if (JSON_OUT) fs.writeFileSync(path.join(outDir, 'import.json'), `${JSON.stringify(figures, null, 2)}\n`);

    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const pgVersion = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const section = [
      '<!-- import-bench:begin (written by `npm run bench`; edit outside these markers) -->',
      '## The full-size kit: build, size, put → active, deltas, scans',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${cpu}, ${formatBytes(os.totalmem())} RAM, PostgreSQL ${pgVersion}, Node ${process.version}; store: s3rver (local disk); one worker process; air-gapped.`,
      '',
      `Corpus (bench/corpus.ts, scale ${SCALE}): ${corpus.records} feed records in the real formats, derived from ../shared/feeds. Kit: ${figures.advisories} merged advisories, ${figures.affectedRows} affected rows (${Object.entries(rows).map(([k, v]) => `${k} ${v}`).join(', ')}).`,
      '',
      '| measure | figure |',
      '|---|---|',
      `| kit size (DB members + SBOM, no images) | **${formatBytes(full.bytes)}** (${formatBytes(dbBytes)} of DB rows) |`,
      `| build (\`stella ouk build\`), builder peak RSS | ${full.buildSeconds.toFixed(0)} s, ${full.builderPeakRssMiB} MiB |`,
      `| **put → active** (PUT starts → activation committed) | **${sec(done.ms)}** |`,
      `| of which the tarball PUT | ${sec(p.putMs)} |`,
      `| verify (one GET: sha256 + ECDSA over the tarball, manifest) | ${sec(stages.verify!)} |`,
      `| unpack (GET, gunzip, tar, per-member sha256, members staged still compressed) | ${sec(stages.unpack!)} |`,
      `| load (every table at once: GET → zstd -d → COPY, keys, indexes, ANALYZE) | ${sec(stages.load!)} |`,
      `| activate (switch + cleanup) | ${sec(stages.activate!)} |`,
      `| **floor**: gunzip of a plain .tar.gz of the same rows piped into psql COPY, bare tables (median of ${floorRuns.length} runs: ${floorRuns.map(sec).join(', ')}) | **${sec(floorMs)}** |`,
      `| **ratio** put → active / floor | **${ratio.toFixed(2)}** |`,
      `| the floor with the COPY settings load uses (lz4 TOAST compression, COPY FREEZE), one run, for comparison | ${sec(tunedFloorMs)} (ratio ${(done.ms / tunedFloorMs).toFixed(2)}) |`,
      `| worker / API peak RSS over the run | ${workerPeak ?? '?'} MiB / ${apiPeak ?? '?'} MiB |`,
      `| scan of a ${scan.components}-component SBOM (${scan.findings} findings), ${SCANS} runs after ${WARMUP_SCANS} warm-up scans | p50 ${scan.p50Ms} ms, p95 ${scan.p95Ms} ms |`,
      `| scans of ${scan.varied.sboms} different 1000-component SBOMs (${scan.varied.findingsMean} findings on average), each once | p50 ${scan.varied.p50Ms} ms, p95 ${scan.varied.p95Ms} ms |`,
      ...(rescan
        ? [`| re-scan of ${rescan.sboms} stored SBOMs (${rescan.components} components) after the ${rescan.delta} % delta, activation commit → last result (${Object.entries(rescan.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}) | ${rescan.seconds.toFixed(2)} s |`]
        : []),
      '',
      'The floor, exactly as run (bare tables created first, no keys or indexes):',
      '',
      '```sh',
      floorCmd.replace(databaseUrl, '$DATABASE_URL').replace(plain.file, `bench/out/kit-${SCALE}/${path.basename(plain.file)}`),
      '```',
      '',
      ...(deltas.length
        ? [
            'Deltas (the corpus with that share of its OSV/GHSA records edited, built with `--base`; each put → active, then rolled back, so each applies to the same base):',
            '',
            '| delta | advisories touched | size | put → active | load | activate (apply) | rollback |',
            '|---|---|---|---|---|---|---|',
            ...deltas.map((d) => `| ${d.percent} % | ${d.advisories} | ${formatBytes(d.bytes)} | ${d.putToActiveSeconds.toFixed(2)} s | ${d.loadSeconds.toFixed(2)} s | ${d.activateSeconds.toFixed(2)} s | ${d.rollbackSeconds.toFixed(2)} s |`),
            '',
          ]
        : []),
      ...(fullOntoLineage
        ? [
            `A full kit onto the site's DB of its lineage: the full kit of the ${DELTAS[0]} % delta's corpus (its \`--full-out\`, ${formatBytes(fullOntoLineage.bytes)}), put while ${full.manifest.bundleVersion} is active: ${fullOntoLineage.advisories} advisories (${fullOntoLineage.changedPercent} %) differ; the load chose "${fullOntoLineage.mode}"; put → active **${fullOntoLineage.putToActiveSeconds.toFixed(2)} s** (load ${fullOntoLineage.loadSeconds.toFixed(2)} s, activate ${fullOntoLineage.activateSeconds.toFixed(2)} s), then rolled back.`,
            '',
          ]
        : []),
      `Reproduce: \`BENCH_SCALE=${SCALE} BENCH_DELTAS=${DELTAS.join(',')} npm run bench -- --json\` (writes bench/out/import.json; needs Redis and PostgreSQL on loopback, GNU tar, GNU time, psql and zstd).`,
      '<!-- import-bench:end -->',
    ].join('\n');
    process.stdout.write(section + '\n');
    writeSection(path.join(repoRoot, 'docs', 'performance.md'), section);
    log('docs/performance.md updated');
  } finally {
    await cleanup();
  }
}

function writeSection(file: string, section: string): void {
  const begin = '<!-- import-bench:begin';
  const end = '<!-- import-bench:end -->';
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Performance\n\nFigures measured on the development machine; every section names the command that produced it.\n';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + section + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(file, text);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
