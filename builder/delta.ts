/**
 * The DB part of a delta bundle: the new full DB (builder/db.ts) against its
 * base (delta-base.ts), as table members holding only what changed.
 *
 *   base index (id, content_hash) ─┐
 *                                  ├─ merge-join on advisory_id ──► db/advisories.tsv (added + changed rows)
 *   new db/advisories.tsv ─────────┘                             ├─► touched ids (added + changed), sorted
 *                                                                └─► db/removed.tsv (ids only in the base)
 *   touched ids ─────────┐
 *   base db/<table>.tsv ─┼─ merge-join, an advisory's rows ──► db/<table>.tsv (the rows of the touched ids whose rows differ)
 *   new db/<table>.tsv ──┘   in both compared               └► db/cleared.tsv (touched ids whose rows in <table> all go)
 *
 * An id only in the new DB is added; in both with a different content_hash,
 * changed (a newly withdrawn advisory is a changed one: it stays, marked); only
 * in the base, removed. Every input is sorted by advisory_id, so each step is
 * one streaming pass and memory stays flat: no set of ids is held (one
 * advisory's rows at a time), the touched ids go through a sorted file. The
 * rows of an advisory are a function of its document, so equal content_hash
 * means equal rows in every table (the base reader insists on the same
 * stella-ouk version for that reason); a changed advisory's rows in a table
 * other than advisories often stay the same (a summary or a score revised),
 * and then the delta leaves them out.
 *
 * Applying the delta to the base DB = in each table, delete the rows of every
 * advisory in (the ids of the delta's rows in that table ∪ db/removed.tsv ∪
 * its db/cleared.tsv lines for that table), then insert the delta's rows. The
 * result is the new full DB, whose digest the delta's manifest carries as
 * db.digest.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { CLEARED_MEMBER, REMOVED_MEMBER, type TableName, TABLES } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import type { DbBuild } from './db.ts';
import type { DeltaBase } from './delta-base.ts';
import { cellAt, cellCompare, fileLines, firstCell } from './lines.ts';
import { MemberFile, type WrittenMember } from './member-file.ts';

export interface DeltaChanges {
  added: number;
  changed: number;
  removed: number;
}

export interface DeltaDb {
  /** The delta's table members (only the touched advisories' rows), in TABLES order. */
  members: (WrittenMember & { table: TableName })[];
  /** db/removed.tsv: one advisory_id a line, sorted. */
  removed: WrittenMember;
  /** db/cleared.tsv: `<table><TAB><advisory_id>` lines, in TABLES order, then by advisory_id. */
  cleared: WrittenMember;
  changes: DeltaChanges;
}

const CONTENT_HASH_INDEX = TABLES.find((t) => t.name === 'advisories')!.columns.findIndex((c) => c.name === 'content_hash');

/** Rows are written in batches of this many lines. */
const BATCH = 512;

/**
 * Rows written in batches. A batch holds copies of its lines' bytes, not the
 * lines: a line read by readLines is a slice of a 1 MiB chunk and would keep
 * the whole chunk alive, so a batch of rows picked sparsely from a large
 * member (a delta's few rows among millions) would hold hundreds of chunks.
 */
class BatchedMember {
  private batch: Buffer[] = [];
  constructor(readonly file: MemberFile) {}
  async add(line: string): Promise<void> {
    this.batch.push(Buffer.from(`${line}\n`, 'utf8'));
    if (this.batch.length >= BATCH) await this.flush();
  }
  async flush(): Promise<void> {
    const b = this.batch;
    this.batch = [];
    await this.file.writeChunk(Buffer.concat(b), b.length);
  }
  async close(): Promise<WrittenMember> {
    await this.flush();
    return this.file.close();
  }
}

class SortedCheck {
  private prev: string | null = null;
  constructor(private readonly what: string, private readonly strict: boolean) {}
  next(id: string): void {
    if (this.prev !== null) {
      const c = cellCompare(this.prev, id);
      if (c > 0 || (this.strict && c === 0)) throw new OukError('INTERNAL', `${this.what} is not sorted by advisory_id at ${id}: this is a bug in the builder`);
    }
    this.prev = id;
  }
}

export async function deltaDb(base: DeltaBase, db: DbBuild, workDir: string): Promise<DeltaDb> {
  const touchedFile = path.join(workDir, 'delta-touched.txt');
  const outFile = (name: string): string => path.join(workDir, `delta-${name}.tsv`);
  const files = TABLES.map((t) => ({ table: t.name, file: new MemberFile(t.member, outFile(t.name)) }));
  const removedFile = new MemberFile(REMOVED_MEMBER, outFile('removed'));
  const clearedFile = new MemberFile(CLEARED_MEMBER, outFile('cleared'));
  try {
    const newAdvisories = db.members.find((m) => m.table === 'advisories')!;
    const changes = await joinAdvisories(base.indexFile, newAdvisories.file, {
      rows: new BatchedMember(files[0]!.file),
      removed: new BatchedMember(removedFile),
      touchedFile,
    });
    const members: (WrittenMember & { table: TableName })[] = [{ ...(await files[0]!.file.close()), table: 'advisories' }];
    const cleared = new BatchedMember(clearedFile);
    for (const { table, file } of files.slice(1)) {
      const source = db.members.find((m) => m.table === table)!;
      const baseRows = base.tables.get(table);
      if (!baseRows) throw new OukError('INTERNAL', `the base's ${source.path} was not read: this is a bug in the builder`);
      const out = new BatchedMember(file);
      await changedRows({ touchedFile, base: baseRows, fresh: source.file, member: source.path }, out, (id) => cleared.add(`${table}\t${id}`));
      members.push({ ...(await out.close()), table });
    }
    return { members, removed: await removedFile.close(), cleared: await cleared.close(), changes };
  } catch (e) {
    for (const { file } of files) file.destroy();
    removedFile.destroy();
    clearedFile.destroy();
    throw e;
  }
}

