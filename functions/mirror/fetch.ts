/**
 * Bounded HTTP GETs from the intranet mirror. Every download has
 *
 *   - a total deadline (request to last byte),
 *   - a minimum rate: fewer than `bytesPerSecond × windowMs / 1000` bytes in
 *     any window of `windowMs` abandons it as stalled (a mirror trickling one
 *     byte every few seconds never reaches the deadline's end of a long kit),
 *   - a byte ceiling (a kit's is the size its index entry announces): a
 *     larger announced Content-Length is refused before a byte is read, a
 *     body that runs past it is cut at the ceiling,
 *   - and an optional outside signal (the round's own deadline).
 *
 * The deadline and the rate check are timers of this module, kept referenced
 * until the download ends, and when one fires it destroys the body stream
 * itself (and ends the wait for the response) as well as aborting the fetch:
 * they act whatever the garbage collector does. Aborting the fetch's signal is
 * not enough: AbortSignal.timeout's timer does not keep its signal alive, and
 * Node's fetch links the caller's signal to the request through a weak
 * reference, so once the request object is collected while its body streams,
 * aborting the signal no longer stops anything (a trickling mirror then held a
 * round for hours).
 *
 * It is streamed to a file while its sha256 is computed (or held in memory for
 * a small file), and fails with a typed error: MIRROR_UNREACHABLE (network,
 * HTTP status, deadline, too slow), MIRROR_TOO_LARGE (more bytes than
 * allowed), AIRGAP_VIOLATION (the guard refused the host). Redirects are
 * refused: the mirror serves its files itself.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { findOukError, isOukError, OukError } from '../../lib/errors.ts';

export type FetchFn = typeof fetch;

export interface FetchLimits {
  maxBytes: number;
  /** The whole download, from the request to the last byte. */
  timeoutMs: number;
  /** The setting that raises `timeoutMs`, named in the error (e.g. OUK_MIRROR_TIMEOUT_SECONDS). */
  timeoutSetting?: string;
  /** Slowest transfer accepted, measured over each window of `windowMs`. */
  minRate: { bytesPerSecond: number; windowMs: number };
  /** Ends the download from outside; its reason (an Error) is the message. */
  signal?: AbortSignal;
}

export interface Downloaded {
  sha256: string;
  size: number;
}

/**
 * The deadline, the rate check and the outside signal of one download, on one
 * AbortController. `stop()` records why it was aborted, so the error says so.
 */
class Watchdog {
  readonly controller = new AbortController();
  private why: string | null = null;
  private received = 0;
  private atWindowStart = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  /** The body being read: destroyed by `stop()` itself, not only through the signal (see below). */
  private body: Readable | null = null;
  private rejectStopped: (e: Error) => void = () => undefined;
  /** Rejects when the download is stopped: what waiting for the response races against. */
  readonly stopped = new Promise<never>((_, reject) => {
    this.rejectStopped = reject;
  });
  private readonly onOutside = (): void => this.stop(`was stopped: ${reasonText(this.limits.signal?.reason) ?? 'the round ended'}`);

