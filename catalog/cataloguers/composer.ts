/**
 * PHP: Composer's `vendor/composer/installed.json` (Composer 2's
 * `{"packages": […]}` and Composer 1's bare array), each `vendor/name`
 * and version.
 */
import type { ParsedPackage } from '../model.ts';
import { type Cataloguer, readJson, sane } from './cataloguer.ts';

export const composer: Cataloguer = {
  name: 'composer',
  wants: (p) => /(?:^|\/)vendor\/composer\/installed\.json$/.test(p),
  maxBytes: (l) => l.maxDbBytes,
  read(content, ctx) {
    const doc = readJson(content, ctx);
    if (doc === undefined) return [];
    const list = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null && Array.isArray((doc as { packages?: unknown }).packages) ? (doc as { packages: unknown[] }).packages : null;
    if (!list) {
      ctx.skip('neither a list of packages nor {"packages": [...]}');
      return [];
    }
    const out: ParsedPackage[] = [];
    let bad = 0;
    for (const p of list) {
      const { name, version } = (typeof p === 'object' && p !== null ? p : {}) as { name?: unknown; version?: unknown };
      const m = sane(name) ? /^([^/]+)\/([^/]+)$/.exec(name) : null;
      if (!m || !sane(version)) {
        bad++;
        continue;
      }
      out.push({ type: 'composer', namespace: m[1]!, name: m[2]!, version: version.replace(/^v(?=\d)/, '') });
    }
    if (bad) ctx.skip(`${bad} entr${bad === 1 ? 'y' : 'ies'} without a readable vendor/name and version`);
    return out;
  },
};
