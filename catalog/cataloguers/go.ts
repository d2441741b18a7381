/**
 * Go binaries: the build information Go 1.18 and later embed (the
 * `\xff Go buildinf:` header with inline strings, as `go version -m`
 * reads it): the toolchain as `pkg:golang/stdlib@vX.Y.Z`, the main module
 * (`mod`) and every dependency (`dep`, with its `=>` replacement when there
 * is one). Executables are looked at when they are ELF files; the older
 * pointer-based format (Go before 1.18) is reported as skipped. A binary
 * built without modules (GOPATH, as Debian builds many) carries only its
 * toolchain and package path: its stdlib is catalogued.
 */
import type { ParsedPackage } from '../model.ts';
import { type Cataloguer, sane } from './cataloguer.ts';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** modinfo is wrapped in these 16-byte sentinels (cmd/go/internal/modload). */
const SENTINEL = 16;

function uvarint(b: Buffer, at: number): [number, number] | null {
  let x = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 5; i++) {
    const c = b[i]!;
    x += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) return [x, i + 1];
    shift += 7;
  }
  return null;
}

function inlineBytes(b: Buffer, at: number): [Buffer, number] | null {
  const v = uvarint(b, at);
  if (!v || v[0] > 4 * 1024 * 1024 || v[1] + v[0] > b.length) return null;
  return [b.subarray(v[1], v[1] + v[0]), v[1] + v[0]];
}

/** go1.19.8 → v1.19.8; go1.20 → v1.20.0; go1.21rc2 → v1.21.0-rc.2 */
export function goVersionAsSemver(v: string): string | null {
  const m = /^go(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?/.exec(v);
  if (!m) return null;
  return `v${m[1]}.${m[2]}.${m[3] ?? '0'}${m[4] ? `-${m[4]}.${m[5]}` : ''}`;
}

function module(path: string | undefined, version: string | undefined): ParsedPackage | null {
  if (!sane(path) || path.length > 200) return null;
  const slash = path.lastIndexOf('/');
  const v = sane(version) && version !== '(devel)' ? version : null;
  return slash === -1 ? { type: 'golang', name: path, version: v } : { type: 'golang', namespace: path.slice(0, slash), name: path.slice(slash + 1), version: v };
}

export const go: Cataloguer = {
  name: 'go',
  wants: (_p, mode, size) => (mode & 0o111) !== 0 && size >= 1024,
  maxBytes: (l) => l.maxBinaryBytes,
  read(content, ctx) {
    if (!content.subarray(0, 4).equals(ELF)) return [];
    const at = content.indexOf(MAGIC);
    if (at === -1) return [];
    const flags = content[at + 15];
    if (flags === undefined || (flags & 0x2) === 0) {
      ctx.skip('a Go binary built before Go 1.18: its build information is not read');
      return [];
    }
    const goVersion = inlineBytes(content, at + 32);
    if (!goVersion) {
      ctx.skip('Go build information that does not parse');
      return [];
    }
    const out: ParsedPackage[] = [];
    const std = goVersionAsSemver(goVersion[0].toString('latin1'));
    if (std) out.push({ type: 'golang', name: 'stdlib', version: std });
    const info = inlineBytes(content, goVersion[1]);
    const text = info && info[0].length >= 2 * SENTINEL ? info[0].subarray(SENTINEL, info[0].length - SENTINEL).toString('utf8') : '';
    let last: ParsedPackage | null = null;
    for (const line of text.split('\n')) {
      const [kind, path, version] = line.split('\t');
      if (kind === 'mod' || kind === 'dep') {
        last = module(path, version);
        if (last) out.push(last);
      } else if (kind === '=>' && last) {
        const replaced = module(path, version);
        if (replaced) Object.assign(last, { namespace: replaced.namespace, name: replaced.name, version: replaced.version });
        if (!replaced?.namespace) delete last.namespace;
      }
    }
    return out;
  },
};
