/**
 * Import benchmark (`npm run bench`; not a test, no assertion on time).
 *
 * 1. Generates a full-size signed bundle: BENCH_ADVISORIES advisories (default
 *    300 000) shaped like the builder's rows (test/fixtures/synthetic-bundle.ts), cached
 *    in bench/out/.
 * 2. Starts the real services as separate processes, as in production: s3rver
 *    (infra/dev/s3rver-main.ts) posting its events to the API (api/main.ts), and one
 *    worker (queue/worker-main.ts), on a fresh database and key prefix.
 * 3. Times object put → active DB (the tarball's PUT starts the clock; its
 *    event reaches the webhook; verify → unpack → load → activate run on the
 *    worker), with each stage's own time from the import record.
 * 4. In the same run, the floor: one gunzip pass of the same tarball piped
 *    into psql COPY of the same rows (GNU tar --to-command, one psql per DB
 *    member, into bare tables).
 * 5. Optionally (BENCH_DELTAS=0.1,1,10, the default; empty to skip) applies
 *    deltas changing that percentage of advisories, each timed put → active,
 *    each rolled back afterwards (timed too) so all apply to the same base.
 *
 * Prints the figures and rewrites the import section of docs/performance.md.
 *
 *   BENCH_ADVISORIES=300000 BENCH_DELTAS=0.1,1,10 npm run bench
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { TABLES } from '../bundle/tables.ts';
import { createPool, ident } from '../infra/db.ts';
import { createStore } from '../infra/store.ts';
import { parseStoreEndpoint } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { generateKeyPair } from '../signing/index.ts';
import { createTableSql } from '../infra/db-schema.ts';
import { uploadStream } from '../infra/store.ts';
import { formatBytes } from '../cli/import/preflight.ts';
import { getImport, type ImportRecord } from '../infra/import-records.ts';
import { rollback } from '../functions/rollback.ts';
import { importIdFor } from '../queue/identity.ts';
import { writeSyntheticBundle, type SyntheticBundle } from '../test/fixtures/synthetic-bundle.ts';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(repoRoot, 'bench', 'out');
const N = Number(process.env.BENCH_ADVISORIES || 300_000);
const DELTAS = (process.env.BENCH_DELTAS ?? '0.1,1,10').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
const adminUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const log = (m: string): void => void process.stderr.write(`[bench] ${m}\n`);

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

async function cached(name: string, make: (file: string) => Promise<SyntheticBundle>): Promise<{ path: string; bundle: SyntheticBundle }> {
  const file = path.join(outDir, name);
  const meta = `${file}.json`;
  if (fs.existsSync(file) && fs.existsSync(`${file}.sig`) && fs.existsSync(meta)) {
    return { path: file, bundle: JSON.parse(fs.readFileSync(meta, 'utf8')) as SyntheticBundle };
  }
  const t = performance.now();
  const bundle = await make(file);
  fs.writeFileSync(meta, JSON.stringify(bundle));
  log(`generated ${name} (${formatBytes(bundle.size)}) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return { path: file, bundle };
}

function sec(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function stageMs(rec: ImportRecord, s: 'verify' | 'unpack' | 'load' | 'activate'): number {
  const st = rec.stages[s];
  return st?.startedAt && st.finishedAt ? Date.parse(st.finishedAt) - Date.parse(st.startedAt) : NaN;
}

async function main(): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  const keyDir = path.join(outDir, 'keys');
  fs.mkdirSync(keyDir, { recursive: true });
  const privateKey = path.join(keyDir, 'cosign.key');
  const publicKey = path.join(keyDir, 'cosign.pub');
  if (!fs.existsSync(privateKey)) {
    const kp = await generateKeyPair();
    fs.writeFileSync(privateKey, kp.privateKeyPem, { mode: 0o600 });
    fs.writeFileSync(publicKey, kp.publicKeyPem);
    for (const f of fs.readdirSync(outDir)) if (f.endsWith('.tar.gz') || f.endsWith('.sig') || f.endsWith('.json')) fs.rmSync(path.join(outDir, f));
  }

  const full = await cached(`bench-full-${N}.tar.gz`, (f) => writeSyntheticBundle(f, { version: '2026-11-20', advisories: N, seed: 1 }, privateKey));
  const rawBytes = full.bundle.manifest.members.filter((m) => m.role === 'db').reduce((n, m) => n + m.size, 0);
  log(`bundle: ${N} advisories, ${formatBytes(full.bundle.size)} compressed, ${formatBytes(rawBytes)} of DB rows, counts ${JSON.stringify(full.bundle.counts)}`);

  // ---- services -------------------------------------------------------------
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
    LOG_LEVEL: 'warn',
  };
  const children: ChildProcess[] = [];
  const start = (name: string, entry: string): void => {
    const out = fs.openSync(path.join(stateDir, `${name}.log`), 'a');
    const c = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    children.push(c);
  };
  const pool = createPool(databaseUrl, 4);
  const cleanup = async (): Promise<void> => {
    for (const c of children) c.kill('SIGTERM');
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
    start('s3rver', 'infra/dev/s3rver-main.ts');
    start('api', 'api/main.ts');
    start('worker', 'queue/worker-main.ts');
    const store = createStore(parseStoreEndpoint(`http://127.0.0.1:${s3Port}`, 'S3RVER', 'S3RVER', 5 * 1024 ** 3));
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.ok, () => false);
      const s3ok = await store.bucketExists(bucket).catch(() => false);
      if (ok && s3ok) break;
      if (i > 120) throw new Error(`services did not come up; logs in ${stateDir}`);
      await sleep(250);
    }
    await sleep(1500); // the worker process settles

    // ---- the floor: gunzip | psql COPY ----------------------------------------
    const floorSchema = 'ouk_floor';
    await pool.query(`CREATE SCHEMA ${floorSchema}`);
    for (const t of TABLES) await pool.query(createTableSql(floorSchema, t));
    const members = TABLES.map((t) => t.member);
    const toCommand = `psql -q -v ON_ERROR_STOP=1 "${databaseUrl}" -c "\\copy ${floorSchema}.$(basename "$TAR_FILENAME" .tsv) from stdin"`;
    const floorCmd = `tar -xzf ${full.path} --to-command='${toCommand}' ${members.join(' ')}`;
    let t = performance.now();
    await run('bash', ['-c', floorCmd], { maxBuffer: 1 << 20 });
    const floorMs = performance.now() - t;
    const floorRows = await pool.query<{ n: string }>(`SELECT (SELECT count(*) FROM ${floorSchema}.advisories) AS n`);
    log(`floor: ${sec(floorMs)} (${floorRows.rows[0].n} advisories copied)`);
    await pool.query(`DROP SCHEMA ${floorSchema} CASCADE`);

    // ---- the pipeline: put → active --------------------------------------------
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
    const p = await put(full.path, path.basename(full.path));
    const done = await waitActive(p.id, p.t0);
    const stages = Object.fromEntries((['verify', 'unpack', 'load', 'activate'] as const).map((s) => [s, stageMs(done.rec, s)]));
    log(`pipeline: put ${sec(p.putMs)}, put → active ${sec(done.ms)} (${Object.entries(stages).map(([s, ms]) => `${s} ${sec(ms)}`).join(', ')})`);
    const ratio = done.ms / floorMs;
    const workerPid = children[2]?.pid;
    const peak = workerPid ? /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${workerPid}/status`, 'utf8'))?.[1] : undefined;
    const peakRss = peak ? formatBytes(Number(peak) * 1024) : 'unknown';
    log(`worker peak RSS: ${peakRss}`);
    log(`ratio put → active / floor: ${ratio.toFixed(2)}`);

    // ---- deltas -----------------------------------------------------------------
    const deltaRows: string[] = [];
    const logger = createLogger('bench', { level: 'warn' });
    for (const pct of DELTAS) {
      const n = Math.max(1, Math.round((N * pct) / 100));
      // Spread the touched advisories over the DB: 70 % changed, 20 % added, 10 % removed.
      const changedN = Math.round(n * 0.7);
      const removedN = Math.round(n * 0.1);
      const addedN = Math.max(0, n - changedN - removedN);
      const step = Math.max(1, Math.floor(N / Math.max(1, changedN + removedN)));
      const picks = Array.from({ length: changedN + removedN }, (_, k) => (k * step + 7) % N);
      const changed = picks.slice(0, changedN);
      const removed = picks.slice(changedN);
      const name = `bench-delta-${N}-${pct}.tar.gz`;
      const d = await cached(name, (f) =>
        writeSyntheticBundle(
          f,
          { version: '2026-11-21', advisories: 0, seed: 9, delta: { base: { version: '2026-11-20', advisories: N, seed: 1, dbDigest: full.bundle.manifest.db.digest }, changed, added: addedN, removed } },
          privateKey,
        ),
      );
      const dp = await put(d.path, name);
      const dd = await waitActive(dp.id, dp.t0);
      const rt = performance.now();
      await rollback(pool, logger);
      const rollbackMs = performance.now() - rt;
      log(`delta ${pct} % (${n} advisories, ${formatBytes(d.bundle.size)}): put → active ${sec(dd.ms)} (activate ${sec(stageMs(dd.rec, 'activate'))}), rollback ${sec(rollbackMs)}`);
      deltaRows.push(
        `| ${pct} % delta | ${n} | ${formatBytes(d.bundle.size)} | ${sec(dd.ms)} | ${sec(stageMs(dd.rec, 'load'))} | ${sec(stageMs(dd.rec, 'activate'))} | ${sec(rollbackMs)} |`,
      );
      // The rolled-back delta's object stays in the bucket; the next delta is a new object, a new import.
    }

    // ---- report -------------------------------------------------------------------
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const pgVersion = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v;
    const section = [
      '<!-- import-bench:begin (written by `npm run bench`; edit outside these markers) -->',
      '## Import: object put → active DB',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${cpu}, ${formatBytes(os.totalmem())} RAM, PostgreSQL ${pgVersion}, Node ${process.version}; store: s3rver (local disk); one worker process.`,
      '',
      `Bundle: ${N} advisories (synthetic rows shaped like the builder's, test/fixtures/synthetic-bundle.ts), ${formatBytes(full.bundle.size)} compressed, ${formatBytes(rawBytes)} of DB rows: ${Object.entries(full.bundle.counts).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
      '',
      '| measure | time |',
      '|---|---|',
      `| **put → active** (PUT starts → activation committed) | **${sec(done.ms)}** |`,
      `| of which the tarball PUT | ${sec(p.putMs)} |`,
      `| verify (one GET: sha256 + ECDSA over the tarball, manifest) | ${sec(stages.verify)} |`,
      `| unpack (GET, gunzip, tar, per-member sha256, PUT of each member) | ${sec(stages.unpack)} |`,
      `| load (GET of each member → COPY, primary key, indexes, ANALYZE, one transaction) | ${sec(stages.load)} |`,
      `| activate (switch + cleanup) | ${sec(stages.activate)} |`,
      `| **floor**: gunzip of the same tarball piped into psql COPY of the same rows | **${sec(floorMs)}** |`,
      `| **ratio** put → active / floor | **${ratio.toFixed(2)}** |`,
      `| worker process peak RSS over the import (memory stays flat in the bundle's size) | ${peakRss} |`,
      '',
      'The floor, exactly as run (bare tables created first, no keys or indexes):',
      '',
      '```sh',
      floorCmd.replace(databaseUrl, '$DATABASE_URL').replace(full.path, 'bench/out/' + path.basename(full.path)),
      '```',
      '',
      ...(deltaRows.length
        ? [
            `Deltas on that DB next to the full import of it (each delta put → active, then rolled back, so each applies to the same ${N}-advisory base):`,
            '',
            '| bundle | advisories touched | size | put → active | load | activate (apply) | rollback |',
            '|---|---|---|---|---|---|---|',
            `| full import (for comparison) | ${N} | ${formatBytes(full.bundle.size)} | ${sec(done.ms)} | ${sec(stages.load)} | ${sec(stages.activate)} (switch) | — |`,
            ...deltaRows,
            '',
          ]
        : []),
      `Reproduce: \`BENCH_ADVISORIES=${N} BENCH_DELTAS=${DELTAS.join(',')} npm run bench\` (needs Redis and PostgreSQL on loopback, GNU tar and psql).`,
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
