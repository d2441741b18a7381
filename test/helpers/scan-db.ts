/**
 * A scan DB for tests, built from REAL feed records and imported the way a
 * site imports a kit: the chosen OSV/GHSA files of ../shared/feeds (linked
 * into a temporary feeds directory) and the chosen CVEs of its NVD pages
 * (streamed out into a small page) are built into a signed bundle by the
 * builder (builder/build.ts buildBundle), put into the test's own s3rver
 * bucket with its .sig, recorded as ingest records it (queue/ingest.ts), and
 * taken through the real stages verify → unpack → load → activate
 * (functions/*.ts) into a test database.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildBundle, type WrittenBundle } from '../../builder/build.ts';
import { readNvdFile } from '../../builder/feeds/nvd-stream.ts';
import { activate, type ActivateResult } from '../../functions/activate.ts';
import type { StagePayload } from '../../functions/context.ts';
import { load } from '../../functions/load.ts';
import { unpack } from '../../functions/unpack.ts';
import { verify } from '../../functions/verify.ts';
import type { Pool } from '../../infra/db.ts';
import { pipelineFixture, putBundle, registerImport, stageContext, type PipelineFixture } from '../pipeline-fixtures.ts';
import { sharedDir, tmpDir, type TestDatabase } from './services.ts';

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

export interface ScanDb {
  db: TestDatabase;
  pool: Pool;
  /** the database, bucket and signing key (trusted by the stages) that DBs are imported through */
  fx: PipelineFixture;
  close(): Promise<void>;
}

/** A migrated test database with its own bucket and signing key, nothing imported yet. */
export async function createScanDb(tag: string): Promise<ScanDb> {
  const fx = await pipelineFixture(tag);
  return { db: fx.db, pool: fx.pool, fx, close: () => fx.close() };
}

export interface LoadedFeeds {
  bundle: WrittenBundle;
  payload: StagePayload;
  /** the schema the DB was loaded into */
  schema: string;
  /** the real activate stage: makes this DB the active one */
  activate(): Promise<ActivateResult>;
}

/**
 * Builds a signed bundle of the selection (version `version`), uploads it and
 * runs verify → unpack → load; the DB is active only once `activate()` runs.
 * The stages' clock is the kit's own `created` time, so its expiry (the
 * builder's default, 31 days on) never depends on the day the test runs.
 */
export async function loadFeeds(sdb: ScanDb, sel: FeedSelection | { dir: string }, version: string): Promise<LoadedFeeds> {
  const { fx } = sdb;
  const name = `stella-ouk-${version}.tar.gz`;
  const feeds = 'dir' in sel ? sel.dir : await selectFeeds(sel, `${fx.db.name}-${version}`);
  const bundle = await buildBundle({ feedsDir: feeds, keyPath: fx.privateKey, out: path.join(fx.dir, name), version, tmpDir: fx.dir });
  const payload = await putBundle(fx, bundle.out, name);
  await registerImport(fx, payload);
  const ctx = stageContext(fx, { now: () => new Date(bundle.manifest.created) });
  await verify(payload, ctx);
  await unpack(payload, ctx);
  const loaded = await load(payload, ctx);
  return { bundle, payload, schema: loaded.schema, activate: () => activate(payload, ctx) };
}

/** One call: a test database with the selected real records (or a whole feeds directory) imported and activated as `version`. */
export async function createLoadedScanDb(tag: string, sel: FeedSelection | { dir: string }, version = '2026-11-29'): Promise<ScanDb> {
  const sdb = await createScanDb(tag);
  try {
    await (await loadFeeds(sdb, sel, version)).activate();
  } catch (e) {
    await sdb.close();
    throw e;
  }
  return sdb;
}
