/**
 * Writes a bundle tarball: manifest.json first, then every member in the order the
 * manifest lists them, as a POSIX tar compressed with gzip. The output is
 * deterministic: fixed mtime (the manifest's `created`), owner 0:0 with empty
 * names, mode 0644, no directory entries, and gzip with no name or timestamp; the
 * same manifest and member bytes always give the same tarball. `tar -xzf` unpacks it.
 */
import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlibConstants } from 'node:zlib';
import { pack as tarPack, type Pack } from 'tar-stream';
import { MANIFEST_MEMBER } from './tables.ts';
import { type Manifest, serializeManifest } from './manifest.ts';

export interface MemberSource {
  path: string;
  size: number;
  /** Opens the member's bytes; called once, when the member is written. */
  open(): Readable;
}

export interface WriteResult {
  /** sha256 hex of the compressed tarball. */
  sha256: string;
  size: number;
}

/**
 * `gzipLevel`: the outer gzip's level. A kit whose DB members are already
 * zstd-compressed gains nothing from working harder on them: the builder
 * passes 1; 6 otherwise.
 */
export async function writeBundle(out: Writable, manifest: Manifest, sources: MemberSource[], gzipLevel = 6): Promise<WriteResult> {
  const byPath = new Map(sources.map((s) => [s.path, s]));
  for (const m of manifest.members) {
    const s = byPath.get(m.path);
    if (!s) throw new Error(`writeBundle: no source for manifest member ${m.path}`);
    if (s.size !== m.size) throw new Error(`writeBundle: ${m.path} is ${s.size} bytes, the manifest says ${m.size}`);
  }
  const mtime = new Date(manifest.created);
  const header = (name: string, size: number): Parameters<Pack["entry"]>[0] => ({
    name,
    size,
    mtime,
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    type: 'file',
  });

  const pack = tarPack();
  const gzip = createGzip({ level: gzipLevel, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
  const hash = createHash('sha256');
  let size = 0;
  gzip.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  const done = pipeline(pack, gzip, out);

  const fill = async (): Promise<void> => {
    const manifestBytes = Buffer.from(serializeManifest(manifest), 'utf8');
    await entry(pack, header(MANIFEST_MEMBER, manifestBytes.length), manifestBytes);
    for (const m of manifest.members) {
      const source = byPath.get(m.path)!;
      await entry(pack, header(m.path, m.size), source.open());
    }
    pack.finalize();
  };
  await Promise.all([fill().catch((e: unknown) => { pack.destroy(e as Error); throw e; }), done]);
  return { sha256: hash.digest('hex'), size };
}

function entry(pack: Pack, h: Parameters<Pack["entry"]>[0], body: Buffer | Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (Buffer.isBuffer(body)) {
      pack.entry(h, body, (err?: Error | null) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(h, (err?: Error | null) => (err ? reject(err) : resolve()));
    pipeline(body, sink).catch(reject);
  });
}
