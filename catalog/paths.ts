/**
 * A tar entry's name as a path in the image, and what a whiteout means
 * (image-spec layer.md). Names are hostile: an absolute name or one with a
 * `..` component is never taken as a path (docker would re-root it; the
 * cataloguer reports it as skipped), nor one with a NUL.
 */
export type EntryPath = { ok: true; path: string } | { ok: false; why: string };

/** `a/b/c` (no leading slash; '' is the root) or why the name is refused. */
export function entryPath(name: string): EntryPath {
  if (name.includes('\0')) return { ok: false, why: 'a NUL in the name' };
  if (name.startsWith('/')) return { ok: false, why: 'an absolute path' };
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { ok: false, why: 'a ".." component (path traversal)' };
  return { ok: true, path: parts.join('/') };
}

const OPAQUE = '.wh..wh..opq';
const WH = '.wh.';

export type Whiteout = { kind: 'opaque'; dir: string } | { kind: 'remove'; path: string } | { kind: 'meta' } | null;

/** What a path means as a whiteout, or null for an ordinary entry. */
export function whiteoutOf(path: string): Whiteout {
  const slash = path.lastIndexOf('/');
  const dir = slash === -1 ? '' : path.slice(0, slash);
  const base = path.slice(slash + 1);
  if (!base.startsWith(WH)) return null;
  if (base === OPAQUE) return { kind: 'opaque', dir };
  if (base.startsWith(`${WH}${WH}`)) return { kind: 'meta' }; // aufs bookkeeping (.wh..wh.plnk, …): nothing to catalogue
  const target = base.slice(WH.length);
  return target === '' ? { kind: 'meta' } : { kind: 'remove', path: dir ? `${dir}/${target}` : target };
}

/**
 * A symbolic link's target resolved as the image's root would resolve it:
 * relative to the link's directory, absolute from the image root, and `..`
 * at the root staying at the root (as in a chroot) — never above it.
 */
export function resolveLink(linkPath: string, target: string): string {
  const base = target.startsWith('/') ? [] : linkPath.split('/').slice(0, -1);
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') base.pop();
    else base.push(p);
  }
  return base.join('/');
}
