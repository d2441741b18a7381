/**
 * Every `*.json` file (or any file `accept` takes) under a directory, depth
 * first, in byte order of the names at each level, so a feed is always read
 * in the same order. Walked with an explicit stack (one sorted listing per
 * directory level open at a time), so no depth of directories can overflow
 * it; links are never followed into another tree.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

async function listing(dir: string): Promise<Dirent[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

export async function* walkFiles(dir: string, accept: (name: string) => boolean): AsyncGenerator<string> {
  const stack: Array<{ dir: string; entries: Dirent[]; next: number }> = [{ dir, entries: await listing(dir), next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.entries.length) {
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.next++]!;
    const full = path.join(frame.dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const s = await stat(full).catch(() => null);
      isDir = false; // never follow a link into another tree
      isFile = s?.isFile() ?? false;
    }
    if (isDir) stack.push({ dir: full, entries: await listing(full), next: 0 });
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
