/**
 * Reads a bundle tarball as a stream, once: gunzip, walk the tar, and check it
 * against its own manifest on the way. The first member must be manifest.json;
 * every later member must be a regular file with a safe relative name, listed
 * in the manifest, not seen before, with the manifest's size and sha256. At the
 * end every listed member must have been seen. Memory stays flat: members are
 * handed to `onMember` as streams (or drained).
 *
 * The reader does not check signatures: callers verify the whole tarball's
 * signature first (see signing/), and this module checks the rest.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { OukError } from '../lib/errors.ts';
import { type Manifest, type ManifestMember, MAX_MANIFEST_BYTES, parseManifest } from './manifest.ts';
import { MANIFEST_MEMBER } from './tables.ts';

export interface ReadOptions {
  /** Called with the manifest before any other member is read; may throw to stop. */
  onManifest?(manifest: Manifest, raw: Buffer): void | Promise<void>;
  /**
   * Consumes one member. The stream yields the member's bytes and errors with
   * MEMBER_CHECKSUM_MISMATCH if they do not match the manifest, before it ends;
   * the returned promise must settle once the stream is consumed. Without this
   * callback, members are hashed and drained.
   */
  onMember?(member: ManifestMember, stream: Readable): Promise<void>;
}

export interface ReadResult {
  manifest: Manifest;
  /** sha256 hex of manifest.json's bytes. */
  manifestSha256: string;
  /** sha256 hex of the whole compressed input, and its size. */
  sha256: string;
  size: number;
}

/** Why a tar entry name is unsafe, or null when it is a plain relative path. */
export function unsafeNameReason(name: string): string | null {
  if (name.length === 0) return 'an empty name';
  if (name.includes('\0')) return 'a NUL byte in the name';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('\\')) return 'an absolute path';
  if (name.includes('\\')) return 'a backslash in the name';
  const parts = name.split('/');
  if (parts.some((p) => p === '..')) return 'a ".." path segment';
  if (parts.some((p, i) => (p === '' || p === '.') && i < parts.length - 1)) return 'an empty or "." path segment';
  return null;
}

export function normaliseName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

class CheckedMember extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private seen = 0;
  constructor(private readonly member: ManifestMember) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.member.size) {
      cb(new OukError('MEMBER_CHECKSUM_MISMATCH', `${this.member.path} is longer than the ${this.member.size} bytes the manifest says: the bundle was altered — re-download it`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = this.hash.digest('hex');
    if (this.seen !== this.member.size) {
      cb(new OukError('MEMBER_CHECKSUM_MISMATCH', `${this.member.path} is ${this.seen} bytes, the manifest says ${this.member.size}: the bundle was altered — re-download it`));
    } else if (got !== this.member.sha256) {
      cb(new OukError('MEMBER_CHECKSUM_MISMATCH', `${this.member.path} has sha256 ${got}, the manifest says ${this.member.sha256}: the bundle was altered — re-download it`));
    } else cb();
  }
}

function archiveError(e: unknown): OukError {
  if (e instanceof OukError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new OukError('ARCHIVE_CORRUPT', `the tarball is truncated or not a gzip-compressed tar (${msg}): re-download or re-copy it`, { cause: e });
}

/** Tar bytes a member takes: its 512-byte header and its data padded to 512. */
function tarBytes(size: number): number {
  return 512 + Math.ceil(size / 512) * 512;
}

/** Room for pax headers, end-of-archive blocks and the record padding tar adds. */
const TAR_SLACK = 1 << 20;

/**
 * Counts the decompressed bytes and refuses more than the archive can hold:
 * before the manifest is read, a manifest's worth; after, what its members
 * take as tar plus TAR_SLACK. Gigabytes of gzip hidden after the tar's end
 * are refused after a megabyte instead of being inflated to the last byte.
 */
class TarBudget extends Transform {
  private seen = 0;
  limit = tarBytes(MAX_MANIFEST_BYTES) + TAR_SLACK;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      cb(new OukError('ARCHIVE_CORRUPT', `the tarball holds more data than its manifest accounts for (over ${this.limit} bytes of tar): something was appended or altered — re-download it`));
      return;
    }
    cb(null, chunk);
  }
}

export async function readBundle(input: Readable, opts: ReadOptions = {}): Promise<ReadResult> {
  const whole = createHash('sha256');
  let size = 0;
  const tap = new PassThrough();
  tap.on('data', (chunk: Buffer) => {
    whole.update(chunk);
    size += chunk.length;
  });

  const extract = tarExtract();
  const budget = new TarBudget();
  let manifest: Manifest | undefined;
  let manifestSha256 = '';
  const seen = new Set<string>();

  const walk = async (): Promise<void> => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = normaliseName(h.name);
      const unsafe = unsafeNameReason(name);
      if (unsafe) throw new OukError('UNSAFE_ENTRY', `refusing tar entry "${h.name}": ${unsafe}. The bundle is hostile or damaged — do not use it`);
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        if (h.type === 'directory') {
          entry.resume();
          continue;
        }
        throw new OukError('UNSAFE_ENTRY', `refusing tar entry "${h.name}" of type ${h.type}: bundles hold regular files only. The bundle is hostile or damaged — do not use it`);
      }
      if (seen.has(name)) throw new OukError('UNSAFE_ENTRY', `refusing a second tar entry named "${name}": a duplicate could overwrite a checked member. The bundle is hostile or damaged — do not use it`);
      seen.add(name);

      if (!manifest) {
        if (name !== MANIFEST_MEMBER) throw new OukError('MANIFEST_INVALID', `the first member is "${name}", not ${MANIFEST_MEMBER}: this is not a Stella OUK bundle`);
        if ((h.size ?? 0) > MAX_MANIFEST_BYTES) throw new OukError('MANIFEST_INVALID', `manifest.json is ${h.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`);
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        const raw = Buffer.concat(chunks);
        manifest = parseManifest(raw);
        manifestSha256 = createHash('sha256').update(raw).digest('hex');
        budget.limit = tarBytes(raw.length) + manifest.members.reduce((n, m) => n + tarBytes(m.size), 0) + TAR_SLACK;
        await opts.onManifest?.(manifest, raw);
        continue;
      }

      const member = manifest.members.find((m) => m.path === name);
      if (!member) throw new OukError('MEMBER_UNEXPECTED', `"${name}" is in the tarball but not in its manifest: the bundle was altered — re-download it`);
      if (h.size !== member.size) {
        throw new OukError('MEMBER_CHECKSUM_MISMATCH', `${name} is ${h.size} bytes, the manifest says ${member.size}: the bundle was altered — re-download it`);
      }
      const checked = new CheckedMember(member);
      const consumer = opts.onMember
        ? opts.onMember(member, checked)
        : (async () => { for await (const _ of checked) { /* drain */ } })();
      // If the consumer fails first, stop feeding it; the error surfaces below.
      await Promise.all([pipeline(entry, checked), consumer]);
    }
  };

  try {
    await Promise.all([pipeline(input, tap, createGunzip(), budget, extract), walk()]);
  } catch (e) {
    extract.destroy();
    input.destroy();
    throw archiveError(e);
  }
  if (!manifest) throw new OukError('MANIFEST_INVALID', 'the tarball is empty: no manifest.json');
  const missing = manifest.members.filter((m) => !seen.has(m.path)).map((m) => m.path);
  if (missing.length) throw new OukError('MEMBER_MISSING', `the manifest lists ${missing.join(', ')} but the tarball does not hold ${missing.length === 1 ? 'it' : 'them'}: the bundle is incomplete — re-download it`);
  return { manifest, manifestSha256, sha256: whole.digest('hex'), size };
}
