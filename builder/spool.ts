/**
 * Keeps memory flat however large the feeds are: normalised records are spooled
 * to a file as `key<TAB>json` lines, the file is sorted by key with GNU sort (an
 * external merge sort: it spills sorted runs to disk and merges them), and the
 * sorted lines are read back as groups of records that share a key.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { OukError } from '../lib/errors.ts';
import type { SourceRecord } from './model.ts';

export class RecordSpool {
  private readonly out: WriteStream;
  count = 0;

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { flags: 'wx' });
  }

  async write(rec: SourceRecord): Promise<void> {
    this.count++;
    if (!this.out.write(`${rec.key}\t${JSON.stringify(rec)}\n`)) await once(this.out, 'drain');
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

/**
 * Sorts the spool by key (bytewise: LC_ALL=C; stable, so records with equal keys
 * keep the spool's order) and yields each run of records with the same key.
 */
export async function* sortedGroups(spoolPath: string, opts: SortOptions): AsyncGenerator<SourceRecord[]> {
  const child = spawn('sort', ['-t', '\t', '-k1,1', '-s', '-S', opts.bufferSize ?? '256M', '-T', opts.tmpDir, spoolPath], {
    env: { ...process.env, LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);

  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  let key: string | null = null;
  let group: SourceRecord[] = [];
  let finished = false;
  try {
    for await (const line of lines) {
      const tab = line.indexOf('\t');
      const k = line.slice(0, tab);
      const rec = JSON.parse(line.slice(tab + 1)) as SourceRecord;
      if (k !== key && group.length > 0) {
        yield group;
        group = [];
      }
      key = k;
      group.push(rec);
    }
    if (group.length > 0) yield group;
    finished = true;
  } finally {
    if (!finished) child.kill();
  }
  const code = await exited.catch((e: Error) => {
    throw new OukError('INTERNAL', `cannot run GNU sort (${e.message}): install coreutils' sort, it is needed to build bundles`, { cause: e });
  });
  if (code !== 0) {
    const full = /No space left/i.test(stderr);
    throw new OukError(
      full ? 'INSUFFICIENT_SPACE' : 'INTERNAL',
      `sorting the normalised records failed (sort exited ${code}: ${stderr.trim() || 'no message'})${full ? `: free space in ${opts.tmpDir} or point TMPDIR elsewhere` : ''}`,
    );
  }
}
