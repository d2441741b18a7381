/**
 * The catalogue as a CycloneDX 1.5 JSON SBOM: one component per package,
 * with its purl (OS packages with their distribution from os-release:
 * `pkg:deb/debian/openssl@3.0.15-1~deb12u1?arch=amd64&distro=debian-12`,
 * `pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4`) and properties
 * naming where it was found (`stella:layer`, `stella:path`,
 * `stella:cataloguer`); the image itself is `metadata.component`
 * (a container, its manifest digest as version); what was skipped is listed
 * in `metadata.properties` as `stella:skipped`. Deterministic: the clock
 * and the serial number (from the manifest digest) are inputs.
 */
import { createHash } from 'node:crypto';
import { PackageURL } from 'packageurl-js';
import type { CatalogResult, Distro, FoundPackage } from './model.ts';

export interface CycloneDxComponent {
  'bom-ref': string;
  type: 'library' | 'application';
  group?: string;
  name: string;
  version?: string;
  purl: string;
  properties: Array<{ name: string; value: string }>;
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: '1.5';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    tools: { components: Array<{ type: 'application'; name: string; version: string }> };
    component: { 'bom-ref': string; type: 'container'; name: string; version: string; properties: Array<{ name: string; value: string }> };
    properties: Array<{ name: string; value: string }>;
  };
  components: CycloneDxComponent[];
}

function qualifiersFor(p: FoundPackage, distro: Distro | null): Record<string, string> | undefined {
  const q: Record<string, string> = { ...p.qualifiers };
  if (distro && p.type === 'deb') q.distro = distro.versionId ? `${distro.id}-${distro.versionId}` : distro.id;
  if (distro && p.type === 'apk' && distro.versionId) q.distro = distro.versionId;
  return Object.keys(q).length ? q : undefined;
}

export function purlOf(p: FoundPackage, distro: Distro | null): string {
  let namespace = p.namespace;
  if (p.type === 'deb') namespace = distro && ['debian', 'ubuntu'].includes(distro.id) ? distro.id : 'debian';
  if (p.type === 'apk') namespace = distro?.id ?? 'alpine';
  return new PackageURL(p.type, namespace, p.name, p.version ?? undefined, qualifiersFor(p, distro), undefined).toString();
}

function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function toCycloneDx(result: CatalogResult, opts: { imageName: string; now: Date; toolVersion: string }): CycloneDxBom {
  const seen = new Map<string, number>();
  const components = result.packages.map((p): CycloneDxComponent => {
    const purl = purlOf(p, result.distro);
    const n = seen.get(purl) ?? 0;
    seen.set(purl, n + 1);
    const group = p.type === 'maven' || p.type === 'npm' || p.type === 'composer' ? p.namespace : undefined;
    return {
      'bom-ref': n === 0 ? purl : `${purl}#${n}`,
      type: p.type === 'golang' && p.name === 'stdlib' ? 'application' : 'library',
      ...(group ? { group } : {}),
      name: p.type === 'golang' && p.namespace ? `${p.namespace}/${p.name}` : p.name,
      ...(p.version !== null ? { version: p.version } : {}),
      purl,
      properties: [
        { name: 'stella:layer', value: p.layer },
        { name: 'stella:path', value: p.path },
        { name: 'stella:cataloguer', value: p.cataloguer },
      ],
    };
  });
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${uuidFrom(`${opts.imageName}@${result.manifestDigest}`)}`,
    version: 1,
    metadata: {
      timestamp: opts.now.toISOString(),
      tools: { components: [{ type: 'application', name: 'stella', version: opts.toolVersion }] },
      component: {
        'bom-ref': result.manifestDigest,
        type: 'container',
        name: opts.imageName,
        version: result.manifestDigest,
        properties: [
          { name: 'stella:platform', value: result.platform },
          ...(result.distro ? [{ name: 'stella:distro', value: result.distro.versionId ? `${result.distro.id}-${result.distro.versionId}` : result.distro.id }] : []),
          ...result.layers.map((l) => ({ name: 'stella:layer', value: l })),
        ],
      },
      properties: result.skipped.map((s) => ({ name: 'stella:skipped', value: `${s.where}: ${s.why}` })),
    },
    components,
  };
}
