/**
 * `--image PATH`: OCI image archives carried as `images/<basename>`. Each is
 * streamed twice (once to hash it for the manifest and SBOM, once into the
 * tarball), never read whole.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { unsafeNameReason } from '../bundle/reader.ts';
import { IMAGES_DIR } from '../bundle/tables.ts';
import { OukError } from '../lib/errors.ts';
import { digestFile, type FileDigest } from './member-file.ts';

export interface ImageInput extends FileDigest {
  /** Path inside the bundle: images/<basename>. */
  path: string;
  file: string;
}

export async function prepareImages(files: readonly string[]): Promise<ImageInput[]> {
  const seen = new Map<string, string>();
  const out: ImageInput[] = [];
  for (const f of files) {
    const file = path.resolve(f);
    const s = await stat(file).catch(() => null);
    if (!s?.isFile()) throw new OukError('INPUT_NOT_FOUND', `--image ${f}: no such file (or not a regular file): pass the path of an OCI image archive`);
    const base = path.basename(file);
    const member = `${IMAGES_DIR}${base}`;
    const unsafe = unsafeNameReason(member);
    if (unsafe) throw new OukError('USAGE', `--image ${f}: its name makes ${unsafe} in the bundle: rename the file`);
    const other = seen.get(base);
    if (other) throw new OukError('USAGE', `--image ${f} and --image ${other} have the same name ${base}: images are stored as images/<name>, rename one of them`);
    seen.set(base, f);
    out.push({ path: member, file, ...(await digestFile(file)) });
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}
