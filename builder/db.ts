/**
 * Feeds in, full DB members out: read and normalise every feed into a spool
 * while the alias graph (merge-key.ts) learns every record's ids, sort the
 * spool by merge key (the primary id of each record's vulnerability; external
 * sort), merge each key's records into one advisory and write its rows to the
 * table members, hashing them on the way.
 *
 * The result is the full DB, sorted by advisory_id, with a content_hash per
 * advisory: a delta bundle (issue 4) is a streaming merge-join of this
 * advisories member against its base's on (advisory_id, content_hash).
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FeedSummary } from '../bundle/manifest.ts';
import { type TableName, TABLES } from '../bundle/tables.ts';
import { type FeedWarning, readFeeds } from './feeds/index.ts';
import { MemberFile, type WrittenMember } from './member-file.ts';
import { mergeRecords } from './merge.ts';
import { AliasGraph, linkedIds } from './merge-key.ts';
import { advisoryRows } from './rows.ts';
import { RecordSpool, sortedGroups } from './spool.ts';

export interface DbBuild {
  feeds: FeedSummary[];
  /** The table members, in TABLES order. */
  members: (WrittenMember & { table: TableName })[];
  advisories: number;
  /** sha256 of `"<member path> <sha256>\n"` over the table members in TABLES order. */
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

export async function buildDb(opts: DbBuildOptions): Promise<DbBuild> {
  const spool = new RecordSpool(path.join(opts.workDir, 'records.tsv'));
  const graph = new AliasGraph();
  let feeds: FeedSummary[];
  try {
    feeds = await readFeeds(opts.feedsDir, {
      sink: (r) => {
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
  let advisories = 0;
  try {
    const sortDir = path.join(opts.workDir, 'sort');
    await mkdir(sortDir);
    for await (const group of sortedGroups(spool.path, (id) => graph.keyOf(id), { tmpDir: sortDir, bufferSize: opts.sortBuffer })) {
      const rows = advisoryRows(mergeRecords(group.key, group.records));
      advisories++;
      for (const { table, file } of files) await file.writeRows(rows[table]);
    }
    const members = [];
    for (const { table, file } of files) members.push({ ...(await file.close()), table });
    return { feeds, members, advisories, digest: dbDigest(members) };
  } catch (e) {
    for (const { file } of files) file.destroy();
    throw e;
  }
}
