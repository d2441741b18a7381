/**
 * Reading the mirror directory before a publish: its index.json (null when
 * there is none yet) and the full kits the publisher holds — the ones the
 * index lists whose files are there, and the private bases in
 * `.publish/bases/` (each one's manifest read from its first bytes).
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseManifest } from '../../bundle/manifest.ts';
import { peekManifest } from '../../bundle/manifest-peek.ts';
import { MIRROR_INDEX_FILE, parseMirrorIndex, type MirrorIndex } from '../../bundle/mirror-index.ts';
import type { MirrorPaths } from './layout.ts';
import type { HeldFull } from './plan.ts';

export async function readMirrorIndex(root: string): Promise<MirrorIndex | null> {
  let raw: Buffer;
  try {
    raw = await readFile(path.join(root, MIRROR_INDEX_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return parseMirrorIndex(raw);
}

const isFile = (p: string): Promise<boolean> => stat(p).then((s) => s.isFile(), () => false);

export async function heldFulls(paths: MirrorPaths, index: MirrorIndex | null): Promise<HeldFull[]> {
  const out: HeldFull[] = [];
  for (const k of index?.kits ?? []) {
    const p = path.join(paths.root, k.file);
    if (k.kind === 'full' && (await isFile(p))) out.push({ version: k.version, dbDigest: k.dbDigest, path: p });
  }
  const names = await readdir(paths.bases).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith('-full.tar.gz'))) {
    const p = path.join(paths.bases, name);
    try {
      const m = parseManifest(await peekManifest(createReadStream(p)));
      if (m.kind === 'full') out.push({ version: m.bundleVersion, dbDigest: m.db.digest, path: p });
    } catch {
      // a damaged private base is not a base: the plan publishes a full kit instead
    }
  }
  return out;
}
