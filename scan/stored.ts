/**
 * The scanner a stored SBOM is scanned with (functions/sboms/rescan.ts takes it as
 * `SbomScanner`): the same parser and matcher as `stella scan`, no quota, no
 * `--vex` files (the kit's VEX applies).
 *
 *   inspect(doc)  format, component count and the lookup keys of its
 *                 components — `affected.package` keys of every ecosystem its
 *                 purls map to, and `cpe:<vendor>:<product>` — which a delta's
 *                 touched packages are intersected with
 *   scan(doc)     scanSbom against the active DB, one snapshot; with `only`
 *                 (lookup keys a delta touched), just the components with one
 *                 of those keys — the rest cannot have changed
 */
import type { Pool } from 'pg';
import { parseCpe } from './cpe.ts';
import { identifyPurl, lookupKeys } from './identify.ts';
import { parseSbom, type Sbom, type SbomComponent } from './sbom.ts';
import { scanSbom, type Finding, type ScanResult } from './scan.ts';

export interface StoredSbomScanner {
  inspect(document: unknown): { format: string; specVersion: string; components: number; packageKeys: string[] };
  scan(document: unknown, only?: ReadonlySet<string>): Promise<ScanResult & { scannedComponents: string[] | null }>;
}

/** The lookup keys of one component: its purl's `affected.package` keys, its CPE's vendor and product. */
export function componentKeys(c: SbomComponent): string[] {
  if (c.problem) return [];
  const keys: string[] = [];
  if (c.purl) {
    const id = identifyPurl(c.purl, c.version);
    if (id.ok) for (const k of lookupKeys(id)) keys.push(k.package);
  }
  const cpe = c.cpe ? parseCpe(c.cpe) : null;
  if (cpe) keys.push(`cpe:${cpe.vendor.toLowerCase()}:${cpe.product.toLowerCase()}`);
  return keys;
}

/** The lookup keys of an SBOM's components (see the module comment). */
export function packageKeys(sbom: Sbom): string[] {
  return [...new Set(sbom.components.flatMap(componentKeys))].sort();
}

export function storedSbomScanner(pool: Pool): StoredSbomScanner {
  return {
    inspect(document) {
      const sbom = parseSbom(document);
      return { format: sbom.format, specVersion: sbom.specVersion, components: sbom.components.length, packageKeys: packageKeys(sbom) };
    },
    async scan(document, only) {
      const sbom = parseSbom(document);
      if (!only) return { ...(await scanSbom(pool, sbom)), scannedComponents: null };
      const components = sbom.components.filter((c) => componentKeys(c).some((k) => only.has(k)));
      return { ...(await scanSbom(pool, { ...sbom, components })), scannedComponents: components.map((c) => c.ref) };
    },
  };
}

export type { Finding };
