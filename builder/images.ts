/**
 * `--image NAME[:TAG]=PATH`: an OCI image layout (oci-layout, index.json,
 * blobs/sha256/…, as `skopeo copy --all … oci:DIR` or umoci write it) carried
 * as images/NAME/ (bundle/oci.ts). PATH is the layout's directory, or an OCI
 * archive: the layout as one tar file (`skopeo copy --all …
 * oci-archive:FILE.tar`, gzip-compressed or not), unpacked first into the
 * build's work directory — plain files and directories only, every name a
 * relative path inside it (bundle/reader.ts unsafeNameReason), bounded in
 * entries, in what they declare and in what the gunzip inflates to.
 *
 * The image is its multi-platform index: either the one index index.json
 * points at, or — when index.json lists platform manifests directly (umoci's
 * layout, one tag per platform) — an index made here from those entries,
 * canonical JSON with the platforms sorted. Only the blobs the index reaches
 * are carried (each platform's manifest, config and layers), each checked
 * against its digest and size while it is hashed; layers are streamed (twice:
 * to hash them, then into the tarball), never read whole. The tag is TAG,
 * else the index entry's ref.name annotation, else `latest`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { normaliseName, unsafeNameReason } from '../bundle/reader.ts';
import { canonicalJson } from '../bundle/manifest.ts';
import {
  blobMember,
  digestHex,
  IMAGE_NAME,
  IMAGE_TAG,
  imageDir,
  INDEX_TYPES,
  type KitImage,
  MANIFEST_TYPES,
  MAX_OCI_JSON,
  OCI_INDEX,
  type OciDescriptor,
  parseImageManifest,
  parseIndex,
  REF_NAME,
} from '../bundle/oci.ts';
import type { MemberSource } from '../bundle/writer.ts';
import { isOukError, OukError } from '../lib/errors.ts';
import { ByteBudget } from './feeds/bounded.ts';
import { digestFile, fileSource, type FileDigest } from './member-file.ts';

export interface ImageMember extends FileDigest {
  /** Path inside the bundle: images/<name>/… */
  path: string;
  source: MemberSource;
}

export interface ImageInput {
  image: KitImage;
  /** oci-layout, index.json, then the blobs sorted by digest. */
  members: ImageMember[];
}

function bufferMember(p: string, buf: Buffer): ImageMember {
  return {
    path: p,
    size: buf.length,
    sha256: createHash('sha256').update(buf).digest('hex'),
    sha1: createHash('sha1').update(buf).digest('hex'),
    source: { path: p, size: buf.length, open: () => Readable.from([buf]) },
  };
}

/** `NAME[:TAG]=PATH` (`dir`: the layout directory or OCI archive PATH names). */
export function parseImageSpec(spec: string): { name: string; tag?: string; dir: string } {
  const m = /^([^=:]+)(?::([^=]+))?=(.+)$/.exec(spec);
  if (!m) throw new OukError('USAGE', `--image ${spec}: give NAME=PATH (or NAME:TAG=PATH), PATH an OCI image layout directory or OCI archive, e.g. --image scanner=./scanner-oci or --image scanner=./scanner.tar`);
  const [, name, tag, dir] = m;
  if (!IMAGE_NAME.test(name!)) throw new OukError('USAGE', `--image ${spec}: ${name} is not a repository name (lowercase letters, digits, and . _ - between them)`);
  if (tag !== undefined && !IMAGE_TAG.test(tag)) throw new OukError('USAGE', `--image ${spec}: ${tag} is not an OCI tag`);
  return { name: name!, ...(tag !== undefined ? { tag } : {}), dir: dir! };
}

class LayoutReader {
  constructor(readonly spec: string, readonly dir: string) {}

  fail(why: string): never {
    throw new OukError('INPUT_NOT_FOUND', `--image ${this.spec}: ${why}`);
  }

  blobFile(d: OciDescriptor): string {
    return path.join(this.dir, 'blobs', 'sha256', digestHex(d.digest));
  }

  async json(d: OciDescriptor): Promise<Buffer> {
    if (d.size > MAX_OCI_JSON) this.fail(`${d.digest} is ${d.size} bytes, too large for an index or manifest`);
    const buf = await readFile(this.blobFile(d)).catch(() => this.fail(`blob ${d.digest} is missing from ${this.dir}/blobs/sha256`));
    const got = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    if (got !== d.digest || buf.length !== d.size) this.fail(`blob ${d.digest} has digest ${got} and ${buf.length} bytes (expected ${d.size}): the layout is damaged`);
    return buf;
  }

