/** Reads a small file (a key, a signature, a Sigstore bundle) whole, refusing anything too large to be one. */
import { open } from 'node:fs/promises';

export class SmallFileError extends Error {
  constructor(
    readonly code: 'ENOTFILE' | 'EFBIG',
    message: string,
  ) {
    super(message);
  }
}

export async function readSmallFile(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SmallFileError('ENOTFILE', 'not a regular file');
    if (st.size > max) throw new SmallFileError('EFBIG', `${st.size} bytes, over the ${max}-byte limit for this kind of file`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** A short reason for a failed read: the errno code, or the message. */
export function readFailure(e: unknown): string {
  if (e instanceof SmallFileError) return e.message;
  const code = (e as NodeJS.ErrnoException).code;
  return code ?? (e as Error).message;
}
