/**
 * One row per key, the newest copy winning, in flat memory: rows of a keyed
 * extra table (bundle/extra-tables.ts: KEV by CVE, EPSS by CVE) are spooled as
 * `key<TAB>precedence<TAB>row` lines as the feed is read, sorted by GNU sort
 * (key ascending bytewise, precedence descending, e.g. a score date), and the
 * first row of each key is written to the member file, hashed on the way.
 * Several catalogs or score files may name the same CVE: the one with the
 * newest precedence wins, whatever order the files were read in.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { ExtraTableDef } from '../bundle/extra-tables.ts';
import { type Cell, encodeRow } from '../bundle/tsv.ts';
import { OukError } from '../lib/errors.ts';
import { MemberFile, type WrittenMember } from './member-file.ts';
import { startSort } from './spool.ts';

export class KeyedSpool {
  private readonly out: WriteStream;
  count = 0;

  constructor(readonly table: ExtraTableDef, readonly path: string) {
    this.out = createWriteStream(path, { flags: 'wx' });
  }

  /** `cells` in the table's column order; the first is the key. */
  async write(precedence: string, cells: readonly Cell[]): Promise<void> {
    if (cells.length !== this.table.columns.length) throw new Error(`${this.table.name}: ${cells.length} cells for ${this.table.columns.length} columns`);
    this.table.columns.forEach((c, i) => {
      if (!c.nullable && (cells[i] === null || cells[i] === undefined)) throw new Error(`${this.table.name}.${c.name} may not be null`);
    });
    const row = encodeRow(cells);
    const key = row.slice(0, row.indexOf('\t'));
    this.count++;
    if (!this.out.write(`${key}\t${precedence.replace(/[\t\n]/g, ' ')}\t${row}`)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }

  destroy(): void {
    this.out.destroy();
  }
}

/**
 * Sorts the spool and writes the newest row of each key to `memberFile`.
 * `tmpDir` holds sort's temporary runs.
 */
export async function writeNewestPerKey(spool: KeyedSpool, memberFile: string, tmpDir: string): Promise<WrittenMember> {
  const { child, stderr, exited } = startSort(['-t', '\t', '-k1,1', '-k2,2r', '-s', '-S', '64M', '-T', tmpDir, spool.path], 'ignore');
  const member = new MemberFile(spool.table.member, memberFile);
  let last: string | null = null;
  let batch: string[] = [];
  try {
    for await (const line of createInterface({ input: child.stdout!, crlfDelay: Infinity })) {
      const t1 = line.indexOf('\t');
      const key = line.slice(0, t1);
      if (key === last) continue;
      last = key;
      batch.push(`${line.slice(line.indexOf('\t', t1 + 1) + 1)}\n`);
      if (batch.length >= 512) {
        await member.writeRows(batch);
        batch = [];
      }
    }
    await member.writeRows(batch);
    const code = await exited.catch((e: Error) => {
      throw new OukError('INTERNAL', `cannot run GNU sort (${e.message}): install coreutils' sort, it is needed to build bundles`, { cause: e });
    });
    if (code !== 0) throw new OukError('INTERNAL', `sorting the ${spool.table.name} rows failed (sort exited ${code}: ${stderr().trim() || 'no message'})`);
    return await member.close();
  } catch (e) {
    member.destroy();
    child.kill();
    throw e;
  }
}