  async blob(d: OciDescriptor, member: string): Promise<ImageMember> {
    const file = this.blobFile(d);
    const s = await stat(file).catch(() => null);
    if (!s?.isFile()) this.fail(`blob ${d.digest} is missing from ${this.dir}/blobs/sha256`);
    const dg = await digestFile(file);
    if (`sha256:${dg.sha256}` !== d.digest || dg.size !== d.size) this.fail(`blob ${d.digest} has sha256:${dg.sha256} and ${dg.size} bytes (expected ${d.size}): the layout is damaged`);
    return { path: member, ...dg, source: fileSource(member, file, dg.size) };
  }
}

/** Entries an OCI archive may hold: more is not an image layout. */
const MAX_ARCHIVE_ENTRIES = 100_000;
/** What an archive may unpack to, as a multiple of its own size (with 1 GiB of room): an image's layers are compressed already, so more is a bomb. */
const MAX_UNPACK_RATIO = 64;
const UNPACK_ROOM = 1024 ** 3;

/**
 * Unpacks the OCI archive `file` into `into` (created): regular files and
 * directories only, each name a plain relative path. Anything else — a link,
 * a device, an absolute or `..` name — refuses the archive.
 */
async function unpackArchive(spec: string, file: string, into: string): Promise<void> {
  const fail = (why: string): never => {
    throw new OukError('INPUT_NOT_FOUND', `--image ${spec}: ${file} is not a usable OCI archive: ${why}`);
  };
  await mkdir(into, { recursive: true });
  const head = Buffer.alloc(2);
  const fh = await open(file, 'r');
  try {
    await fh.read(head, 0, 2, 0);
  } finally {
    await fh.close();
  }
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  const maxBytes = (await stat(file)).size * MAX_UNPACK_RATIO + UNPACK_ROOM;
  const extract = tar.extract();
  let entries = 0;
  let bytes = 0;
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = normaliseName(h.name);
      if (++entries > MAX_ARCHIVE_ENTRIES) fail(`more than ${MAX_ARCHIVE_ENTRIES} entries`);
      if (name === '' || name === '.') {
        entry.resume();
        continue;
      }
      const unsafe = unsafeNameReason(name);
      if (unsafe) fail(`entry ${JSON.stringify(h.name)} has ${unsafe}`);
      const target = path.join(into, name);
      if (h.type === 'directory') {
        await mkdir(target, { recursive: true });
        entry.resume();
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        bytes += h.size ?? 0;
        if (bytes > maxBytes) fail(`it unpacks to more than ${maxBytes} bytes, ${MAX_UNPACK_RATIO} times its own size: not an image layout`);
        await mkdir(path.dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target, { flags: 'wx' })).catch((e: NodeJS.ErrnoException) =>
          fail(e.code === 'EEXIST' ? `entry ${JSON.stringify(h.name)} appears twice` : `entry ${JSON.stringify(h.name)}: ${e.message}`),
        );
      } else {
        fail(`entry ${JSON.stringify(h.name)} is a ${h.type}: an image layout holds only files and directories`);
      }
    }
  })();
  const source = createReadStream(file);
  // the gunzip itself is bounded too: what the entries may hold plus their headers and padding
  // (so gigabytes of zero blocks or appended data are not inflated to the last byte)
  const inflated = maxBytes + (MAX_ARCHIVE_ENTRIES * 3 + 2) * 512 + (1 << 20);
  const budget = new ByteBudget(inflated, (l) => new OukError('INPUT_NOT_FOUND', `--image ${spec}: ${file} is not a usable OCI archive: it inflates to more than ${l} bytes of tar, more than its entries can hold`));
  const feed = gzipped ? pipeline(source, createGunzip(), budget, extract) : pipeline(source, extract);
  try {
    await Promise.all([feed, done]);
  } catch (e) {
    extract.destroy();
    if (isOukError(e)) throw e;
    fail((e as Error).message);
  }
}

