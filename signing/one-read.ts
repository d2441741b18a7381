/**
 * One read of a tarball for two consumers: every chunk goes to `onChunk` (a
 * signature verifier, a hash) and, through a back-pressured tee, to the bundle
 * reader (bundle/reader.ts). When the reader stops early (an error, or done),
 * the rest of the file still goes to `onChunk`, so the signature is decided on
 * the same single pass. The reader's outcome is returned, not thrown: the
 * caller decides which finding wins.
 */
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { readBundle, type ReadOptions, type ReadResult } from '../bundle/reader.ts';
import { OukError } from '../lib/errors.ts';

export type ReadOutcome = { ok: true; result: ReadResult } | { ok: false; error: unknown };

/** `readError` turns a failure to read `input` into the error thrown (default: INPUT_NOT_FOUND, a local file). */
export async function readTarballOnce(
  input: Readable,
  onChunk: (chunk: Buffer) => void,
  readOptions: ReadOptions = {},
  readError: (e: unknown) => Error = (e) => new OukError('INPUT_NOT_FOUND', `cannot read the tarball (${(e as Error).message}): check the path and its permissions`, { cause: e }),
): Promise<ReadOutcome> {
  const tee = new PassThrough({ highWaterMark: 1024 * 1024 });
  let settled = false;
  const reading: Promise<ReadOutcome> = readBundle(tee, readOptions).then(
    (result): ReadOutcome => ({ ok: true, result }),
    (error: unknown): ReadOutcome => ({ ok: false, error }),
  );
  void reading.then(() => {
    settled = true;
  });

  try {
    for await (const chunk of input) {
      const b = chunk as Buffer;
      onChunk(b);
      if (settled || tee.destroyed) continue;
      if (!tee.write(b)) {
        // Wait for the reader to take more, or to stop (error or done).
        const ac = new AbortController();
        await Promise.race([
          once(tee, 'drain', { signal: ac.signal }).catch(() => undefined),
          once(tee, 'close', { signal: ac.signal }).catch(() => undefined),
          reading,
        ]);
        ac.abort();
      }
    }
  } catch (e) {
    tee.destroy();
    throw readError(e);
  }
  if (!tee.destroyed) tee.end();
  return reading;
}
