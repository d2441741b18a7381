/**
 * Keeps memory flat however large the feeds are: normalised records are spooled
 * to a file as `id<TAB>json` lines (the record's own id); once every record has
 * been read and the alias graph is complete, the spool is streamed into GNU
 * sort with each line's id replaced by its merge key (the primary id of its
 * vulnerability, merge-key.ts), sorted by that key (an external merge sort: it
 * spills sorted runs to disk and merges them), and the sorted lines are read
 * back as groups of records that share a key.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { childProcessEnv } from '../infra/env.ts';
import { OukError } from '../lib/errors.ts';
import { fileLines } from './lines.ts';
import type { SourceRecord } from './model.ts';

export class RecordSpool {
  private readonly out: WriteStream;
  count = 0;

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { flags: 'wx' });
  }

  async write(rec: SourceRecord): Promise<void> {
    this.count++;
    if (!this.out.write(`${rec.source.id}\t${JSON.stringify(rec)}\n`)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }

  destroy(): void {
    this.out.destroy();
  }
}

export interface SortOptions {
  /** Directory for sort's temporary runs (-T). */
  tmpDir: string;
  /** sort's main-memory buffer (-S), e.g. "256M". */
  bufferSize?: string;
}

export interface RecordGroup {
  /** The merge key every record of the group has. */
  key: string;
  records: SourceRecord[];
}

/**
 * GNU sort in the C locale (bytewise) with `args`, its output on stdout; its
 * first 4 KiB of stderr kept for the error message, and its exit code.
 */
export function startSort(args: string[], stdin: 'pipe' | 'ignore'): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn('sort', args, { env: childProcessEnv({ LC_ALL: 'C' }), stdio: [stdin, 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  return { child, stderr: () => stderr, exited };
}

/** The spool's lines with their first cell (a record's id) replaced by `keyOf(id)`. */
async function* rekeyed(spoolPath: string, keyOf: (id: string) => string): AsyncGenerator<string> {
  let batch: string[] = [];
  for await (const line of fileLines(spoolPath)) {
    const tab = line.indexOf('\t');
    batch.push(`${keyOf(line.slice(0, tab))}${line.slice(tab)}\n`);
    if (batch.length >= 256) {
      yield batch.join('');
      batch = [];
    }
  }
  if (batch.length > 0) yield batch.join('');
}

/**
 * Sorts the spool by merge key (bytewise: LC_ALL=C; stable, so records with
 * equal keys keep the spool's order) and yields each run of records with the
 * same key.
 */
export async function* sortedGroups(spoolPath: string, keyOf: (id: string) => string, opts: SortOptions): AsyncGenerator<RecordGroup> {
  const { child, stderr, exited } = startSort(['-t', '\t', '-k1,1', '-s', '-S', opts.bufferSize ?? '256M', '-T', opts.tmpDir], 'pipe');
  // sort reads all of its input before it writes a line: feed it while the reader below waits.
  const fed = pipeline(Readable.from(rekeyed(spoolPath, keyOf)), child.stdin!);
  fed.catch(() => undefined);

  const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
  let key: string | null = null;
  let group: SourceRecord[] = [];
  let finished = false;
  try {
    for await (const line of lines) {
      const tab = line.indexOf('\t');
      const k = line.slice(0, tab);
      const rec = JSON.parse(line.slice(tab + 1)) as SourceRecord;
      if (k !== key && group.length > 0) {
        yield { key: key!, records: group };
        group = [];
      }
      key = k;
      group.push(rec);
    }
    if (group.length > 0) yield { key: key!, records: group };
    finished = true;
  } finally {
    if (!finished) child.kill();
  }
  const code = await exited.catch((e: Error) => {
    throw new OukError('INTERNAL', `cannot run GNU sort (${e.message}): install coreutils' sort, it is needed to build bundles`, { cause: e });
  });
  if (code !== 0) {
    const full = /No space left/i.test(stderr());
    throw new OukError(
      full ? 'INSUFFICIENT_SPACE' : 'INTERNAL',
      `sorting the normalised records failed (sort exited ${code}: ${stderr().trim() || 'no message'})${full ? `: free space in ${opts.tmpDir} or point TMPDIR elsewhere` : ''}`,
    );
  }
  try {
    await fed;
  } catch (e) {
    throw new OukError('INTERNAL', `feeding the normalised records to sort failed: ${(e as Error).message}`, { cause: e });
  }
}
