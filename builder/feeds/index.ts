/**
 * Reads a feeds directory: `nvd/**.json` (NVD API 2.0 pages or single records,
 * streamed), `osv/**.json` and `ghsa/**.json` (OSV-schema records, one a file),
 * `csaf/**.json` (CSAF 2.0 documents, feeds/csaf.ts).
 * Every good record is normalised and handed to `sink` (awaited: the sink's
 * backpressure holds the reader); every malformed one is reported with its file
 * and reason and counted as skipped. A feed whose files are all unreadable fails
 * the build; a missing feed directory is simply not listed.
 *
 * Sizes are not trusted: a file over its feed's limit (MAX_RECORD_FILE_BYTES
 * for an OSV record, MAX_CSAF_BYTES for a CSAF document) is skipped before it
 * is read, and one nested too deep for a walk (a CSAF document deeper than
 * MAX_CSAF_DEPTH, an OSV `ecosystem_specific` deeper than osv.ts's MAX_KEPT_DEPTH) is
 * skipped before anything walks it, with the reason.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { FeedSummary } from '../../bundle/manifest.ts';
import { OukError } from '../../lib/errors.ts';
import { FEEDS, type FeedName, type SourceRecord } from '../model.ts';
import { readBoundedText } from './bounded.ts';
import { isoTime, type JsonObject, MalformedRecord, maxTime } from './fields.ts';
import { normaliseNvd } from './nvd.ts';
import { readNvdFile } from './nvd-stream.ts';
import { normaliseOsv } from './osv.ts';
import { csafNonDocument, CsafTooLarge, validateCsaf } from '../../bundle/csaf.ts';
import { normaliseCsaf } from './csaf.ts';
import { walkJson } from './walk.ts';

/** Largest OSV/GHSA record file read (real ones: under a megabyte). */
export const MAX_RECORD_FILE_BYTES = 16 * 1024 * 1024;
/** Largest CSAF document read (Red Hat's largest VEX files: a few MB). */
export const MAX_CSAF_BYTES = 64 * 1024 * 1024;

/** A file's reading failure as a skip reason. */
function readFailure(e: unknown): string {
  if (e instanceof SyntaxError) return `not valid JSON: ${e.message}`;
  if (e instanceof MalformedRecord) return e.message;
  return `unreadable: ${(e as Error).message}`;
}

export interface FeedWarning {
  /** An advisory feed, or an enrichment feed (builder/enrichment.ts). */
  feed: FeedName | 'kev' | 'epss' | 'euvd';
  file: string;
  /** Where in the file, for multi-record files (`vulnerabilities[12]`). */
  where?: string;
  reason: string;
}

export function formatWarning(w: FeedWarning): string {
  return `warning: skipped ${w.file}${w.where ? ` (${w.where})` : ''}: ${w.reason}`;
}

export interface ReadFeedsOptions {
  sink(record: SourceRecord): Promise<void> | void;
  onWarning(w: FeedWarning): void;
}

interface Tally {
  files: number;
  records: number;
  skipped: number;
  snapshot: string | null;
  /** Newest record `modified`: the snapshot when the feed has no page timestamp. */
  newest: string | null;
}

/** Files read at once from an OSV-style feed (order of processing is kept). */
const OSV_CONCURRENCY = 16;

export async function readFeeds(feedsDir: string, opts: ReadFeedsOptions): Promise<FeedSummary[]> {
  const root = path.resolve(feedsDir);
  const rootStat = await stat(root).catch(() => null);
  if (!rootStat?.isDirectory()) {
    throw new OukError('INPUT_NOT_FOUND', `feeds directory ${root} does not exist or is not a directory: pass --feeds DIR holding nvd/, osv/ and ghsa/`);
  }
  const present: FeedName[] = [];
  for (const feed of FEEDS) {
    if ((await stat(path.join(root, feed)).catch(() => null))?.isDirectory()) present.push(feed);
  }
  if (present.length === 0) {
    throw new OukError('INPUT_NOT_FOUND', `${root} holds none of nvd/, osv/, ghsa/: pass the directory that contains the feed folders`);
  }

  const summaries: FeedSummary[] = [];
  for (const feed of present) {
    const dir = path.join(root, feed);
    const t: Tally = { files: 0, records: 0, skipped: 0, snapshot: null, newest: null };
    const accept = async (rec: SourceRecord): Promise<void> => {
      t.records++;
      t.newest = maxTime(t.newest, rec.source.modified);
      await opts.sink(rec);
    };
    const skip = (file: string, reason: string, where?: string): void => {
      t.skipped++;
      opts.onWarning({ feed, file, reason, ...(where ? { where } : {}) });
    };
    if (feed === 'nvd') await readNvdFeed(dir, t, accept, skip);
    else if (feed === 'csaf') await readCsafFeed(dir, t, accept, skip);
    else await readOsvFeed(dir, feed, t, accept, skip);
    if (t.files > 0 && t.records === 0) {
      throw new OukError(
        'FEED_UNREADABLE',
        `feed ${feed}: none of its ${t.files} file(s) under ${dir} holds a readable record (${t.skipped} skipped, see the warnings above): fix or re-download the feed, or remove ${feed}/ to build without it`,
      );
    }
    summaries.push({ name: feed, snapshot: t.snapshot ?? t.newest, records: t.records, skipped: t.skipped });
  }
  return summaries;
}

