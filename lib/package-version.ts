/**
 * This package's version (package.json), for `stella --version` and the
 * generator named in a kit's manifest and SBOM. package.json is one level up
 * from a module in the sources (lib/…) and two levels up in the build
 * (dist/lib/…): the first one up the tree that is this package's is read.
 */
import { readFileSync } from 'node:fs';

let version: string | undefined;

export function packageVersion(): string {
  if (version !== undefined) return version;
  for (const rel of ['../package.json', '../../package.json']) {
    let text: string;
    try {
      text = readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    const pkg = JSON.parse(text) as { name?: string; version?: string };
    if (pkg.name === 'stella-ouk' && typeof pkg.version === 'string') return (version = pkg.version);
  }
  throw new Error(`package.json of stella-ouk not found above ${new URL('.', import.meta.url).pathname}`);
}
