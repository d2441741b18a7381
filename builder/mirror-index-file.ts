/**
 * Keeping a mirror directory's `index.json` (bundle/mirror-index.ts) up to
 * date as kits are built into it: `stella ouk build --index`, or any build
 * whose `--out` directory already holds an index.json. Each written kit in
 * that directory (the `--out` kit, and the `--full-out` kit when it lands in
 * the same directory) gets its entry added or replaced; the file is written
 * to a temporary name and renamed over the old one, so an HTTP server never
 * serves half an index. One builder per directory at a time.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { indexEntryFor, MIRROR_INDEX_FILE, parseMirrorIndex, serializeMirrorIndex, upsertEntries, type MirrorIndex } from '../bundle/mirror-index.ts';
import type { WrittenBundle } from './output.ts';

export function indexPathFor(out: string): string {
  return path.join(path.dirname(path.resolve(out)), MIRROR_INDEX_FILE);
}

async function readIndex(file: string): Promise<MirrorIndex | null> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return parseMirrorIndex(raw);
}

/** Adds the kits that sit beside `indexFile` to it (atomically); returns the path and the entries written. */
export async function updateMirrorIndex(indexFile: string, kits: WrittenBundle[]): Promise<{ path: string; files: string[] }> {
  const dir = path.dirname(indexFile);
  const here = kits.filter((k) => path.dirname(path.resolve(k.out)) === dir);
  const entries = here.map((k) => indexEntryFor(path.basename(k.out), k.manifest, k.sha256, k.size));
  const next = upsertEntries(await readIndex(indexFile), entries);
  const tmp = path.join(dir, `.${MIRROR_INDEX_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, serializeMirrorIndex(next), { mode: 0o644 });
    await rename(tmp, indexFile);
  } finally {
    await rm(tmp, { force: true });
  }
  return { path: indexFile, files: entries.map((e) => e.file) };
}

/** Whether a build into `out` updates the index: asked for, or the directory already has one. */
export async function wantsIndex(out: string, asked: boolean): Promise<boolean> {
  if (asked) return true;
  return (await readFile(indexPathFor(out)).then(() => true, () => false));
}
