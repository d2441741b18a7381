/**
 * A kit named by URL, brought to a temporary directory for a check that reads
 * files (`stella ouk import URL --dry-run`): the tarball and whichever of its
 * side files the mirror has (.sig, .sigs.json, .sigstore.json, .intoto.json),
 * under the import's download rules (source.ts: the same fetch, so
 * STELLA_AIRGAP=true refuses a foreign host before any packet leaves).
 *
 * Side files are read up to SIDE_FILE_LIMIT + 1 bytes: a longer one is cut
 * there and refused by the verifier's own bounds. `remove()` deletes the
 * directory; callers call it in a `finally`.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { OukError } from '../../lib/errors.ts';
import { fetchOk, webToNode, type Source } from './source.ts';

export const SIDE_FILES = ['.sig', '.sigs.json', '.sigstore.json', '.intoto.json'] as const;
/** Above every verifier's own bound on a side file. */
export const SIDE_FILE_LIMIT = 4 * 1024 * 1024;

export interface DownloadedKit {
  /** The local tarball, named as in the bucket (its side files beside it). */
  file: string;
  remove(): Promise<void>;
}

function diskError(e: unknown, what: string): OukError {
  if (e instanceof OukError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return new OukError('INSUFFICIENT_SPACE', `no room in ${os.tmpdir()} for ${what}: free space there (or set TMPDIR to a larger disk)`, { cause: e });
  return new OukError('INPUT_NOT_FOUND', `downloading ${what} failed (${(e as Error).message}): check the mirror address`, { cause: e });
}

async function saveSideFile(url: string, file: string): Promise<void> {
  const res = await fetchOk(url);
  if (!res?.body) return;
  const out = fs.createWriteStream(file);
  let kept = 0;
  try {
    for await (const chunk of webToNode(res)) {
      const b = (chunk as Buffer).subarray(0, SIDE_FILE_LIMIT + 1 - kept);
      kept += b.length;
      if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
      if (kept > SIDE_FILE_LIMIT) break;
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
}

export async function downloadKit(src: Source): Promise<DownloadedKit> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stella-dry-run-'));
  const remove = (): Promise<void> => fsp.rm(dir, { recursive: true, force: true });
  const file = path.join(dir, src.key);
  try {
    const res = await fetchOk(src.name);
    if (!res?.body) throw new OukError('INPUT_NOT_FOUND', `${src.name} was not found on the mirror`);
    try {
      await pipeline(webToNode(res), fs.createWriteStream(file));
    } catch (e) {
      throw diskError(e, src.name);
    }
    for (const suffix of SIDE_FILES) {
      try {
        await saveSideFile(src.name + suffix, file + suffix);
      } catch (e) {
        throw diskError(e, src.name + suffix);
      }
    }
    return { file, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}
