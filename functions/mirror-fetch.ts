/**
 * Bounded HTTP GETs from the intranet mirror: every download has a deadline
 * and a byte ceiling (a kit's is the size its index entry announces), is
 * streamed to a file while its sha256 is computed, and fails with a typed
 * error: MIRROR_UNREACHABLE (network, HTTP status, deadline), MIRROR_TOO_LARGE
 * (more bytes than allowed), AIRGAP_VIOLATION (the guard refused the host).
 * Redirects are refused: the mirror serves its files itself.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { findOukError, isOukError, OukError } from '../lib/errors.ts';

export type FetchFn = typeof fetch;

export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
}

export interface Downloaded {
  sha256: string;
  size: number;
}

function unreachable(url: string, e: unknown, timeoutMs: number): OukError {
  const refused = findOukError(e, 'AIRGAP_VIOLATION');
  if (refused) return new OukError('AIRGAP_VIOLATION', `${refused.message} (fetching ${url})`, { cause: e });
  const name = (e as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new OukError('MIRROR_UNREACHABLE', `${url} did not finish within ${Math.round(timeoutMs / 1000)} s: check the mirror, or raise OUK_MIRROR_TIMEOUT_SECONDS`, { cause: e, retryable: true });
  }
  const cause = (e as { cause?: { message?: string; code?: string } } | null)?.cause;
  const detail = cause?.code ?? cause?.message ?? (e as Error).message;
  return new OukError('MIRROR_UNREACHABLE', `cannot reach the mirror at ${url} (${detail}): check OUK_MIRROR_URL and that the mirror's HTTP server is up`, { cause: e, retryable: true });
}

async function open(fetchFn: FetchFn, url: string, signal: AbortSignal, timeoutMs: number): Promise<Response | null> {
  let res: Response;
  try {
    res = await fetchFn(url, { redirect: 'error', signal });
  } catch (e) {
    throw unreachable(url, e, timeoutMs);
  }
  if (res.status === 404) {
    await res.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new OukError('MIRROR_UNREACHABLE', `the mirror answered HTTP ${res.status} for ${url}`, { retryable: true });
  }
  return res;
}

function tooLarge(url: string, max: number, what: string): OukError {
  return new OukError('MIRROR_TOO_LARGE', `${url} is larger than ${max} bytes (${what}): the file on the mirror is not the one its index.json describes — refused`);
}

/** The response to a GET of `url` within the time limit, refused when it announces more than the size limit; null on 404. */
async function openBounded(fetchFn: FetchFn, url: string, limits: FetchLimits): Promise<Response | null> {
  const res = await open(fetchFn, url, AbortSignal.timeout(limits.timeoutMs), limits.timeoutMs);
  if (!res) return null;
  const announced = Number(res.headers.get('content-length'));
  if (Number.isFinite(announced) && announced > limits.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(url, limits.maxBytes, `the server announces ${announced}`);
  }
  return res;
}

/** GETs `url` into `file`; null on 404. */
export async function downloadToFile(fetchFn: FetchFn, url: string, file: string, limits: FetchLimits): Promise<Downloaded | null> {
  const res = await openBounded(fetchFn, url, limits);
  if (!res) return null;
  if (!res.body) return { sha256: createHash('sha256').digest('hex'), size: 0 };
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > limits.maxBytes) return cb(tooLarge(url, limits.maxBytes, `${size} bytes read so far`));
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), meter, createWriteStream(file));
  } catch (e) {
    if (isOukError(e)) throw e;
    throw unreachable(url, e, limits.timeoutMs);
  }
  return { sha256: hash.digest('hex'), size };
}

/** GETs a small file whole (index.json, a .sig); null on 404. */
export async function downloadSmall(fetchFn: FetchFn, url: string, limits: FetchLimits): Promise<Buffer | null> {
  const res = await openBounded(fetchFn, url, limits);
  if (!res) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    if (res.body) {
      for await (const c of Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>)) {
        const b = c as Buffer;
        size += b.length;
        if (size > limits.maxBytes) throw tooLarge(url, limits.maxBytes, `${size} bytes read so far`);
        chunks.push(b);
      }
    }
  } catch (e) {
    if (isOukError(e)) throw e;
    throw unreachable(url, e, limits.timeoutMs);
  }
  return Buffer.concat(chunks);
}
