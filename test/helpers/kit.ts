/**
 * A kit unpacked the way an operator would look inside it: `tar -xzf`, then
 * every zstd-compressed DB member decompressed beside itself
 * (`db/advisories.tsv.zst` → `db/advisories.tsv`, the `.zst` kept).
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function unpackKit(file: string, dir: string): Promise<string> {
  await run('tar', ['-xzf', file, '-C', dir]);
  const db = path.join(dir, 'db');
  for (const f of await readdir(db).catch(() => [] as string[])) {
    if (f.endsWith('.zst')) await run('zstd', ['-d', '-q', '-k', '-f', path.join(db, f)]);
  }
  return dir;
}
