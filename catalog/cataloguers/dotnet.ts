/**
 * .NET: `*.deps.json` beside an application: its `libraries` of type
 * `package` (NuGet packages; `project` entries are the application's own).
 */
import type { ParsedPackage } from '../model.ts';
import { type Cataloguer, readJson, sane } from './cataloguer.ts';

export const dotnet: Cataloguer = {
  name: 'dotnet',
  wants: (p) => p.endsWith('.deps.json'),
  maxBytes: (l) => l.maxDbBytes,
  read(content, ctx) {
    const doc = readJson(content, ctx);
    if (doc === undefined) return [];
    const libraries = (doc as { libraries?: unknown } | null)?.libraries;
    if (typeof libraries !== 'object' || libraries === null) return [];
    const out: ParsedPackage[] = [];
    for (const [key, lib] of Object.entries(libraries as Record<string, unknown>)) {
      if ((lib as { type?: unknown } | null)?.type !== 'package') continue;
      const slash = key.lastIndexOf('/');
      const name = key.slice(0, slash);
      const version = key.slice(slash + 1);
      if (slash > 0 && sane(name) && sane(version)) out.push({ type: 'nuget', name, version });
    }
    return out;
  },
};
