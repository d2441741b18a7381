/**
 * The cataloguer: an image (from any ImageSource) → the packages of its
 * final file system. The platform's manifest is resolved, each layer
 * streamed in order (layer-reader.ts), every entry's name checked
 * (paths.ts: absolute and `..` names are skipped and reported), whiteouts
 * applied (filesystem.ts), and each regular file the first cataloguer
 * wants read — at most its bound, a larger one is skipped and reported.
 * Links are never followed out of the image: a hard link to a file read
 * before it (in its layer or below) is that file again, a symbolic link is
 * followed only for os-release, inside the image;
 * nothing is written to disk, nothing from a layer is executed.
 *
 *   await catalogImage(ociLayoutSource(dir), { platform: 'linux/amd64' })
 *     → { manifestDigest, layers, distro, packages, skipped }
 */
import type { Header } from 'tar-stream';
import { OukError } from '../lib/errors.ts';
import { cataloguerFor } from './cataloguers/index.ts';
import { FinalFileSystem } from './filesystem.ts';
import { readLayer } from './layer-reader.ts';
import { type CatalogLimits, DEFAULT_LIMITS } from './limits.ts';
import type { CatalogResult, FoundPackage, Skipped } from './model.ts';
import { findDistro, OS_RELEASE_PATHS } from './os-release.ts';
import { entryPath, whiteoutOf } from './paths.ts';
import { resolveImage } from './resolve.ts';
import type { ImageSource } from './source.ts';

export interface CatalogOptions {
  /** os/arch[/variant]; default linux and this host's architecture */
  platform?: string;
  limits?: Partial<CatalogLimits>;
}

/** Most skipped items listed one by one; the rest are counted. */
const MAX_SKIPPED_LISTED = 200;

export function hostPlatform(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return `linux/${arch}`;
}

async function readBody(body: AsyncIterable<unknown>, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    if (n + b.length > size) throw new OukError('IMAGE_INVALID', 'a tar entry is longer than its header says');
    b.copy(buf, n);
    n += b.length;
  }
  return buf.subarray(0, n);
}

export async function catalogImage(source: ImageSource, opts: CatalogOptions = {}): Promise<CatalogResult> {
  const limits: CatalogLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const image = source.name;
  const resolved = await resolveImage(source, opts.platform ?? hostPlatform(), limits.maxJsonBytes);
  const fsys = new FinalFileSystem();
  const skipped: Skipped[] = [];
  let skippedMore = 0;
  const skip = (where: string, why: string): void => {
    if (skipped.length < MAX_SKIPPED_LISTED) skipped.push({ where, why });
    else skippedMore++;
  };
  let entries = 0;

  for (const layer of resolved.layers) {
    const visit = async (h: Header, body: AsyncIterable<unknown>): Promise<void> => {
      if (++entries > limits.maxEntries) {
        throw new OukError('IMAGE_TOO_MANY_FILES', `${image} holds more than ${limits.maxEntries} files (layer ${layer.digest}): reading stopped there — do not run this image`);
      }
      const name = entryPath(h.name);
      if (!name.ok) return skip(`${layer.digest}: ${JSON.stringify(h.name.slice(0, 300))}`, `${name.why}: not catalogued`);
      const p = name.path;
      const wh = whiteoutOf(p);
      if (wh) {
        if (wh.kind === 'opaque') fsys.opaque(wh.dir);
        else if (wh.kind === 'remove') fsys.whiteout(wh.path);
        return;
      }
      fsys.entry(p, h.type === 'directory');
      if (h.type === 'symlink' && OS_RELEASE_PATHS.includes(p)) {
        fsys.track(p, { layer: layer.digest, kind: 'symlink', target: h.linkname ?? '', packages: [] });
        return;
      }
      if (h.type === 'link') {
        const target = entryPath(h.linkname ?? '');
        if (!target.ok) return skip(`/${p}`, `a hard link to ${JSON.stringify((h.linkname ?? '').slice(0, 300))} (${target.why}): not followed`);
        const linked = fsys.lookup(target.path);
        if (linked) fsys.track(p, { ...linked, layer: layer.digest }); // the same file under a second name: what was read from it
        else if (cataloguerFor(p, h.mode ?? 0, 1 << 20) || OS_RELEASE_PATHS.includes(p)) skip(`/${p}`, `a hard link to /${target.path}, a file not read: not followed`);
        return;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') return;
      const size = h.size ?? 0;
      if (OS_RELEASE_PATHS.includes(p)) {
        if (size > limits.maxMetaBytes) return skip(`/${p}`, `${size} bytes: not read`);
        fsys.track(p, { layer: layer.digest, kind: 'file', content: await readBody(body, size), packages: [] });
        return;
      }
      const cat = cataloguerFor(p, h.mode ?? 0, size);
      if (!cat) return;
      if (size > cat.maxBytes(limits)) {
        skip(`/${p}`, `${size} bytes, over the ${cat.maxBytes(limits)}-byte bound of the ${cat.name} cataloguer: not read`);
        return;
      }
      const content = await readBody(body, size);
      const packages = await cat.read(content, { path: p, limits, skip: (why, where) => skip(where ?? `/${p}`, why) });
      if (packages.length) fsys.track(p, { layer: layer.digest, kind: 'file', packages, cataloguer: cat.name });
    };
    await readLayer(await source.openBlob(layer.digest), layer, image, limits.maxLayerBytes, visit);
    fsys.endLayer();
  }

  const distro = findDistro(fsys, skip);
  const packages: FoundPackage[] = [];
  let over = 0;
  for (const [p, f] of [...fsys.files.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    for (const pkg of f.packages) {
      if (packages.length >= limits.maxPackages) {
        over++;
        continue;
      }
      const { path: inner, ...rest } = pkg;
      packages.push({ ...rest, cataloguer: f.cataloguer ?? 'unknown', path: inner ?? `/${p}`, layer: f.layer });
    }
  }
  if (over) skip(image, `${over} more packages past the bound of ${limits.maxPackages}: not listed`);
  if (skippedMore) skipped.push({ where: image, why: `${skippedMore} more skipped items not listed` });
  return { manifestDigest: resolved.manifestDigest, platform: resolved.platform, layers: resolved.layers.map((l) => l.digest), distro, packages, skipped };
}
