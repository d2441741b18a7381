/**
 * Scan latency for a 1,000-component SBOM against a full-size DB.
 *
 *   node --import tsx bench/scan.bench.ts [--advisories 300000] [--components 1000] [--runs 30] [--keep]
 *
 * The DB: every real record of ../shared/feeds, built by the builder
 * (builder/db.ts), plus N synthetic advisories shaped like them
 * (test/fixtures/synthetic-bundle.ts advisoryRows: 1-3 affected packages and 0-2 CPE
 * matches each), COPYd into a fresh database (dropped afterwards unless
 * --keep) and activated.
 *
 * The SBOM: 1,000 components taken from the DB itself so that they hit:
 * about 55 % packages named in real advisories (at a fixed, introduced or
 * listed version, so some are vulnerable and some clean), 35 % synthetic
 * packages, 10 % CPE-only components. Purls are built with packageurl-js.
 *
 * Prints the figures and a markdown block for docs/performance.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { PackageURL } from 'packageurl-js';
import pg from 'pg';
import pgCopy from 'pg-copy-streams';
import { TABLES, type TableName } from '../bundle/tables.ts';
import { buildDb } from '../builder/db.ts';
import { createTableSql, copySql, indexSql } from '../infra/db-schema.ts';
import { createPool, ident, migrate, withActiveSnapshot } from '../infra/db.ts';
import { loadConfig } from '../lib/config.ts';
import { identifyPurl, lookupKeys } from '../scan/identify.ts';
import { queryAffected } from '../scan/match.ts';
import { parseSbom } from '../scan/sbom.ts';
import { scanSbom } from '../scan/scan.ts';
import { countedScan } from '../scan/service.ts';
import { advisoryRows } from '../test/fixtures/synthetic-bundle.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const feedsDir = path.resolve(repoRoot, '../shared/feeds');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}
const ADVISORIES = arg('advisories', 300_000);
const COMPONENTS = arg('components', 1000);
const RUNS = arg('runs', 30);
const KEEP = process.argv.includes('--keep');
const SCHEMA = 'ouk_db_bench';

const ms = (t0: number): number => performance.now() - t0;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const log = (s: string): void => void process.stderr.write(`${s}\n`);

async function* syntheticLines(table: TableName, n: number): AsyncGenerator<string> {
  let buf = '';
  for (let i = 0; i < n; i++) {
    for (const line of advisoryRows(i, 1)[table]) buf += line;
    if (buf.length > 1 << 20) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}

async function loadDb(pool: pg.Pool): Promise<Record<string, number>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stella-scan-bench-'));
  try {
    let t0 = performance.now();
    const build = await buildDb({ feedsDir, workDir: work, onWarning: () => undefined });
    log(`built the real DB from ${feedsDir}: ${build.advisories} advisories in ${fmt(ms(t0) / 1000)} s`);
    t0 = performance.now();
    const client = await pool.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS ${ident(SCHEMA)} CASCADE`);
      await client.query(`CREATE SCHEMA ${ident(SCHEMA)}`);
      for (const t of TABLES) {
        await client.query(createTableSql(SCHEMA, t));
        await pipeline(fs.createReadStream(path.join(work, `${t.name}.tsv`)), client.query(pgCopy.from(copySql(SCHEMA, t))));
        await pipeline(Readable.from(syntheticLines(t.name, ADVISORIES)), client.query(pgCopy.from(copySql(SCHEMA, t))));
        for (const sql of indexSql(SCHEMA, t)) await client.query(sql);
      }
      await client.query('ANALYZE');
      await client.query(
        `UPDATE ouk_meta.state SET active_import = 'bench', active_version = '2026-11-29', active_schema = $1, activated_at = now() WHERE singleton`,
        [SCHEMA],
      );
      const counts: Record<string, number> = {};
      for (const t of TABLES) counts[t.name] = Number((await client.query(`SELECT count(*) AS n FROM ${ident(SCHEMA)}.${ident(t.name)}`)).rows[0].n);
      log(`loaded ${JSON.stringify(counts)} in ${fmt(ms(t0) / 1000)} s`);
      return counts;
    } finally {
      client.release();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** purl of a DB (ecosystem, package) at a version, or null for ecosystems without a purl mapping. */