/** An error of the sink (the build's own output), never blamed on the feed file. */
class SinkFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('sink failed');
  }
}

type Accept = (rec: SourceRecord) => Promise<void>;
type Skip = (file: string, reason: string, where?: string) => void;

async function readNvdFeed(dir: string, t: Tally, accept: Accept, skip: Skip): Promise<void> {
  for await (const file of walkJson(dir)) {
    t.files++;
    let kept = 0;
    try {
      for await (const item of readNvdFile(file)) {
        if (item.kind === 'end') {
          if (item.page) t.snapshot = maxTime(t.snapshot, isoTime(item.timestamp));
        } else if (item.kind === 'bad') {
          skip(file, item.reason, `item ${item.index}`);
        } else {
          let rec: SourceRecord;
          try {
            rec = normaliseNvd(item.cve);
          } catch (e) {
            if (!(e instanceof MalformedRecord)) throw e;
            skip(file, e.message, `item ${item.index}`);
            continue;
          }
          await accept(rec).catch((cause: unknown) => {
            throw new SinkFailure(cause);
          });
          kept++;
        }
      }
    } catch (e) {
      if (e instanceof SinkFailure) throw e.cause;
      if (e instanceof OukError) throw e;
      // Unreadable JSON (truncated, not JSON) or an I/O error: the records read
      // before the fault were complete and stay; the rest of the file is skipped.
      const kind = (e as NodeJS.ErrnoException).code ? 'unreadable' : 'not valid JSON (truncated?)';
      skip(file, `${kind}: ${(e as Error).message}${kept ? `; the ${kept} record(s) before the fault were kept` : ''}`);
    }
  }
}

/**
 * CSAF documents, one a file, each checked against the CSAF 2.0 schema first
 * (a document that fails it is skipped with the reason). The other files of a
 * provider's directory (provider metadata, aggregator lists, the schemas
 * themselves) are passed over without a warning.
 */
async function readCsafFeed(dir: string, t: Tally, accept: Accept, skip: Skip): Promise<void> {
  for await (const file of walkJson(dir)) {
    let doc: unknown;
    try {
      doc = JSON.parse(await readBoundedText(file, MAX_CSAF_BYTES, 'a CSAF document'));
    } catch (e) {
      t.files++;
      skip(file, readFailure(e));
      continue;
    }
    if (csafNonDocument(doc)) continue;
    t.files++;
    // the depth check comes first in validateCsaf: nothing below recurses over a deep document
    const invalid = validateCsaf(doc);
    if (invalid) {
      skip(file, invalid);
      continue;
    }
    let records: SourceRecord[];
    try {
      records = normaliseCsaf(doc as JsonObject);
    } catch (e) {
      if (!(e instanceof CsafTooLarge)) throw e;
      skip(file, e.message);
      continue;
    }
    for (const rec of records) await accept(rec);
  }
}

async function readOsvFeed(dir: string, feed: Exclude<FeedName, 'nvd' | 'csaf'>, t: Tally, accept: Accept, skip: Skip): Promise<void> {
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    const texts = await Promise.all(batch.map((f) => readBoundedText(f, MAX_RECORD_FILE_BYTES, 'an OSV record').then((s) => ({ s }), (e: Error) => ({ e }))));
    for (let i = 0; i < batch.length; i++) {
      const file = batch[i]!;
      const r = texts[i]!;
      if ('e' in r) {
        skip(file, readFailure(r.e));
        continue;
      }
      let rec: SourceRecord;
      try {
        rec = normaliseOsv(JSON.parse(r.s), feed);
      } catch (e) {
        if (e instanceof MalformedRecord || e instanceof SyntaxError) skip(file, readFailure(e));
        else throw e;
        continue;
      }
      await accept(rec);
    }
    batch = [];
  };
  for await (const file of walkJson(dir)) {
    t.files++;
    batch.push(file);
    if (batch.length >= OSV_CONCURRENCY) await flush();
  }
  await flush();
}
