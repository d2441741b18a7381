/**
 * Debian and Ubuntu: `/var/lib/dpkg/status` and the distroless
 * `/var/lib/dpkg/status.d/*` files: one stanza per package; the packages
 * whose Status ends in `installed` are catalogued (as `dpkg-query -W`
 * shows them with db:Status-Status `installed`), with their architecture and
 * source package. The distribution comes from os-release when the SBOM is
 * written.
 */
import { type Cataloguer, headerFields, sane } from './cataloguer.ts';
import type { ParsedPackage } from '../model.ts';

const MAX_STANZAS = 100_000;

export const dpkg: Cataloguer = {
  name: 'dpkg',
  wants: (p) => p === 'var/lib/dpkg/status' || (/^var\/lib\/dpkg\/status\.d\/[^/]+$/.test(p) && !p.endsWith('.md5sums')),
  maxBytes: (l) => l.maxDbBytes,
  read(content, ctx) {
    const out: ParsedPackage[] = [];
    const stanzas = content.toString('utf8').split(/\n[ \t]*\r?\n/);
    if (stanzas.length > MAX_STANZAS) ctx.skip(`${stanzas.length} stanzas: only the first ${MAX_STANZAS} are read`);
    let bad = 0;
    for (const stanza of stanzas.slice(0, MAX_STANZAS)) {
      if (stanza.trim() === '') continue;
      const f = headerFields(stanza.replace(/^\s*\n/, ''));
      const name = f.get('package');
      const version = f.get('version');
      const status = f.get('status');
      if (status !== undefined && !/\sinstalled$/.test(status)) continue; // config-files, half-installed, not-installed
      if (!sane(name) || !sane(version)) {
        bad++;
        continue;
      }
      const qualifiers: Record<string, string> = {};
      const arch = f.get('architecture');
      if (sane(arch)) qualifiers.arch = arch;
      const source = /^([a-z0-9][a-z0-9+.-]*)/.exec(f.get('source') ?? '')?.[1];
      if (source && source !== name) qualifiers.source = source;
      out.push({ type: 'deb', name, version, qualifiers });
    }
    if (bad) ctx.skip(`${bad} stanza${bad === 1 ? '' : 's'} without a readable Package and Version`);
    return out;
  },
};
