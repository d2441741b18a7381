/**
 * A scan DB for tests, built from REAL feed records: the chosen OSV/GHSA files
 * of ../shared/feeds (linked into a temporary feeds directory) and the chosen
 * CVEs of its NVD pages (streamed out into a small page), run through the
 * builder (builder/db.ts buildDb: normalise, merge, rows), COPYd into a schema
 * of a test database with the tables of bundle/tables.ts, then made the
 * active DB in ouk_meta.state.
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import pgCopy from 'pg-copy-streams';
import { TABLES } from '../../bundle/tables.ts';
import { buildDb } from '../../builder/db.ts';
import { readNvdFile } from '../../builder/feeds/nvd-stream.ts';
import { createTableSql, copySql, indexSql } from '../../infra/db-schema.ts';
import { createPool, ident, migrate, type Pool } from '../../infra/db.ts';
import { createTestDatabase, sharedDir, tmpDir, type TestDatabase } from './services.ts';

export interface FeedSelection {
  /** paths relative to ../shared/feeds, e.g. "osv/Go/GO-2020-0001.json", "ghsa/GHSA-….json" */
  files?: string[];
  /** CVE ids to take from ../shared/feeds/nvd */
  nvd?: string[];
}

export const feedsDir = path.join(sharedDir, 'feeds');

/** A feeds directory holding just the selection (links to the real files, NVD items copied unchanged). */
export async function selectFeeds(sel: FeedSelection, tag = 'feeds'): Promise<string> {
  const dir = tmpDir(`${tag}-feeds`);
  for (const rel of sel.files ?? []) {
    const src = path.join(feedsDir, rel);
    if (!fs.existsSync(src)) throw new Error(`no such feed record: ${src}`);
    const dst = path.join(dir, rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.symlinkSync(src, dst);
  }
  if (sel.nvd?.length) {
    const want = new Set(sel.nvd);
    const items: unknown[] = [];
    const nvdDir = path.join(feedsDir, 'nvd');
    for (const f of fs.readdirSync(nvdDir).filter((n) => n.endsWith('.json')).sort()) {
      for await (const item of readNvdFile(path.join(nvdDir, f))) {
        if (item.kind !== 'cve') continue;
        const id = (item.cve as { id?: string }).id;
        if (id && want.has(id)) {
          items.push({ cve: item.cve });
          want.delete(id);
        }
      }
      if (want.size === 0) break;
    }
    if (want.size) throw new Error(`NVD records not found in ${nvdDir}: ${[...want].join(', ')}`);
    fs.mkdirSync(path.join(dir, 'nvd'));
    const page = { resultsPerPage: items.length, startIndex: 0, totalResults: items.length, format: 'NVD_CVE', version: '2.0', timestamp: '2026-03-15T08:00:01.000', vulnerabilities: items };
    fs.writeFileSync(path.join(dir, 'nvd', 'page-test.json'), JSON.stringify(page));
  }
  return dir;
}

/** Builds the DB members of a feeds directory with the builder. */
export async function buildMembers(feeds: string, tag = 'members'): Promise<Map<string, string>> {
  const workDir = tmpDir(`${tag}-work`);
  const build = await buildDb({ feedsDir: feeds, workDir, onWarning: (w) => process.stderr.write(`feed warning: ${JSON.stringify(w)}\n`) });
  return new Map(build.members.map((m) => [m.table, path.join(workDir, `${m.table}.tsv`)]));
}

/** Creates `schema` with the DB tables and COPYs the member files into it. */
export async function loadSchema(pool: Pool, schema: string, members: Map<string, string>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(`CREATE SCHEMA ${ident(schema)}`);
    for (const t of TABLES) {
      await client.query(createTableSql(schema, t));
      const file = members.get(t.name);
      if (file) await pipeline(fs.createReadStream(file), client.query(pgCopy.from(copySql(schema, t))));
      for (const sql of indexSql(schema, t)) await client.query(sql);
    }
    await client.query(`ANALYZE`);
  } finally {
    client.release();
  }
}

/** Points ouk_meta.state at `schema` (what activation does). */
export async function activateSchema(pool: Pick<Pool, 'query'>, schema: string, version: string): Promise<void> {
  await pool.query(
    `UPDATE ouk_meta.state SET active_import = $1, active_version = $2, active_schema = $3, active_digest = NULL, activated_at = $4 WHERE singleton`,
    [`test-${schema}`, version, schema, new Date()],
  );
}

export interface ScanDb {
  db: TestDatabase;
  pool: Pool;
  close(): Promise<void>;
}

/** A migrated test database, nothing loaded yet. */
export async function createScanDb(tag: string): Promise<ScanDb> {
  const db = await createTestDatabase(tag);
  const pool = createPool(db.url, 8);
  await migrate(pool);
  return {
    db,
    pool,
    async close() {
      await pool.end();
      await db.drop();
    },
  };
}

/** One call: test database + selected real records loaded into `schema` and activated as `version`. */
export async function createLoadedScanDb(tag: string, sel: FeedSelection, version = '2026-11-29', schema = 'ouk_db_test_1'): Promise<ScanDb> {
  const sdb = await createScanDb(tag);
  try {
    const members = await buildMembers(await selectFeeds(sel, tag), tag);
    await loadSchema(sdb.pool, schema, members);
    await activateSchema(sdb.pool, schema, version);
  } catch (e) {
    await sdb.close();
    throw e;
  }
  return sdb;
}