function purlFor(ecosystem: string, pkg: string, version: string): string | null {
  const [family, release] = [ecosystem.split(':')[0]!, ecosystem.split(':')[1]];
  const p = (type: string, ns: string | undefined, name: string, q?: Record<string, string>) => new PackageURL(type, ns, name, version, q).toString();
  const split = (s: string, sep: string): [string | undefined, string] => {
    const i = s.lastIndexOf(sep);
    return i === -1 ? [undefined, s] : [s.slice(0, i), s.slice(i + 1)];
  };
  switch (family) {
    case 'npm': {
      const [ns, name] = split(pkg, '/');
      return p('npm', ns, name);
    }
    case 'PyPI':
      return p('pypi', undefined, pkg);
    case 'Maven': {
      const [g, a] = split(pkg, ':');
      return g ? p('maven', g, a) : null;
    }
    case 'Go': {
      const [ns, name] = split(pkg, '/');
      return p('golang', ns, name);
    }
    case 'crates.io':
      return p('cargo', undefined, pkg);
    case 'RubyGems':
      return p('gem', undefined, pkg);
    case 'NuGet':
      return p('nuget', undefined, pkg);
    case 'Packagist': {
      const [ns, name] = split(pkg, '/');
      return p('composer', ns, name);
    }
    case 'Debian':
      return release ? p('deb', 'debian', pkg, { distro: `debian-${release}` }) : null;
    case 'Alpine':
      return release ? p('apk', 'alpine', pkg, { distro: `${release.replace(/^v/, '')}.0` }) : null;
    case 'AlmaLinux':
      return release ? p('rpm', 'almalinux', pkg, { distro: `almalinux-${release}` }) : null;
    default:
      return null;
  }
}

interface Pick {
  ecosystem: string;
  package: string;
  ranges: string;
  versions: string;
}

function versionFrom(row: Pick, i: number): string | null {
  const versions = JSON.parse(row.versions) as string[];
  const events = (JSON.parse(row.ranges) as { type: string; events: Record<string, string>[] }[]).filter((r) => r.type !== 'GIT').flatMap((r) => r.events);
  const fixed = events.map((e) => e.fixed).filter(Boolean);
  const introduced = events.map((e) => e.introduced).filter((v) => v && v !== '0');
  const last = events.map((e) => e.last_affected).filter(Boolean);
  const choices = [versions[0], introduced[0], fixed[0], last[0]].filter((v): v is string => Boolean(v));
  return choices.length ? choices[i % choices.length]! : null;
}

async function buildSbom(pool: pg.Pool): Promise<unknown> {
  const real = Math.round(COMPONENTS * 0.55);
  const synthetic = Math.round(COMPONENTS * 0.35);
  const cpeOnly = COMPONENTS - real - synthetic;
  const components: unknown[] = [];
  const seen = new Set<string>();
  const take = async (sql: string, want: number, kind: string): Promise<void> => {
    const rows = (await pool.query<Pick>(sql)).rows;
    let added = 0;
    for (const [i, r] of rows.entries()) {
      if (added >= want) break;
      const v = versionFrom(r, i);
      const purl = v ? purlFor(r.ecosystem, r.package, v) : null;
      if (!purl || seen.has(purl)) continue;
      seen.add(purl);
      components.push({ type: 'library', 'bom-ref': `${kind}-${added}`, name: r.package, version: v, purl });
      added++;
    }
    log(`SBOM: ${added} ${kind} components`);
  };
  const base = `SELECT DISTINCT ON (ecosystem, package) ecosystem, package, ranges, versions FROM ${ident(SCHEMA)}.affected`;
  await take(`${base} WHERE advisory_id !~ '^CVE-200[0-2]-[0-9]{5}$' ORDER BY ecosystem, package`, real, 'real');
  await take(`${base} WHERE advisory_id ~ '^CVE-200[0-2]-[0-9]{5}$' ORDER BY ecosystem, package LIMIT 20000`, synthetic, 'synthetic');
  const cpes = (
    await pool.query<{ vendor: string; product: string; v: string | null }>(
      `SELECT DISTINCT ON (vendor, product) vendor, product, coalesce(version_end_excluding, version_end_including, version_start_including) AS v FROM ${ident(SCHEMA)}.cpes WHERE vulnerable AND part = 'a' ORDER BY vendor, product LIMIT $1`,
      [cpeOnly * 3],
    )
  ).rows.filter((r) => r.v && /^\d/.test(r.v));
  for (const [i, r] of cpes.slice(0, cpeOnly).entries()) {
    components.push({ type: 'application', 'bom-ref': `cpe-${i}`, name: r.product, version: r.v, cpe: `cpe:2.3:a:${r.vendor}:${r.product}:${r.v}:*:*:*:*:*:*:*` });
  }
  log(`SBOM: ${Math.min(cpeOnly, cpes.length)} CPE-only components; ${components.length} in all`);
  return { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components };
}

