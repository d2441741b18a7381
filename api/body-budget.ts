/**
 * What request bodies may cost the API before anything is read.
 *
 * A body is read into memory whole and parsed (JSON.parse: a 32 MiB SBOM
 * becomes hundreds of MB of objects, and 32 MiB of `[[[[` keeps the event
 * loop busy for seconds), so two things are decided in the route's onRequest
 * hook, before fastify reads a byte of it:
 *
 *   - how large it may be: `limitBody(req, max, tooLarge)` refuses a declared
 *     Content-Length over `max` at once, and a chunked body as soon as it
 *     passes `max` (the preParsing hook of `bodyLimitHooks`);
 *   - whether the API can hold it now: one BodyBudget per process
 *     (STELLA_API_BODY_BUDGET_BYTES) counts the bytes of the bodies held at
 *     once, from the request's start until its answer is sent (or its
 *     connection closes); a request that would take the total over the budget
 *     is answered 503 SCAN_BUSY with Retry-After, unread. A body of unknown
 *     length (chunked) counts as `max`. /metrics: ouk_api_request_body_bytes,
 *     ouk_api_body_budget_refused_total.
 *
 *   const budget = new BodyBudget(config.apiBodyBudgetBytes);
 *   app.addHook('onRequest', async (req, reply) => { ...; holdBody(budget, req, reply, max); });
 */
import type { FastifyReply, FastifyRequest, preParsingHookHandler } from 'fastify';
import { Transform } from 'node:stream';
import { OukError } from '../lib/errors.ts';
import { apiBodyBytes, apiBodyRefused } from '../lib/metrics.ts';

export class BodyBudget {
  readonly limit: number;
  #held = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes of request bodies held right now. */
  get held(): number {
    return this.#held;
  }

  /** Reserves `bytes`; false (and nothing reserved) when the total would pass the limit. */
  take(bytes: number): boolean {
    if (bytes > 0 && this.#held + bytes > this.limit) {
      apiBodyRefused.inc();
      return false;
    }
    this.#held += bytes;
    apiBodyBytes.set(this.#held);
    return true;
  }

  give(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
    apiBodyBytes.set(this.#held);
  }
}

/** The declared Content-Length of a request, or null (none, chunked, or unreadable). */
export function declaredLength(req: FastifyRequest): number | null {
  const h = req.headers['content-length'];
  if (h === undefined || req.headers['transfer-encoding'] !== undefined) return null;
  const n = Number(h);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Whether the request carries a body (a declared length above 0, or a chunked one). */
export function hasBody(req: FastifyRequest): boolean {
  const n = declaredLength(req);
  return n === null ? req.headers['transfer-encoding'] !== undefined : n > 0;
}

const limits = new WeakMap<FastifyRequest, { max: number; tooLarge: () => OukError }>();

/**
 * The most this request's body may hold: a declared Content-Length over it
 * throws `tooLarge()` now (nothing read); a chunked body is cut off by the
 * preParsing hook once it passes `max`.
 */
export function limitBody(req: FastifyRequest, max: number, tooLarge: () => OukError): void {
  const n = declaredLength(req);
  if (n !== null && n > max) throw tooLarge();
  limits.set(req, { max, tooLarge });
}

/** The preParsing hook that holds a chunked body to its limitBody limit. */
export const enforceBodyLimit: preParsingHookHandler = async (req, _reply, payload) => {
  const limit = limits.get(req);
  if (!limit || declaredLength(req) !== null) return payload;
  let seen = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit.max) cb(limit.tooLarge());
      else cb(null, chunk);
    },
  });
  payload.on('error', (e) => counted.destroy(e));
  return payload.pipe(counted);
};

/**
 * Reserves the request's body in `budget` until its answer is sent (or its
 * connection closes); throws SCAN_BUSY (503, Retry-After) when the budget
 * cannot hold it. A request without a body reserves nothing.
 */
export function holdBody(budget: BodyBudget, req: FastifyRequest, reply: FastifyReply, max: number): void {
  if (!hasBody(req)) return;
  const bytes = Math.min(declaredLength(req) ?? max, max);
  if (!budget.take(bytes)) {
    reply.header('Retry-After', '2');
    throw new OukError(
      'SCAN_BUSY',
      `the API holds ${budget.held} bytes of request bodies already; this one (${bytes} bytes) would pass STELLA_API_BODY_BUDGET_BYTES=${budget.limit}: send it again in a moment`,
    );
  }
  let held = true;
  reply.raw.once('close', () => {
    if (!held) return;
    held = false;
    budget.give(bytes);
  });
}