async function prepareImage(spec: string, workDir: string): Promise<ImageInput> {
  const { name, tag: tagArg, dir: given } = parseImageSpec(spec);
  let rawDir = given;
  const st = await stat(path.resolve(given)).catch(() => null);
  if (st?.isFile()) {
    rawDir = path.join(workDir, name);
    await unpackArchive(spec, path.resolve(given), rawDir);
  }
  const dir = path.resolve(rawDir);
  const r: LayoutReader = new LayoutReader(spec, dir);
  const layout = await readFile(path.join(dir, 'oci-layout'), 'utf8').catch(() =>
    r.fail(`${given} is not an OCI image layout (no oci-layout file): write one with \`skopeo copy --all docker://… ${rawDir === given ? 'oci' : 'oci-archive'}:${given}\``),
  );
  if (!/"imageLayoutVersion"\s*:\s*"1\./.test(layout)) r.fail(`${dir}/oci-layout is not imageLayoutVersion 1.x`);
  let top;
  try {
    top = parseIndex(await readFile(path.join(dir, 'index.json')).catch(() => r.fail(`${dir} has no index.json`)), `${dir}/index.json`);
  } catch (e) {
    if (isOukError(e) && e.code === 'MANIFEST_INVALID') r.fail(e.message);
    throw e;
  }

  const extra: ImageMember[] = [];
  let indexDesc: OciDescriptor;
  const nested = top.manifests.filter((d) => INDEX_TYPES.includes(d.mediaType));
  if (nested.length === 1) {
    indexDesc = nested[0]!;
  } else if (nested.length > 1) {
    return r.fail(`index.json points at ${nested.length} image indexes: one image per --image (name them apart)`);
  } else {
    // umoci's layout: index.json lists one manifest per platform; make the multi-platform index.
    const entries = top.manifests.filter((d) => MANIFEST_TYPES.includes(d.mediaType));
    if (!entries.length) r.fail('index.json lists no image index or manifest');
    if (entries.some((d) => !d.platform)) r.fail('index.json lists manifests without a platform: give each its platform, or pass a layout with a multi-platform index');
    const byKey = new Map(entries.map((d) => [d.digest, d]));
    const manifests = [...byKey.values()]
      .map((d) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size, platform: d.platform }))
      .sort((a, b) => `${a.platform!.os}/${a.platform!.architecture}/${a.platform!.variant ?? ''}`.localeCompare(`${b.platform!.os}/${b.platform!.architecture}/${b.platform!.variant ?? ''}`));
    const buf = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }), 'utf8');
    indexDesc = { mediaType: OCI_INDEX, digest: `sha256:${createHash('sha256').update(buf).digest('hex')}`, size: buf.length, annotations: entries[0]!.annotations };
    extra.push(bufferMember(blobMember(name, indexDesc.digest), buf));
  }

  const refTag = indexDesc.annotations?.[REF_NAME];
  const tag = tagArg ?? (refTag && IMAGE_TAG.test(refTag) ? refTag : 'latest');
  const blobs = new Map<string, ImageMember>(extra.map((m) => [m.path, m]));
  const add = async (d: OciDescriptor): Promise<void> => {
    const p = blobMember(name, d.digest);
    if (!blobs.has(p)) blobs.set(p, await r.blob(d, p));
  };
  let index;
  if (extra.length) index = parseIndex(await collect(extra[0]!.source.open()), `${name} index ${indexDesc.digest}`);
  else {
    await add(indexDesc);
    index = parseIndex(await r.json(indexDesc), `${name} index ${indexDesc.digest}`);
  }
  if (!index.manifests.length) r.fail(`the index ${indexDesc.digest} lists no platform`);
  const platforms: KitImage['platforms'] = [];
  for (const d of index.manifests) {
    if (!MANIFEST_TYPES.includes(d.mediaType)) r.fail(`the index ${indexDesc.digest} lists ${d.mediaType} ${d.digest}: nested indexes are not carried`);
    if (!d.platform) r.fail(`the index ${indexDesc.digest} lists ${d.digest} without a platform`);
    platforms.push({ ...d.platform, digest: d.digest });
    await add(d);
    const man = parseImageManifest(await r.json(d), `${name} manifest ${d.digest}`);
    await add(man.config);
    for (const l of man.layers) await add(l);
  }

  const ociLayout = bufferMember(`${imageDir(name)}oci-layout`, Buffer.from(canonicalJson({ imageLayoutVersion: '1.0.0' }), 'utf8'));
  const indexJson = bufferMember(
    `${imageDir(name)}index.json`,
    Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: indexDesc.mediaType, digest: indexDesc.digest, size: indexDesc.size, annotations: { [REF_NAME]: tag } }] }), 'utf8'),
  );
  const sortedBlobs = [...blobs.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    image: { name, tag, indexDigest: indexDesc.digest, mediaType: indexDesc.mediaType, platforms },
    members: [ociLayout, indexJson, ...sortedBlobs],
  };
}

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every `--image`, sorted by name; two images of one name are refused. OCI archives are unpacked under `workDir`, which must outlive the bundle's writing. */
export async function prepareImages(specs: readonly string[], workDir: string): Promise<ImageInput[]> {
  const out: ImageInput[] = [];
  const seen = new Map<string, string>();
  for (const spec of specs) {
    const { name } = parseImageSpec(spec);
    const other = seen.get(name);
    if (other) throw new OukError('USAGE', `--image ${spec} and --image ${other} have the same name ${name}: name one of them apart`);
    seen.set(name, spec);
    out.push(await prepareImage(spec, workDir));
  }
  return out.sort((a, b) => (a.image.name < b.image.name ? -1 : a.image.name > b.image.name ? 1 : 0));
}
