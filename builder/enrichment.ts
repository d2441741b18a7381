/**
 * The enrichment feeds of `--feeds DIR`, when present: `kev/` (CISA KEV
 * catalog), `epss/` (FIRST EPSS scores) and `euvd/` (ENISA's exploited list,
 * beside CISA's; its aliases are read by db.ts), each into one member of its extra
 * table (bundle/extra-tables.ts), one row per CVE, sorted by CVE, hashed. A
 * missing directory means no member (the kit then loads the table empty); a
 * directory whose files yield no row at all fails the build like an
 * unreadable advisory feed.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ExtraTableName } from '../bundle/extra-tables.ts';
import type { FeedSummary } from '../bundle/manifest.ts';
import { OukError } from '../lib/errors.ts';
import { readEpssFeed, EPSS_TABLE } from './feeds/epss.ts';
import { EUVD_KEV_TABLE, readEuvdExploited } from './feeds/euvd.ts';
import type { FeedWarning } from './feeds/index.ts';
import { KEV_TABLE, readKevFeed, type EnrichmentSink, type EnrichmentTally } from './feeds/kev.ts';
import { KeyedSpool, writeNewestPerKey } from './keyed.ts';
import type { WrittenMember } from './member-file.ts';

export type ExtraMember = WrittenMember & { table: ExtraTableName };

export interface EnrichmentBuild {
  feeds: FeedSummary[];
  members: ExtraMember[];
}

const SOURCES = [
  { feed: 'kev', table: KEV_TABLE, read: readKevFeed },
  { feed: 'epss', table: EPSS_TABLE, read: readEpssFeed },
  { feed: 'euvd', table: EUVD_KEV_TABLE, read: readEuvdExploited },
] as const;

export async function buildEnrichment(feedsDir: string, workDir: string, onWarning: (w: FeedWarning) => void): Promise<EnrichmentBuild> {
  const feeds: FeedSummary[] = [];
  const members: ExtraMember[] = [];
  for (const { feed, table, read } of SOURCES) {
    const dir = path.join(path.resolve(feedsDir), feed);
    if (!(await stat(dir).catch(() => null))?.isDirectory()) continue;
    const spool = new KeyedSpool(table, path.join(workDir, `${feed}-spool.tsv`));
    let skipped = 0;
    const sink: EnrichmentSink = {
      row: (precedence, cells) => spool.write(precedence, cells),
      skip: (file, reason, where) => {
        skipped++;
        onWarning({ feed, file, reason, ...(where ? { where } : {}) });
      },
    };
    let tally: EnrichmentTally;
    try {
      tally = await read(dir, sink);
      await spool.close();
    } catch (e) {
      spool.destroy();
      throw e;
    }
    if (tally.files > 0 && tally.records === 0) {
      throw new OukError(
        'FEED_UNREADABLE',
        `feed ${feed}: none of its ${tally.files} file(s) under ${dir} holds a readable row (${skipped} skipped, see the warnings above): fix or re-download it, or remove ${feed}/ to build without it`,
      );
    }
    const sortDir = path.join(workDir, `${feed}-sort`);
    await mkdir(sortDir);
    const member = await writeNewestPerKey(spool, path.join(workDir, `${feed}.tsv`), sortDir);
    members.push({ ...member, table: table.name });
    feeds.push({ name: feed, snapshot: tally.snapshot, records: member.rows, skipped });
  }
  return { feeds, members };
}
