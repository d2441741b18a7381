/**
 * A kit's advisory catalog: one `advisory_id<TAB>content_hash<TAB>withdrawn`
 * line per advisory of the DB a kit yields, sorted by id, read from the full
 * kit of that version (its db/advisories.tsv). The publisher keeps the newest
 * one under `M/.publish/catalogs/VERSION.tsv`, so tonight's release notes can
 * say what changed since the previous kit — whether that kit was a full one
 * or a delta — without reading any old kit again.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { ManifestMember } from '../../bundle/manifest.ts';
import { contentPath, decodeMember } from '../../bundle/member-codec.ts';
import { readBundle } from '../../bundle/reader.ts';
import { TABLES } from '../../bundle/tables.ts';
import { cellAt, cellCompare, fileLines, firstCell, readLines } from '../../builder/lines.ts';
import { OukError } from '../../lib/errors.ts';

const ADVISORIES = TABLES.find((t) => t.name === 'advisories')!;
const HASH_AT = ADVISORIES.columns.findIndex((c) => c.name === 'content_hash');
const WITHDRAWN_AT = ADVISORIES.columns.findIndex((c) => c.name === 'withdrawn');
/** The TSV null (bundle/tsv.ts): COPY's `\N`. */
const NULL_CELL = '\\N';

/** Writes the catalog of the full kit `kit` to `out` (whole: temporary name, then rename). */
export async function writeCatalog(kit: string, out: string): Promise<number> {
  const tmp = `${out}.tmp`;
  let n = 0;
  const onMember = async (member: ManifestMember, stream: Readable): Promise<void> => {
    if (contentPath(member) !== ADVISORIES.member) {
      for await (const _ of stream) {
        /* drained: the reader checks each member's sha256 */
      }
      return;
    }
    const file = createWriteStream(tmp);
    try {
      for await (const line of readLines(decodeMember(member, stream))) {
        const withdrawn = cellAt(line, WITHDRAWN_AT);
        const row = `${firstCell(line)}\t${cellAt(line, HASH_AT) ?? ''}\t${withdrawn && withdrawn !== NULL_CELL ? 1 : 0}\n`;
        n++;
        if (!file.write(row)) await once(file, 'drain');
      }
      file.end();
      await once(file, 'finish');
    } catch (e) {
      file.destroy();
      throw e;
    }
  };
  try {
    const read = await readBundle(createReadStream(kit, { highWaterMark: 1024 * 1024 }), { onMember });
    if (read.manifest.kind !== 'full') throw new OukError('INTERNAL', `${kit} is not a full kit: a catalog is read from the full kit of a version`);
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return n;
}

export interface ChangeList {
  count: number;
  /** The first `limit` ids, sorted. */
  ids: string[];
}

export interface CatalogChanges {
  added: ChangeList;
  /** Content changed, still current. */
  modified: ChangeList;
  /** Newly withdrawn (marked so upstream) or gone from the DB altogether. */
  withdrawn: ChangeList;
  /** Of the withdrawn: gone from the DB (no longer in any feed). */
  removed: number;
}

interface Row {
  id: string;
  hash: string;
  withdrawn: boolean;
}

function parseRow(line: string): Row {
  const [id, hash, w] = line.split('\t');
  return { id: id!, hash: hash ?? '', withdrawn: w === '1' };
}

async function* rows(file: string | null): AsyncGenerator<Row> {
  if (file === null) return;
  for await (const line of fileLines(file)) if (line) yield parseRow(line);
}

/** What changed from the catalog `before` (null: nothing before) to `after`, one merge-join pass. */
export async function diffCatalogs(before: string | null, after: string, limit: number): Promise<CatalogChanges> {
  const out: CatalogChanges = { added: { count: 0, ids: [] }, modified: { count: 0, ids: [] }, withdrawn: { count: 0, ids: [] }, removed: 0 };
  const note = (list: ChangeList, id: string) => {
    list.count++;
    if (list.ids.length < limit) list.ids.push(id);
  };
  const a = rows(before);
  const b = rows(after);
  let x = await a.next();
  let y = await b.next();
  while (!x.done || !y.done) {
    const c = x.done ? 1 : y.done ? -1 : cellCompare(x.value.id, y.value.id);
    if (c < 0) {
      // only before: gone from the DB
      if (!x.value!.withdrawn) {
        note(out.withdrawn, x.value!.id);
        out.removed++;
      }
      x = await a.next();
    } else if (c > 0) {
      if (!y.value!.withdrawn) note(out.added, y.value!.id);
      y = await b.next();
    } else {
      const old = x.value!;
      const cur = y.value!;
      if (cur.withdrawn && !old.withdrawn) note(out.withdrawn, cur.id);
      else if (cur.hash !== old.hash && !cur.withdrawn) note(out.modified, cur.id);
      x = await a.next();
      y = await b.next();
    }
  }
  return out;
}