  constructor(private readonly limits: FetchLimits) {
    this.stopped.catch(() => undefined);
    const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
    const hint = limits.timeoutSetting ? `: check the mirror, or raise ${limits.timeoutSetting}` : ': check the mirror';
    // Referenced timers (never unref'd): they keep this watchdog and its controller alive until cleared.
    this.timers.push(setTimeout(() => this.stop(`did not finish within ${seconds(limits.timeoutMs)}${hint}`), limits.timeoutMs));
    const { bytesPerSecond, windowMs } = limits.minRate;
    const need = Math.ceil((bytesPerSecond * windowMs) / 1000);
    this.timers.push(
      setInterval(() => {
        const got = this.received - this.atWindowStart;
        this.atWindowStart = this.received;
        if (got < need) {
          this.stop(`sent ${got} bytes in ${seconds(windowMs)}, slower than ${bytesPerSecond} bytes/s (OUK_MIRROR_MIN_BYTES_PER_SECOND over OUK_MIRROR_STALL_SECONDS): the mirror stalls — check it and its network`);
        }
      }, windowMs),
    );
    if (limits.signal?.aborted) this.onOutside();
    else limits.signal?.addEventListener('abort', this.onOutside, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The body being read, destroyed at once when the download is stopped. */
  reading(body: Readable): Readable {
    this.body = body;
    if (this.why !== null) body.destroy(new Error(this.why));
    return body;
  }

  count(bytes: number): void {
    this.received += bytes;
  }

  stop(why: string): void {
    if (this.why !== null) return;
    this.why = why;
    this.controller.abort(new Error(why));
    this.rejectStopped(new Error(why));
    this.body?.destroy(new Error(why));
  }

  /** Clears the timers: call once the download ended, whichever way. */
  done(): void {
    for (const t of this.timers) clearTimeout(t);
    this.limits.signal?.removeEventListener('abort', this.onOutside);
    this.body = null;
  }

  /** The typed error for a failure: the watchdog's reason when it stopped the download. */
  error(url: string, e: unknown): OukError {
    if (isOukError(e)) return e;
    if (this.why !== null) return new OukError('MIRROR_UNREACHABLE', `${url} ${this.why}`, { cause: e, retryable: true });
    return unreachable(url, e);
  }
}

function reasonText(reason: unknown): string | null {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : null;
}

function unreachable(url: string, e: unknown): OukError {
  const refused = findOukError(e, 'AIRGAP_VIOLATION');
  if (refused) return new OukError('AIRGAP_VIOLATION', `${refused.message} (fetching ${url})`, { cause: e });
  const cause = (e as { cause?: { message?: string; code?: string } } | null)?.cause;
  const detail = cause?.code ?? cause?.message ?? (e as Error).message;
  return new OukError('MIRROR_UNREACHABLE', `cannot reach the mirror at ${url} (${detail}): check OUK_MIRROR_URL and that the mirror's HTTP server is up`, { cause: e, retryable: true });
}

function tooLarge(url: string, max: number, what: string): OukError {
  return new OukError('MIRROR_TOO_LARGE', `${url} is larger than ${max} bytes (${what}): the file on the mirror is not the one its index.json describes — refused`);
}

/** The response to a GET of `url`, refused when it announces more than the size limit; null on 404. */
async function openBounded(fetchFn: FetchFn, url: string, limits: FetchLimits, dog: Watchdog): Promise<Response | null> {
  let res: Response;
  try {
    const answer = fetchFn(url, { redirect: 'error', signal: dog.signal });
    // A response that arrives after the download was stopped is not read: release its connection.
    dog.stopped.catch(() => answer.then((late) => late.body?.cancel(), () => undefined)).catch(() => undefined);
    res = await Promise.race([answer, dog.stopped]);
  } catch (e) {
    throw dog.error(url, e);
  }
  const discard = async (): Promise<void> => {
    await res.body?.cancel().catch(() => undefined);
  };
  if (res.status === 404) {
    await discard();
    return null;
  }
  if (!res.ok) {
    await discard();
    throw new OukError('MIRROR_UNREACHABLE', `the mirror answered HTTP ${res.status} for ${url}`, { retryable: true });
  }
  const announced = Number(res.headers.get('content-length'));
  if (Number.isFinite(announced) && announced > limits.maxBytes) {
    await discard();
    throw tooLarge(url, limits.maxBytes, `the server announces ${announced}`);
  }
  return res;
}

function bodyOf(res: Response, dog: Watchdog): Readable {
  return dog.reading(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>));
}

/** Runs one download under its watchdog; the watchdog's timers are cleared whatever happens. */
async function guarded<T>(url: string, limits: FetchLimits, run: (dog: Watchdog) => Promise<T>): Promise<T> {
  const dog = new Watchdog(limits);
  try {
    return await run(dog);
  } catch (e) {
    throw dog.error(url, e);
  } finally {
    dog.done();
  }
}

/** GETs `url` into `file`, never writing more than `maxBytes`; null on 404. */
export function downloadToFile(fetchFn: FetchFn, url: string, file: string, limits: FetchLimits): Promise<Downloaded | null> {
  return guarded(url, limits, async (dog) => {
    const res = await openBounded(fetchFn, url, limits, dog);
    if (!res) return null;
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        dog.count(chunk.length);
        // Cut at the ceiling: the chunk that would cross it is not written.
        if (size + chunk.length > limits.maxBytes) return cb(tooLarge(url, limits.maxBytes, `${size + chunk.length} bytes read so far`));
        size += chunk.length;
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    if (res.body) await pipeline(bodyOf(res, dog), meter, createWriteStream(file));
    else await pipeline(Readable.from([]), createWriteStream(file));
    return { sha256: hash.digest('hex'), size };
  });
}

/** GETs a small file whole (index.json, a .sig), held in memory up to `maxBytes`; null on 404. */
export function downloadSmall(fetchFn: FetchFn, url: string, limits: FetchLimits): Promise<Buffer | null> {
  return guarded(url, limits, async (dog) => {
    const res = await openBounded(fetchFn, url, limits, dog);
    if (!res) return null;
    const chunks: Buffer[] = [];
    let size = 0;
    if (res.body) {
      const body = bodyOf(res, dog);
      for await (const c of body) {
        const b = c as Buffer;
        dog.count(b.length);
        if (size + b.length > limits.maxBytes) {
          body.destroy();
          throw tooLarge(url, limits.maxBytes, `${size + b.length} bytes read so far`);
        }
        size += b.length;
        chunks.push(b);
      }
    }
    return Buffer.concat(chunks);
  });
}
