/**
 * The distribution from the final file system's os-release (os-release(5)):
 * `/etc/os-release`, else `/usr/lib/os-release`; a symbolic link between
 * them (Debian's `/etc/os-release -> ../usr/lib/os-release`) is followed
 * inside the image only, at most 8 links, `..` never above the image root.
 */
import type { FinalFileSystem } from './filesystem.ts';
import type { Distro } from './model.ts';
import { resolveLink } from './paths.ts';

export const OS_RELEASE_PATHS = ['etc/os-release', 'usr/lib/os-release'];

export function parseOsRelease(text: string): Distro | null {
  const v = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) v.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, '$2').slice(0, 200));
  }
  const id = v.get('ID')?.toLowerCase();
  if (!id || !/^[a-z0-9._-]+$/.test(id)) return null;
  const versionId = v.get('VERSION_ID') ?? '';
  return { id, versionId: /^[A-Za-z0-9._~-]*$/.test(versionId) ? versionId : '', ...(v.get('PRETTY_NAME') ? { prettyName: v.get('PRETTY_NAME')! } : {}) };
}

export function findDistro(fsys: FinalFileSystem, skip: (where: string, why: string) => void): Distro | null {
  for (const start of OS_RELEASE_PATHS) {
    let p = start;
    for (let hops = 0; hops <= 8; hops++) {
      const f = fsys.files.get(p);
      if (!f) break;
      if (f.kind === 'file') {
        const d = f.content ? parseOsRelease(f.content.toString('utf8')) : null;
        if (d) return d;
        skip(`/${p}`, 'os-release names no ID');
        break;
      }
      if (hops === 8) {
        skip(`/${start}`, 'more than 8 symbolic links: not followed');
        break;
      }
      p = resolveLink(p, f.target ?? '');
    }
  }
  return null;
}
