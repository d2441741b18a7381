/**
 * How a DB member is stored inside the tarball. The builder compresses each
 * table member with zstd (`db/advisories.tsv` → `db/advisories.tsv.zst`,
 * manifest `compression: "zstd"`, and `content` giving the TSV's own size and
 * sha256); the outer `.tar.gz` stays what cosign and openssl check. Stored
 * compressed, a member is staged in the object store as it is and decompressed
 * only on its way into PostgreSQL's COPY — each table on its own, in parallel.
 *
 * Debian's `zstd` tool does the work (Node 20's zlib has no zstd), as GNU sort
 * does the builder's external sort: `zstd -<level>` compresses (deterministic:
 * the same input and level give the same bytes; level 12 by default, about
 * 10 MB/s a core and within 12 % of level 19's size at a sixth of its time),
 * `zstd -d` decompresses.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OukError } from '../lib/errors.ts';
import type { ManifestMember } from './manifest.ts';

export const ZSTD_SUFFIX = '.zst';

/** The member's path without its compression suffix: the table member it carries (`db/advisories.tsv`). */
export function contentPath(member: Pick<ManifestMember, 'path' | 'compression'>): string {
  return member.compression === 'zstd' && member.path.endsWith(ZSTD_SUFFIX) ? member.path.slice(0, -ZSTD_SUFFIX.length) : member.path;
}

/** The sha256 the DB digest is computed over: the content's, whether stored compressed or not. */
export function contentSha256(member: Pick<ManifestMember, 'sha256' | 'content'>): string {
  return member.content?.sha256 ?? member.sha256;
}

function toolMissing(e: NodeJS.ErrnoException): OukError {
  return new OukError('TOOL_MISSING', `zstd is not installed (${e.code}): the kit's DB members are zstd-compressed — install Debian's zstd (apt-get install zstd)`, { cause: e });
}

/**
 * The member's content as a stream: `stored` itself for a plain member, else
 * `stored` through a `zstd -d` child. A corrupt stream fails the returned
 * stream with ARCHIVE_CORRUPT, and so does one that decompresses to more than
 * the manifest's `content.size` (the child is stopped there: a small member
 * cannot inflate to gigabytes).
 */
export function decodeMember(member: Pick<ManifestMember, 'path' | 'compression' | 'content'>, stored: Readable): Readable {
  if (member.compression !== 'zstd') return stored;
  const limit = member.content?.size;
  let inflated = 0;
  const out = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      inflated += chunk.length;
      if (limit !== undefined && inflated > limit) {
        cb(new OukError('ARCHIVE_CORRUPT', `${member.path} decompresses to more than the ${limit} bytes its manifest says: the kit is damaged or hostile — re-download it`));
        return;
      }
      cb(null, chunk);
    },
  });
  const child = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', (e: NodeJS.ErrnoException) => out.destroy(e.code === 'ENOENT' ? toolMissing(e) : e));
  stored.on('error', (e) => {
    child.kill();
    out.destroy(e);
  });
  child.stdin.on('error', () => undefined); // a reader that stops early closes the pipe
  stored.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else if (!out.destroyed) out.destroy(new OukError('ARCHIVE_CORRUPT', `${member.path} does not decompress (zstd: ${stderr.trim() || `exit ${code}`}): the kit is damaged — re-download it`));
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}

export const DEFAULT_ZSTD_LEVEL = 12;

/** Compresses `src` into `dest` with `zstd -<level>` (all cores; the output does not depend on their number). */
export async function compressFile(src: string, dest: string, level = DEFAULT_ZSTD_LEVEL): Promise<void> {
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new OukError('USAGE', `compression level ${level}: give a zstd level from 1 to 19`);
  const child = spawn('zstd', [`-${level}`, '-T0', '-q', '-c', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? toolMissing(e) : e));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd failed on ${src} (exit ${code}): ${stderr.trim()}`))));
  });
  await Promise.all([pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), child.stdin), pipeline(child.stdout, createWriteStream(dest)), exited]);
}