async function main(): Promise<void> {
  const env = loadConfig(process.env);
  const admin = new pg.Client({ connectionString: env.databaseUrl });
  await admin.connect();
  const dbName = `ouk_bench_scan_${process.pid}`;
  await admin.query(`CREATE DATABASE ${ident(dbName)}`);
  const u = new URL(env.databaseUrl);
  u.pathname = `/${dbName}`;
  const pool = createPool(u.toString(), 8);
  const redis = new Redis(env.redisUrl, { maxRetriesPerRequest: 1 });
  const prefix = `bench-scan-${process.pid}:quota`;
  try {
    await migrate(pool);
    const counts = await loadDb(pool);
    const sbom = parseSbom(await buildSbom(pool));

    // the DB half alone: identities and the one affected query, in one snapshot
    const pairs = sbom.components.flatMap((c) => {
      const id = c.purl ? identifyPurl(c.purl, c.version) : null;
      return id?.ok ? lookupKeys(id) : [];
    });
    const dbOnly: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await withActiveSnapshot(pool, (client, active) => queryAffected(client, active.schema, pairs));
      dbOnly.push(ms(t0));
    }

    for (let i = 0; i < 3; i++) await scanSbom(pool, sbom); // warm-up
    const lat: number[] = [];
    let last = await scanSbom(pool, sbom);
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      last = await scanSbom(pool, sbom);
      lat.push(ms(t0));
    }
    const counted: number[] = [];
    const config = { ...env, quotaAnon: 1_000_000 };
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await countedScan({ pool, redis, config, quota: { keyPrefix: prefix } }, sbom, { client: { kind: 'anonymous', id: 'bench' }, token: null });
      counted.push(ms(t0));
    }
    const par = 4;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: par * 5 }, () => scanSbom(pool, sbom)));
    const parMs = ms(t0);

    const s = last.summary;
    const lines = [
      `DB: ${counts.advisories!.toLocaleString('en')} advisories (${(counts.advisories! - ADVISORIES).toLocaleString('en')} real from ../shared/feeds + ${ADVISORIES.toLocaleString('en')} synthetic), ${counts.affected!.toLocaleString('en')} affected rows, ${counts.cpes!.toLocaleString('en')} CPE rows, ${counts.aliases!.toLocaleString('en')} aliases.`,
      `SBOM: ${s.components} components (${s.checked} checked, ${s.notChecked} not checked); ${pairs.length} (ecosystem, package) lookups; ${s.findings} findings in ${s.vulnerableComponents} components, ${s.undecided} undecided advisories.`,
      '',
      '| measure | p50 | p95 | max |',
      '|---|---:|---:|---:|',
      `| scanSbom (snapshot, 2 queries, range evaluation), ms | ${fmt(pct(lat, 50))} | ${fmt(pct(lat, 95))} | ${fmt(Math.max(...lat))} |`,
      `| of which the affected query alone, ms | ${fmt(pct(dbOnly, 50))} | ${fmt(pct(dbOnly, 95))} | ${fmt(Math.max(...dbOnly))} |`,
      `| counted scan (+ Redis quota INCR), ms | ${fmt(pct(counted, 50))} | ${fmt(pct(counted, 95))} | ${fmt(Math.max(...counted))} |`,
      '',
      `Throughput with ${par} concurrent scans: ${fmt(((par * 5) / parMs) * 1000)} scans/s (${par * 5} scans in ${fmt(parMs)} ms). ${RUNS} runs each, after 3 warm-up scans.`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    redis.disconnect();
    await pool.end();
    if (!KEEP) await admin.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
    else log(`kept database ${dbName}`);
    await admin.end();
  }
}

await main();
