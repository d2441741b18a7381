/**
 * A full disk behind an API request — PostgreSQL's disk_full (SQLSTATE 53100:
 * a table, index or temporary file could not grow) or ENOSPC, anywhere in the
 * error's causes (lib/errors.ts insufficientSpace, as the pipeline maps it) —
 * is answered 507 INSUFFICIENT_SPACE in the API's envelope, never a 500.
 *
 * The client gets a fixed message (what happened, that the operator frees
 * space, to try again later); PostgreSQL's own text (file paths in the data
 * directory) goes only to the API log, with the fix for the operator.
 */
import { insufficientSpace, type OukError } from '../lib/errors.ts';

export const SPACE_STATUS = 507;

export interface SpaceAnswer {
  status: number;
  code: 'INSUFFICIENT_SPACE';
  message: string;
  /** the operator's error, for the log */
  cause: OukError;
}

/** The answer for a full disk, or null when `err` is something else. */
export function spaceAnswer(err: unknown, what: string): SpaceAnswer | null {
  const space = insufficientSpace(err);
  if (!space) return null;
  return {
    status: SPACE_STATUS,
    code: 'INSUFFICIENT_SPACE',
    message: `the server is out of disk space (its database could not grow), so ${what} did not complete: the operator must free space (the API log says where); try again later`,
    cause: space,
  };
}
