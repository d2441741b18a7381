/**
 * How the queue wiring classifies a job's error: an OukError keeps its code; a
 * full disk (PostgreSQL's disk_full, ENOSPC) is INSUFFICIENT_SPACE and not
 * retried (the space does not come back by itself: the operator frees it and
 * retries); anything else is infrastructure trouble, retried.
 */
import { insufficientSpace, isOukError, OukError } from '../lib/errors.ts';

export function asOukError(e: unknown): OukError {
  if (isOukError(e)) return e;
  const space = insufficientSpace(e);
  if (space) return space;
  const msg = e instanceof Error ? e.message : String(e);
  return new OukError('INTERNAL', msg, { cause: e, retryable: true });
}
