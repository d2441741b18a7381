/**
 * Every `*.json` file (or any file `accept` takes) under a directory, depth
 * first, in byte order of the names at each level, so a feed is always read
 * in the same order. One directory listing is held at a time.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export async function* walkFiles(dir: string, accept: (name: string) => boolean): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const s = await stat(full).catch(() => null);
      isDir = false; // never follow a link into another tree
      isFile = s?.isFile() ?? false;
    }
    if (isDir) yield* walkFiles(full, accept);
    else if (isFile && accept(e.name)) yield full;
  }
}

export const isJsonFile = (name: string): boolean => name.endsWith('.json');
/** FIRST EPSS score files, plain or gzipped. */
export const isEpssFile = (name: string): boolean => name.endsWith('.csv') || name.endsWith('.csv.gz');

export function walkJson(dir: string): AsyncGenerator<string> {
  return walkFiles(dir, isJsonFile);
}

/** The files the builder reads from the feed directory `feed` (every feed but epss: *.json). */
export function feedFileFilter(feed: string): (name: string) => boolean {
  return feed === 'epss' ? isEpssFile : isJsonFile;
}
