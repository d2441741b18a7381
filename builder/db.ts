/**
 * Feeds in, full DB members out: read and normalise every feed into a spool
 * while the alias graph (merge-key.ts) learns every record's ids, sort the
 * spool by merge key (the primary id of each record's vulnerability; external
 * sort), merge each key's records into one advisory and write its rows to the
 * table members, hashing them on the way.
 *
 * The result is the full DB, sorted by advisory_id, with a content_hash per
 * advisory: a delta bundle (docs/bundle-format.md, deltas) is a streaming merge-join of this
 * advisories member against its base's on (advisory_id, content_hash).
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FeedSummary } from '../bundle/manifest.ts';
import { EXTRA_TABLES } from '../bundle/extra-tables.ts';
import { type TableName, TABLES } from '../bundle/tables.ts';
import { buildEnrichment, type ExtraMember } from './enrichment.ts';
import { readEuvdAliases, withEuvdAliases } from './feeds/euvd.ts';
import { type FeedWarning, readFeeds } from './feeds/index.ts';
import { MemberFile, type WrittenMember } from './member-file.ts';
import { mergeRecords } from './merge.ts';
import { AliasGraph, linkedIds } from './merge-key.ts';
import { advisoryRows, vexRows } from './rows.ts';
import { RecordSpool, sortedGroups } from './spool.ts';

export interface DbBuild {
  feeds: FeedSummary[];
  /** The table members, in TABLES order. */
  members: (WrittenMember & { table: TableName })[];
  /** The extra tables' members (bundle/extra-tables.ts) whose feeds were present, in EXTRA_TABLES order. */
  extras: ExtraMember[];
  advisories: number;
  /** sha256 of `"<member path> <sha256>\n"` over the table members in TABLES order, then the extra members present. */
  digest: string;
}

export interface DbBuildOptions {
  feedsDir: string;
  /** An empty scratch directory the caller removes afterwards. */
  workDir: string;
  onWarning(w: FeedWarning): void;
  /** GNU sort's memory buffer (-S). */
  sortBuffer?: string;
}

export function dbDigest(members: readonly { path: string; sha256: string }[]): string {
  const h = createHash('sha256');
  for (const m of members) h.update(`${m.path} ${m.sha256}\n`);
  return h.digest('hex');
}

/** The members a DB digest covers, in order: every table, then the extra tables present. */
export function digestMembers<T extends { path: string }>(members: readonly T[]): T[] {
  const at = (p: string) => members.find((m) => m.path === p);
  return [...TABLES.map((t) => at(t.member)), ...EXTRA_TABLES.map((t) => at(t.member))].filter((m): m is T => m !== undefined);
}

export async function buildDb(opts: DbBuildOptions): Promise<DbBuild> {
  // EUVD ids become aliases of the CVE each names (feeds/euvd.ts).
  const euvdAliases = await readEuvdAliases(path.resolve(opts.feedsDir), (file, reason) => opts.onWarning({ feed: 'euvd', file, reason }));
  const spool = new RecordSpool(path.join(opts.workDir, 'records.tsv'));
  const graph = new AliasGraph();
  let feeds: FeedSummary[];
  try {
    feeds = await readFeeds(opts.feedsDir, {
      sink: (raw) => {
        const r = withEuvdAliases(raw, euvdAliases);
        graph.add(linkedIds(r));
        return spool.write(r);
      },
      onWarning: opts.onWarning,
    });
    await spool.close();
    graph.freeze();
  } catch (e) {
    spool.destroy();
    throw e;
  }

  const files = TABLES.map((t) => ({ table: t.name, file: new MemberFile(t.member, path.join(opts.workDir, `${t.name}.tsv`)) }));
  // The kit's VEX statements (CSAF VEX documents): a member whenever the csaf feed was read.
  const vexTable = EXTRA_TABLES.find((t) => t.name === 'vex')!;
  const vexFile = feeds.some((f) => f.name === 'csaf') ? new MemberFile(vexTable.member, path.join(opts.workDir, 'vex.tsv')) : null;
  let advisories = 0;
  try {
    const sortDir = path.join(opts.workDir, 'sort');
    await mkdir(sortDir);
    for await (const group of sortedGroups(spool.path, (id) => graph.keyOf(id), { tmpDir: sortDir, bufferSize: opts.sortBuffer })) {
      const advisory = mergeRecords(group.key, group.records);
      const rows = advisoryRows(advisory);
      advisories++;
      for (const { table, file } of files) await file.writeRows(rows[table]);
      if (vexFile) await vexFile.writeRows(vexRows(advisory));
    }
    const members = [];
    for (const { table, file } of files) members.push({ ...(await file.close()), table });
    const enrichment = await buildEnrichment(opts.feedsDir, opts.workDir, opts.onWarning);
    const vex: ExtraMember[] = vexFile ? [{ ...(await vexFile.close()), table: 'vex' }] : [];
    const extras = digestMembers([...enrichment.members, ...vex]);
    return { feeds: [...feeds, ...enrichment.feeds], members, extras, advisories, digest: dbDigest([...members, ...extras]) };
  } catch (e) {
    for (const { file } of files) file.destroy();
    vexFile?.destroy();
    throw e;
  }
}
