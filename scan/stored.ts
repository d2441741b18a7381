/**
 * The scanner a stored SBOM is scanned with (functions/rescan.ts takes it as
 * `SbomScanner`): the same parser and matcher as `stella scan`, no quota, no
 * `--vex` files (the kit's VEX applies).
 *
 *   inspect(doc)  format, component count and the lookup keys of its
 *                 components — `affected.package` keys of every ecosystem its
 *                 purls map to, and `cpe:<vendor>:<product>` — which a delta's
 *                 touched packages are intersected with
 *   scan(doc)     scanSbom against the active DB, one snapshot
 */
import type { Pool } from 'pg';
import { parseCpe } from './cpe.ts';
import { identifyPurl, lookupKeys } from './identify.ts';
import { parseSbom, type Sbom } from './sbom.ts';
import { scanSbom, type Finding, type ScanResult } from './scan.ts';

export interface StoredSbomScanner {
  inspect(document: unknown): { format: string; specVersion: string; components: number; packageKeys: string[] };
  scan(document: unknown): Promise<ScanResult>;
}

/** The lookup keys of an SBOM's components (see the module comment). */
export function packageKeys(sbom: Sbom): string[] {
  const keys = new Set<string>();
  for (const c of sbom.components) {
    if (c.problem) continue;
    if (c.purl) {
      const id = identifyPurl(c.purl, c.version);
      if (id.ok) for (const k of lookupKeys(id)) keys.add(k.package);
    }
    const cpe = c.cpe ? parseCpe(c.cpe) : null;
    if (cpe) keys.add(`cpe:${cpe.vendor.toLowerCase()}:${cpe.product.toLowerCase()}`);
  }
  return [...keys].sort();
}

export function storedSbomScanner(pool: Pool): StoredSbomScanner {
  return {
    inspect(document) {
      const sbom = parseSbom(document);
      return { format: sbom.format, specVersion: sbom.specVersion, components: sbom.components.length, packageKeys: packageKeys(sbom) };
    },
    scan: (document) => scanSbom(pool, parseSbom(document)),
  };
}

export type { Finding };
