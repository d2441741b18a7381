/**
 * Every file the sync writes is written whole: into a temporary file beside
 * it, then renamed over it (rename is atomic within a directory), so a reader
 * (the builder) or a sync killed at any instant sees the old file or the new
 * one, never a part. Temporary names never end in `.json`, so the builder
 * passes over one a kill left behind.
 *
 * RecordFiles writes one record a file and says what the write was: added
 * (no file before), modified, unchanged (the same bytes: not written again),
 * withdrawn (the record became withdrawn).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Outcome } from './report.ts';

function tmpName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Writes `data` to `file` whole (temporary file, then rename); `durable` also syncs it to disk first. */
export async function writeFileAtomic(file: string, data: string | Buffer, durable = false, dirMade = false): Promise<void> {
  if (!dirMade) await mkdir(path.dirname(file), { recursive: true });
  const tmp = tmpName(file);
  try {
    if (durable) {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else {
      await writeFile(tmp, data);
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Moves a finished temporary file (a download) into place. */
export async function moveIntoPlace(tmp: string, file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await rename(tmp, file);
}

export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A name that is safe as one path segment: no separator, not `.`/`..`, printable, bounded. */
export function safeSegment(s: string): boolean {
  return /^[\x20-\x7e]{1,200}$/.test(s) && !s.includes('/') && !s.includes('\\') && s !== '.' && s !== '..' && !s.startsWith('.');
}

/** Record ids the sync names files after: letters, digits and `-_.:+`, starting with a letter or digit. */
export const RECORD_ID = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}$/;

export class RecordFiles {
  /** Directories made already (a sync writes thousands of files into a few hundred). */
  private readonly dirs = new Set<string>();

  constructor(
    readonly root: string,
    /** Whether a record's text says it is withdrawn. */
    private readonly isWithdrawn: (text: string) => boolean,
  ) {}

  path(rel: string): string {
    return path.join(this.root, rel);
  }

  async read(rel: string): Promise<string | null> {
    return readIfExists(this.path(rel));
  }

  /** Writes one record whole, unless the same bytes are there already. */
  async put(rel: string, text: string): Promise<Outcome> {
    const file = this.path(rel);
    const before = await readIfExists(file);
    if (before === text) return 'unchanged';
    const dir = path.dirname(file);
    if (!this.dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.dirs.add(dir);
    }
    await writeFileAtomic(file, text, false, true);
    if (before === null) return 'added';
    return this.isWithdrawn(text) && !this.isWithdrawn(before) ? 'withdrawn' : 'modified';
  }

  /** Deletes one record; whether it was there. */
  async remove(rel: string): Promise<boolean> {
    try {
      await unlink(this.path(rel));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }
}
