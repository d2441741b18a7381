/**
 * Ruby: the gemspecs RubyGems installs (`…/specifications/NAME-VERSION.gemspec`):
 * `s.name = "…"` and `s.version = "…"` read as text, never evaluated; the
 * file name gives them when the assignments cannot be read.
 */
import { type Cataloguer, sane } from './cataloguer.ts';

const GEMSPEC = /(?:^|\/)specifications\/([^/]+)\.gemspec$/;

export const ruby: Cataloguer = {
  name: 'ruby',
  wants: (p) => GEMSPEC.test(p),
  maxBytes: (l) => l.maxMetaBytes,
  read(content, ctx) {
    const text = content.toString('utf8');
    const field = (f: string): string | undefined => new RegExp(`\\.${f}\\s*=\\s*["']([^"']+)["']`).exec(text)?.[1];
    let name = field('name');
    let version = /\.version\s*=\s*(?:Gem::Version\.new\()?["']([^"']+)["']/.exec(text)?.[1];
    if (!sane(name) || !sane(version)) {
      const m = /^(.+)-(\d[^-]*)$/.exec(GEMSPEC.exec(ctx.path)![1]!);
      name = m?.[1];
      version = m?.[2];
    }
    if (!sane(name) || !sane(version)) {
      ctx.skip('no readable name and version');
      return [];
    }
    return [{ type: 'gem', name, version }];
  },
};
