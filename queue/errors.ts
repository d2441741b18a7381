/** How the queue wiring classifies a job's error: an OukError keeps its code; anything else is infrastructure trouble, retried. */
import { isOukError, OukError } from '../lib/errors.ts';

export function asOukError(e: unknown): OukError {
  if (isOukError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new OukError('INTERNAL', msg, { cause: e, retryable: true });
}
