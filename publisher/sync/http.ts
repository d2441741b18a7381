/**
 * The one HTTP client every upstream source uses. Each request:
 *   - waits its turn under the source's pacing (pacing.ts), retries included;
 *   - has a deadline (the whole answer, body included) and a byte ceiling,
 *     checked on the announced Content-Length and again on every chunk read;
 *   - is retried on what a busy or flaky service answers — 403 and 429 (rate
 *     limits: NVD answers 403), 408, 425, 5xx, a refused or cut connection, a
 *     body cut short, a deadline passed — with exponential backoff and jitter,
 *     honouring Retry-After; the `message` header NVD puts its reason in is
 *     carried into every notice and error;
 *   - ends in a typed error: UPSTREAM_UNAVAILABLE (still failing after the
 *     last try), UPSTREAM_REJECTED (a 4xx that retrying cannot fix: a bad
 *     API key, a bad parameter), UPSTREAM_INVALID (more bytes than allowed).
 * The number of requests made (every try counts) is kept for the report.
 */
import { readFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { findOukError, isOukError, OukError } from '../../lib/errors.ts';
import { realClock, type Clock, type RollingWindow } from './pacing.ts';

export type FetchFn = typeof fetch;

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0';
export const USER_AGENT = `stella-ouk/${VERSION} (feeds sync)`;

/** Statuses a later try may not see: rate limits and a service that is down or overloaded. */
const RETRY_STATUS = new Set([403, 408, 425, 429, 500, 502, 503, 504]);
/** Longest wait between tries, whatever Retry-After asks. */
const MAX_DELAY_MS = 10 * 60_000;

export interface RetryNotice {
  source: string;
  url: string;
  /** the try that failed, from 1 */
  attempt: number;
  attempts: number;
  status?: number;
  /** the upstream's own reason: NVD's `message` header */
  message?: string;
  error?: string;
  delayMs: number;
}

export interface ClientOptions {
  /** The source's name, in messages (`nvd`, `osv`, …). */
  source: string;
  /** The service's name for an operator (`NVD`, `OSV's bucket`). */
  service: string;
  /** The variable that sets its address, named in errors. */
  urlVariable: string;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
  pacing?: RollingWindow;
  headers?: Record<string, string>;
  fetch?: FetchFn;
  clock?: Clock;
  random?: () => number;
  onRetry?: (n: RetryNotice) => void;
}

export interface GetOptions {
  maxBytes: number;
  /** Request headers, or a function giving them afresh for every try. */
  headers?: Record<string, string> | (() => Promise<Record<string, string>>);
  /** Statuses besides 2xx handed to the caller instead of failing (304, 404, 204 …). */
  allow?: number[];
  /** What is fetched, for messages (`page 3`, `npm/all.zip`). */
  what?: string;
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** A failure a later try may not see (network, deadline, a retryable status). */
class Transient extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly upstreamMessage?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

function retryAfter(h: Headers, now: number): number | undefined {
  const v = h.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** A server's text, safe for one terminal line: printable, bounded. */
export function oneLine(s: string, max = 200): string {
  const t = s.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

function networkDetail(e: unknown): string {
  const name = (e as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'no complete answer before the deadline';
  const cause = (e as { cause?: { code?: string; message?: string } } | null)?.cause;
  return oneLine(cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e));
}

/**
 * Whether an error while reading a body came from the connection (cut, reset,
 * deadline) — retried — rather than from the reader itself (a disk full, a
 * bug), which is not.
 */
function fromTheConnection(e: unknown): boolean {
  const err = e as { name?: string; code?: string; message?: string; cause?: { code?: string; name?: string } } | null;
  if (!err) return false;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return true;
  const code = err.cause?.code ?? err.code ?? '';
  if (/^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|UND_ERR)/.test(code)) return true;
  return err.message === 'terminated' || err.cause?.name === 'SocketError';
}

export class UpstreamClient {
  /** Requests made, every try counted. */
  requests = 0;
  private readonly fetchFn: FetchFn;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(readonly opts: ClientOptions) {
    this.fetchFn = opts.fetch ?? fetch;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
  }

  /** The delay before try `attempt + 1`: base·2^(attempt-1), half of it jittered, at least what Retry-After asks. */
  private delay(attempt: number, retryAfterMs?: number): number {
    const exp = Math.min(MAX_DELAY_MS, this.opts.backoffMs * 2 ** (attempt - 1));
    const jittered = exp / 2 + (this.random() * exp) / 2;
    return Math.min(MAX_DELAY_MS, Math.max(jittered, retryAfterMs ?? 0));
  }

  /**
   * GETs `url` and hands the open response to `consume`, which reads the body
   * (through `bounded`); a failure while reading it is retried like a failed
   * request. Statuses in `allow` reach `consume` too.
   */
  async get<T>(url: string, o: GetOptions, consume: (res: Response, body: Readable | null) => Promise<T>): Promise<Answer<T>> {
    const what = o.what ?? url;
    for (let attempt = 1; ; attempt++) {
      await this.opts.pacing?.take();
      this.requests++;
      let failure: Transient;
      try {
        const signal = AbortSignal.timeout(this.opts.timeoutMs);
        const extra = typeof o.headers === 'function' ? await o.headers() : o.headers;
        let res: Response;
        try {
          res = await this.fetchFn(url, { signal, headers: { 'user-agent': USER_AGENT, ...this.opts.headers, ...extra } });
        } catch (e) {
          throw this.network(url, e);
        }
        const message = res.headers.get('message') ?? undefined;
        const ok = (res.status >= 200 && res.status < 300) || (o.allow ?? []).includes(res.status);
        if (!ok) {
          const snippet = await this.snippet(res);
          if (RETRY_STATUS.has(res.status)) throw new Transient(`HTTP ${res.status}`, res.status, message ?? snippet, retryAfter(res.headers, Date.now()));
          throw new OukError(
            'UPSTREAM_REJECTED',
            `${this.opts.service} refused ${what}: HTTP ${res.status}${message ? ` (message: ${oneLine(message)})` : snippet ? ` (${snippet})` : ''} for ${url}: check ${this.opts.urlVariable}${this.opts.source === 'nvd' ? ' and NVD_API_KEY' : ''}`,
          );
        }
        const announced = Number(res.headers.get('content-length'));
        if (Number.isFinite(announced) && announced > o.maxBytes) {
          await res.body?.cancel().catch(() => undefined);
          throw this.tooLarge(url, o.maxBytes, `it announces ${announced} bytes`);
        }
        const body = res.body ? Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>) : null;
        // A connection cut before `consume` reads (while it awaits something else) must not be an
        // uncaught 'error': the stream keeps the error, and reading it throws it there.
        body?.on('error', () => undefined);
        try {
          const value = await consume(res, body);
          return { status: res.status, headers: res.headers, body: value };
        } catch (e) {
          if (isOukError(e) || e instanceof Transient || !fromTheConnection(e)) throw e;
          throw this.network(url, e);
        } finally {
          body?.destroy();
        }
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        failure = e;
      }
      if (attempt >= this.opts.attempts) {
        const reason = failure.status ? `HTTP ${failure.status}` : failure.message;
        throw new OukError(
          'UPSTREAM_UNAVAILABLE',
          `${this.opts.service} did not answer ${what} after ${attempt} tries (last: ${reason}${failure.upstreamMessage ? `, message: ${oneLine(failure.upstreamMessage)}` : ''}) at ${url}: it may be down or limiting this host${this.opts.source === 'nvd' && !this.opts.headers?.apiKey ? ' (an NVD_API_KEY raises the limit)' : ''}; run the sync again later — it resumes where it stopped`,
          { retryable: true },
        );
      }
      const delayMs = this.delay(attempt, failure.retryAfterMs);
      this.opts.onRetry?.({
        source: this.opts.source,
        url,
        attempt,
        attempts: this.opts.attempts,
        ...(failure.status ? { status: failure.status } : { error: failure.message }),
        ...(failure.upstreamMessage ? { message: oneLine(failure.upstreamMessage) } : {}),
        delayMs,
      });
      await this.clock.sleep(delayMs);
    }
  }

  /** GETs a body whole, at most `maxBytes`. */
  getBytes(url: string, o: GetOptions): Promise<Answer<Buffer>> {
    return this.get(url, o, async (_res, body) => (body ? this.readAll(body, url, o.maxBytes) : Buffer.alloc(0)));
  }

  /** GETs JSON, at most `maxBytes`; not JSON is UPSTREAM_INVALID. */
  async getJson(url: string, o: GetOptions): Promise<Answer<unknown>> {
    const a = await this.getBytes(url, o);
    if (a.status < 200 || a.status >= 300 || a.status === 204) return { ...a, body: undefined };
    try {
      return { ...a, body: JSON.parse(a.body.toString('utf8')) as unknown };
    } catch (e) {
      throw this.invalid(url, `not JSON (${oneLine((e as Error).message, 80)}): ${oneLine(a.body.subarray(0, 120).toString('utf8'), 120)}`);
    }
  }

  /**
   * GETs `url` into `file`, at most `maxBytes` in all. What an interrupted
   * download left in `file` is continued with a Range request while the
   * upstream's validator (a strong ETag, else Last-Modified, as the first part
   * came with it: `validator`, kept by the caller across runs) still matches
   * (If-Range); a server that answers 200 instead sends it whole again.
   * `onValidator` is told the validator before a byte is written.
   */
  async download(
    url: string,
    file: string,
    o: GetOptions & { validator?: string; onValidator?: (v: string | undefined) => Promise<void> | void },
  ): Promise<Answer<{ size: number; validator: string | undefined; resumedFrom: number }>> {
    let validator = o.validator;
    let from = 0;
    const headers = async (): Promise<Record<string, string>> => {
      const held = validator ? ((await stat(file).catch(() => null))?.size ?? 0) : 0;
      from = held;
      return held > 0 && validator ? { ...o.headers, range: `bytes=${held}-`, 'if-range': validator } : { ...o.headers };
    };
    return this.get(url, { ...o, headers, allow: [...(o.allow ?? []), 206] }, async (res, body) => {
      let start = 0;
      if (res.status === 206) {
        const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== from) {
          validator = undefined; // the next try asks for the whole file
          throw new Transient(`a partial answer for another range (${oneLine(res.headers.get('content-range') ?? 'none', 60)})`);
        }
        start = from;
      }
      const etag = res.headers.get('etag');
      validator = etag && !etag.startsWith('W/') ? etag : (res.headers.get('last-modified') ?? undefined);
      await o.onValidator?.(validator);
      if (!body) throw this.invalid(url, 'no body');
      // Each chunk is on disk before the next is read: a cut connection leaves every byte received
      // in `file`, and the next try (or run) asks only for the rest.
      let written = start;
      const fh = await open(file, start ? 'a' : 'w');
      try {
        for await (const chunk of body) {
          const b = chunk as Buffer;
          if (written + b.length > o.maxBytes) throw this.tooLarge(url, o.maxBytes, `${written + b.length} bytes read so far`);
          await fh.write(b);
          written += b.length;
        }
      } finally {
        await fh.close();
      }
      return { size: written, validator, resumedFrom: start };
    });
  }

  /** Reads a body into memory, failing past `maxBytes`. */
  async readAll(body: Readable, url: string, maxBytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of body) {
      const b = c as Buffer;
      size += b.length;
      if (size > maxBytes) throw this.tooLarge(url, maxBytes, `${size} bytes read so far`);
      chunks.push(b);
    }
    return Buffer.concat(chunks, size);
  }

  /** A Transform that fails the stream past `maxBytes` (for streamed bodies). */
  meter(url: string, maxBytes: number, start = 0): Transform {
    let size = start;
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        size += chunk.length;
        if (size > maxBytes) return cb(this.tooLarge(url, maxBytes, `${size} bytes read so far`));
        cb(null, chunk);
      },
    });
  }

  invalid(url: string, why: string): OukError {
    return new OukError('UPSTREAM_INVALID', `${this.opts.service} answered ${url} with something that is not what its protocol says: ${why}; nothing of it was written — if it persists, check ${this.opts.urlVariable}`);
  }

  private tooLarge(url: string, max: number, what: string): OukError {
    return new OukError('UPSTREAM_INVALID', `${this.opts.service}'s answer to ${url} is larger than the ${max} bytes allowed (${what}): refused, nothing of it was written`);
  }

  private network(url: string, e: unknown): Error {
    const refused = findOukError(e, 'AIRGAP_VIOLATION');
    if (refused) return new OukError('AIRGAP_VIOLATION', `${refused.message} (fetching ${url})`, { cause: e });
    return new Transient(networkDetail(e));
  }

  private async snippet(res: Response): Promise<string> {
    try {
      if (!res.body) return '';
      const reader = res.body.getReader();
      const first = await reader.read();
      await reader.cancel().catch(() => undefined);
      return first.value ? oneLine(Buffer.from(first.value).subarray(0, 200).toString('utf8'), 120) : '';
    } catch {
      return '';
    }
  }
}

