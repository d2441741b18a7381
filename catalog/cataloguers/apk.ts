/**
 * Alpine: `/lib/apk/db/installed`, blank-line separated records of
 * `K:value` lines (P name, V version, A arch, o origin).
 */
import type { ParsedPackage } from '../model.ts';
import { type Cataloguer, sane } from './cataloguer.ts';

export const apk: Cataloguer = {
  name: 'apk',
  wants: (p) => p === 'lib/apk/db/installed',
  maxBytes: (l) => l.maxDbBytes,
  read(content, ctx) {
    const out: ParsedPackage[] = [];
    let bad = 0;
    for (const record of content.toString('utf8').split(/\n\s*\n/)) {
      const f = new Map<string, string>();
      for (const line of record.split('\n')) {
        if (line.length > 2 && line[1] === ':' && !f.has(line[0]!)) f.set(line[0]!, line.slice(2).trim());
      }
      if (f.size === 0) continue;
      const name = f.get('P');
      const version = f.get('V');
      if (!sane(name) || !sane(version)) {
        bad++;
        continue;
      }
      const qualifiers: Record<string, string> = {};
      if (sane(f.get('A'))) qualifiers.arch = f.get('A')!;
      const origin = f.get('o');
      if (sane(origin) && origin !== name) qualifiers.origin = origin;
      out.push({ type: 'apk', name, version, qualifiers });
    }
    if (bad) ctx.skip(`${bad} record${bad === 1 ? '' : 's'} without a readable P: and V:`);
    return out;
  },
};
