/**
 * Reading feed files whose size nobody vouches for. The publisher reads what
 * upstreams serve, so every read here is bounded before it allocates:
 *
 *   readBoundedText(file, max)   a whole JSON file, refused (MalformedRecord:
 *                                the caller skips the file with the reason)
 *                                when it is larger than `max` bytes
 *   openFeedFile(file)           a file as a stream, gunzipped when it ends in
 *                                `.gz`, refused (FEED_UNREADABLE, naming the
 *                                file) once it inflates past inflateLimit():
 *                                MAX_INFLATE_RATIO times its own size (plus
 *                                INFLATE_ROOM), and never past MAX_INFLATED_BYTES
 *   boundedLines(input, max)     lines of a stream, refused (MalformedRecord)
 *                                when one is longer than `max` characters, so
 *                                a file without line breaks is never held whole
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { OukError } from '../../lib/errors.ts';
import { MalformedRecord } from './fields.ts';

/** How many times its own size a gzipped feed file may inflate to (FIRST's EPSS day: about 5). */
export const MAX_INFLATE_RATIO = 100;
/** What any gzipped feed file may inflate to whatever its ratio: small files compress far better. */
export const INFLATE_ROOM = 16 * 1024 * 1024;
/** The most any gzipped feed file inflates to (an EPSS day is about 12 MB). */
export const MAX_INFLATED_BYTES = 1024 * 1024 * 1024;

/** The most bytes a gzipped file of `compressedBytes` may inflate to. */
export function inflateLimit(compressedBytes: number): number {
  return Math.min(MAX_INFLATED_BYTES, compressedBytes * MAX_INFLATE_RATIO + INFLATE_ROOM);
}

function mib(n: number): string {
  return `${Math.round((n / 1024 / 1024) * 10) / 10} MiB`;
}

/** A whole file as UTF-8 text, or MalformedRecord when it holds more than `maxBytes` (nothing past that is read). */
export async function readBoundedText(file: string, maxBytes: number, what: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size > maxBytes) throw new MalformedRecord(`it is ${size} bytes, over the ${maxBytes}-byte (${mib(maxBytes)}) limit of ${what}`);
    // one byte more than stat said (at most the limit's): a file that grows while it is read is caught
    const cap = Math.min(size, maxBytes) + 1;
    const buf = Buffer.allocUnsafe(cap);
    let got = 0;
    while (got < cap) {
      const { bytesRead } = await fh.read(buf, got, cap - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got === cap) throw new MalformedRecord(got > maxBytes ? `it grew past the ${maxBytes}-byte (${mib(maxBytes)}) limit of ${what} while it was read` : 'it grew while it was read');
    return buf.toString('utf8', 0, got);
  } finally {
    await fh.close();
  }
}

/** Counts what flows through and fails with `tooMuch` once it passes `limit` bytes. */
export class ByteBudget extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly tooMuch: (limit: number) => Error,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) cb(this.tooMuch(this.limit));
    else cb(null, chunk);
  }
}

/**
 * `file` as a stream of bytes; a `.gz` file gunzipped, bounded by
 * inflateLimit(its size): past it the stream fails with FEED_UNREADABLE
 * naming the file, and the gunzip stops (at most a chunk past the limit is
 * ever inflated). Errors of the file surface on the returned stream.
 */
export async function openFeedFile(file: string): Promise<Readable> {
  const raw = createReadStream(file, { highWaterMark: 1024 * 1024 });
  if (!file.endsWith('.gz')) return raw;
  const size = (await stat(file)).size;
  const limit = inflateLimit(size);
  const gunzip = createGunzip();
  const budget = new ByteBudget(
    limit,
    (l) =>
      new OukError(
        'FEED_UNREADABLE',
        `${file} inflates to more than ${l} bytes (${mib(l)}: ${MAX_INFLATE_RATIO} times its ${size} bytes plus ${mib(INFLATE_ROOM)}, at most ${mib(MAX_INFLATED_BYTES)}): ` +
          'it is not a feed file (a decompression bomb, or the wrong file) — replace it with the upstream file, or remove it',
      ),
  );
  const fail = (e: Error): void => {
    raw.destroy();
    gunzip.destroy();
    budget.destroy(e);
  };
  raw.on('error', fail);
  gunzip.on('error', fail);
  // however the reader stops (the end, an error, a line too long), the file and the gunzip stop with it
  budget.on('close', () => {
    raw.destroy();
    gunzip.destroy();
  });
  return raw.pipe(gunzip).pipe(budget);
}

/**
 * The lines of a byte stream (`\n`-separated, a trailing `\r` dropped), one
 * held at a time; MalformedRecord when a line passes `maxChars` characters
 * (the input is then no longer read).
 */
export async function* boundedLines(input: Readable, maxChars: number): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  const emit = (line: string): string => (line.endsWith('\r') ? line.slice(0, -1) : line);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      const text = decoder.write(chunk);
      let start = 0;
      let nl: number;
      while ((nl = text.indexOf('\n', start)) !== -1) {
        if (pending.length + (nl - start) > maxChars) throw new MalformedRecord(`a line is longer than ${maxChars} characters`);
        const line = pending + text.slice(start, nl);
        pending = '';
        start = nl + 1;
        yield emit(line);
      }
      if (pending.length + (text.length - start) > maxChars) throw new MalformedRecord(`a line is longer than ${maxChars} characters`);
      pending += text.slice(start);
    }
    pending += decoder.end();
    if (pending.length > maxChars) throw new MalformedRecord(`a line is longer than ${maxChars} characters`);
    if (pending !== '') yield emit(pending);
  } finally {
    input.destroy();
  }
}
