/**
 * One layer, streamed: its bytes are hashed and counted against the
 * descriptor (a mismatch is IMAGE_INVALID once the stream ends: a result is
 * never used from bytes that are not the layer's), decompressed by what they
 * are (gzip by zlib, zstd by Debian's `zstd` binary, else a plain tar;
 * the media type is not trusted), counted again against maxLayerBytes
 * (LAYER_TOO_LARGE: a decompression bomb stops there) and read entry by
 * entry with tar-stream. Nothing is written to disk and no layer is held
 * whole: `visit` consumes each entry's stream before the next is read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { OukError } from '../lib/errors.ts';
import type { Descriptor } from './documents.ts';

export type LayerVisitor = (header: Header, body: AsyncIterable<unknown>) => Promise<void>;

/** Counts bytes through; past `max` fails with `tooMuch()`. Hashes them when given a hash. */
class Meter extends Transform {
  bytes = 0;
  constructor(
    private readonly max: number,
    private readonly tooMuch: () => OukError,
    private readonly hash?: Hash,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) return done(this.tooMuch());
    this.hash?.update(chunk);
    done(null, chunk);
  }
}

/** The first `n` bytes of a stream, put back for the next reader. */
async function peek(stream: Readable, n: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const c = stream.read() as Buffer | null;
    if (c !== null) {
      got.push(c);
      len += c.length;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    await Promise.race([once(stream, 'readable'), once(stream, 'end')]);
  }
  const head = Buffer.concat(got);
  if (head.length) stream.unshift(head);
  return head;
}

const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

function zstdStream(input: Readable, image: string): { out: Readable; child: ChildProcess; done: Promise<void> } {
  const child = spawn('zstd', ['-d', '-q', '-c', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
  const out = new PassThrough();
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new OukError('TOOL_MISSING', `zstd is not installed: ${image} has zstd-compressed layers — install Debian's zstd (apt-get install zstd)`, { cause: e }) : e),
    );
    child.on('close', (code, signal) => {
      if (code === 0 || signal === 'SIGTERM') resolve();
      else reject(new OukError('IMAGE_INVALID', `a layer of ${image} does not decompress (zstd: ${stderr.trim() || `exit ${code}`})`));
    });
  });
  input.pipe(child.stdin!).on('error', () => undefined); // EPIPE when zstd stops first: its exit says why
  child.stdout!.pipe(out);
  return { out, child, done };
}

/**
 * Reads `layer` (its stream from the source) and hands every tar entry to
 * `visit`. `maxLayerBytes` bounds the inflated size.
 */
export async function readLayer(stream: Readable, layer: Descriptor, image: string, maxLayerBytes: number, visit: LayerVisitor): Promise<void> {
  const hash = createHash('sha256');
  const stored = new Meter(layer.size, () => new OukError('IMAGE_INVALID', `layer ${layer.digest} of ${image} is longer than the ${layer.size} bytes its manifest says`), hash);
  const raw = stream.pipe(stored);
  stream.on('error', (e) => stored.destroy(e));
  const head = await peek(raw, 4);
  let decompressed: Readable = raw;
  let zstd: ReturnType<typeof zstdStream> | null = null;
  if (head.subarray(0, 2).equals(GZIP)) {
    const gunzip = zlib.createGunzip();
    raw.on('error', (e) => gunzip.destroy(e));
    decompressed = raw.pipe(gunzip);
  } else if (head.subarray(0, 4).equals(ZSTD)) {
    zstd = zstdStream(raw, image);
    zstd.done.catch(() => undefined); // awaited below; never an unhandled rejection when reading stops first
    decompressed = zstd.out;
  }
  const inflated = new Meter(maxLayerBytes, () => new OukError('LAYER_TOO_LARGE', `layer ${layer.digest} of ${image} inflates past ${maxLayerBytes} bytes: reading stopped there — do not run this image`));
  const tar = extract();
  const piped = pipeline(decompressed, inflated, tar);
  let failure: unknown = null;
  piped.catch((e: unknown) => (failure ??= e));
  try {
    for await (const entry of tar) {
      await visit(entry.header, entry);
      entry.resume();
    }
    await piped;
    await zstd?.done;
  } catch (e) {
    zstd?.child.kill('SIGTERM');
    stream.destroy();
    const zstdFailure = zstd ? await zstd.done.then(() => null, (z: unknown) => z) : null;
    // the first clear reason: ours (a bound, a visitor's), the stream's, zstd's (not installed, corrupt input)
    const cause = [e, failure, zstdFailure].find((c) => c instanceof OukError) ?? failure ?? e;
    if (cause instanceof OukError) throw cause;
    if (stored.bytes > 0 && /gzip|header|incorrect|unexpected end|invalid/i.test(String((cause as Error)?.message))) {
      throw new OukError('IMAGE_INVALID', `layer ${layer.digest} of ${image} is not a (compressed) tar archive (${(cause as Error).message})`, { cause });
    }
    throw cause;
  }
  if (stored.bytes !== layer.size || `sha256:${hash.digest('hex')}` !== layer.digest) {
    throw new OukError('IMAGE_INVALID', `layer ${layer.digest} of ${image} does not have its digest or size (${stored.bytes} of ${layer.size} bytes): the image is damaged — re-push it; nothing of it was used`);
  }
}
