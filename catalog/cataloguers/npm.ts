/**
 * npm: every `node_modules/<name>/package.json` and
 * `node_modules/@scope/name/package.json` (a package's own manifest, not
 * the package.json files deeper inside it), its name and version.
 */
import type { ParsedPackage } from '../model.ts';
import { type Cataloguer, readJson, sane } from './cataloguer.ts';

const MANIFEST = /(?:^|\/)node_modules\/(?:@[^/]+\/)?[^/@.][^/]*\/package\.json$/;

export const npm: Cataloguer = {
  name: 'npm',
  wants: (p) => MANIFEST.test(p),
  maxBytes: (l) => l.maxMetaBytes,
  read(content, ctx) {
    const doc = readJson(content, ctx);
    if (doc === undefined) return [];
    const { name, version } = (typeof doc === 'object' && doc !== null ? doc : {}) as { name?: unknown; version?: unknown };
    if (!sane(name) || !sane(version)) {
      ctx.skip('no readable name and version');
      return [];
    }
    const scoped = /^(@[^/]+)\/([^/]+)$/.exec(name);
    const pkg: ParsedPackage = scoped ? { type: 'npm', namespace: scoped[1]!, name: scoped[2]!, version } : { type: 'npm', name, version };
    return [pkg];
  },
};
