/**
 * A bundle member written to a temporary file and hashed on the way (sha256 for
 * the manifest, sha1 too for the SPDX file entry), with its size and row count;
 * and the same digests for a file that already exists (an OCI image archive),
 * computed by streaming it once.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { compressFile, ZSTD_SUFFIX } from '../bundle/member-codec.ts';
import type { MemberSource } from '../bundle/writer.ts';

export interface FileDigest {
  size: number;
  sha256: string;
  sha1: string;
}

export interface WrittenMember extends FileDigest {
  /** Path inside the bundle. */
  path: string;
  /** Where the bytes are on disk. */
  file: string;
  rows: number;
  /** Set once compressed (compressMember): how, and the content's own size and sha256. */
  compression?: 'zstd';
  content?: { size: number; sha256: string };
}

/** The member stored zstd-compressed (bundle/member-codec.ts): `db/x.tsv` becomes `db/x.tsv.zst`. */
export async function compressMember(m: WrittenMember, level?: number): Promise<WrittenMember> {
  const dest = m.file + ZSTD_SUFFIX;
  await compressFile(m.file, dest, level);
  const d = await digestFile(dest);
  return { ...d, path: m.path + ZSTD_SUFFIX, file: dest, rows: m.rows, compression: 'zstd', content: { size: m.size, sha256: m.sha256 } };
}

export class MemberFile {
  private readonly out: WriteStream;
  private readonly h256: Hash = createHash('sha256');
  private readonly h1: Hash = createHash('sha1');
  private size = 0;
  private rows = 0;

  constructor(readonly path: string, readonly file: string) {
    this.out = createWriteStream(file, { flags: 'wx' });
  }

  /** Appends encoded rows (each ending in a newline). */
  async writeRows(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const buf = Buffer.from(lines.join(''), 'utf8');
    this.h256.update(buf);
    this.h1.update(buf);
    this.size += buf.length;
    this.rows += lines.length;
    if (!this.out.write(buf)) await once(this.out, 'drain');
  }

  /** Appends `buf`, which holds `rows` whole lines. */
  async writeChunk(buf: Buffer, rows: number): Promise<void> {
    if (buf.length === 0) return;
    this.h256.update(buf);
    this.h1.update(buf);
    this.size += buf.length;
    this.rows += rows;
    if (!this.out.write(buf)) await once(this.out, 'drain');
  }

  async close(): Promise<WrittenMember> {
    this.out.end();
    await once(this.out, 'finish');
    return { path: this.path, file: this.file, rows: this.rows, size: this.size, sha256: this.h256.digest('hex'), sha1: this.h1.digest('hex') };
  }

  destroy(): void {
    this.out.destroy();
  }
}

export async function digestStream(input: Readable): Promise<FileDigest> {
  const h256 = createHash('sha256');
  const h1 = createHash('sha1');
  let size = 0;
  for await (const chunk of input) {
    const b = chunk as Buffer;
    h256.update(b);
    h1.update(b);
    size += b.length;
  }
  return { size, sha256: h256.digest('hex'), sha1: h1.digest('hex') };
}

export function digestFile(file: string): Promise<FileDigest> {
  return digestStream(createReadStream(file, { highWaterMark: 1024 * 1024 }));
}

export function fileSource(path: string, file: string, size: number): MemberSource {
  return { path, size, open: () => createReadStream(file, { highWaterMark: 1024 * 1024 }) };
}