interface JoinOutputs {
  /** The delta's advisories rows. */
  rows: BatchedMember;
  /** The removed ids. */
  removed: BatchedMember;
  /** Where the added and changed ids go, one a line, sorted. */
  touchedFile: string;
}

async function joinAdvisories(baseIndex: string, newAdvisories: string, out: JoinOutputs): Promise<DeltaChanges> {
  const touched = createWriteStream(out.touchedFile, { flags: 'wx' });
  const touch = async (id: string): Promise<void> => {
    if (!touched.write(`${id}\n`)) await once(touched, 'drain');
  };
  const baseLines = fileLines(baseIndex);
  const newLines = fileLines(newAdvisories);
  const newOrder = new SortedCheck('the new db/advisories.tsv', true);
  const changes: DeltaChanges = { added: 0, changed: 0, removed: 0 };
  try {
    const nextNew = async (): Promise<IteratorResult<string>> => {
      const r = await newLines.next();
      if (!r.done) newOrder.next(firstCell(r.value));
      return r;
    };
    let b = await baseLines.next();
    let n = await nextNew();
    while (!b.done || !n.done) {
      const bLine = b.done ? null : b.value;
      const nLine = n.done ? null : n.value;
      const bTab = bLine === null ? -1 : bLine.indexOf('\t');
      const bId = bLine === null ? null : bLine.slice(0, bTab);
      const nId = nLine === null ? null : firstCell(nLine);
      const c = bId === null ? 1 : nId === null ? -1 : cellCompare(bId, nId);
      if (c < 0) {
        changes.removed++;
        await out.removed.add(bId!);
        b = await baseLines.next();
        continue;
      }
      if (c > 0) {
        changes.added++;
      } else {
        const same = bLine!.slice(bTab + 1) === cellAt(nLine!, CONTENT_HASH_INDEX);
        b = await baseLines.next();
        if (same) {
          n = await nextNew();
          continue;
        }
        changes.changed++;
      }
      await out.rows.add(nLine!);
      await touch(nId!);
      n = await nextNew();
    }
    touched.end();
    await once(touched, 'finish');
    await out.rows.flush();
    await out.removed.flush();
    return changes;
  } catch (e) {
    touched.destroy();
    throw e;
  } finally {
    await baseLines.return(undefined);
    await newLines.return(undefined);
  }
}

/**
 * One advisory's rows at a time from a member sorted by advisory_id: `rowsOf(id)`
 * skips the rows of smaller ids and returns those of `id` (ids asked in
 * increasing order).
 */
class RowGroups {
  private readonly lines: AsyncGenerator<string>;
  private readonly order: SortedCheck;
  private head: string | null | undefined = undefined;
  constructor(file: string, what: string) {
    this.lines = fileLines(file);
    this.order = new SortedCheck(what, false);
  }
  private async peek(): Promise<string | null> {
    if (this.head === undefined) {
      const r = await this.lines.next();
      this.head = r.done ? null : r.value;
      if (this.head !== null) this.order.next(firstCell(this.head));
    }
    return this.head;
  }
  async rowsOf(id: string): Promise<string[]> {
    const rows: string[] = [];
    for (let line = await this.peek(); line !== null; line = await this.peek()) {
      const c = cellCompare(firstCell(line), id);
      if (c > 0) break;
      if (c === 0) rows.push(line);
      this.head = undefined;
    }
    return rows;
  }
  async close(): Promise<void> {
    await this.lines.return(undefined);
  }
}

interface TableInputs {
  /** The added and changed ids, one a line, sorted. */
  touchedFile: string;
  /** The base's member and the new DB's, both sorted by advisory_id (then the other columns). */
  base: string;
  fresh: string;
  /** The member's path, for messages. */
  member: string;
}

/**
 * The rows of one table a delta carries: of each added or changed advisory,
 * its new rows when they differ from its base rows (an added one has none
 * there), and `onCleared(id)` when they differ because none is left. One pass
 * over the three sorted inputs. Rows are compared as written: both DBs sort an
 * advisory's rows the same way (bundle/tables.ts).
 */
async function changedRows(inp: TableInputs, out: BatchedMember, onCleared: (id: string) => Promise<void>): Promise<void> {
  const ids = fileLines(inp.touchedFile);
  const base = new RowGroups(inp.base, `the base's ${inp.member}`);
  const fresh = new RowGroups(inp.fresh, `the new ${inp.member}`);
  try {
    for await (const id of ids) {
      const before = await base.rowsOf(id);
      const after = await fresh.rowsOf(id);
      if (before.length === after.length && before.every((line, k) => line === after[k])) continue;
      if (after.length === 0) await onCleared(id);
      for (const line of after) await out.add(line);
    }
  } finally {
    await ids.return(undefined);
    await base.close();
    await fresh.close();
  }
}
