/**
 * From a package URL (read by purl.ts with packageurl-js) to the OSV
 * ecosystem(s) and package name the DB is keyed by. A purl that cannot be
 * read is not checked, with what is wrong with it as the reason.
 *
 *   npm            -> npm          (@scope/name)
 *   pypi           -> PyPI
 *   maven          -> Maven        (groupId:artifactId)
 *   golang         -> Go           (module path)
 *   cargo          -> crates.io
 *   gem            -> RubyGems
 *   nuget          -> NuGet
 *   composer       -> Packagist    (vendor/name)
 *   hex, pub, swift, bitnami -> Hex, Pub, SwiftURL, Bitnami
 *   deb  + distro  -> Debian:<release> / Ubuntu:<release>[:LTS]  (source package when given)
 *   apk  + distro  -> Alpine:v<major.minor>                      (origin package when given); Wolfi, Chainguard
 *   rpm  + distro  -> AlmaLinux:<major>, Rocky Linux:<major>, openSUSE:Leap <x.y> / Tumbleweed
 *                     (source package from `upstream` when given; `epoch` prepended to the version)
 *
 * OS packages need the distro release: the same version is fixed in one
 * release and not in another, so without it the component is not checked.
 * Red Hat (product CPE streams) and SUSE (product names) ecosystems cannot be
 * derived from a purl and are reported as not checked.
 */
import type { PackageURL } from 'packageurl-js';
import { packageKey } from '../bundle/package-name.ts';
import { BoundedMap } from './bounded-map.ts';
import { readPurl } from './purl.ts';

export type Identity =
  | {
      ok: true;
      /** the ecosystem shown in reports, e.g. "Debian:12" */
      ecosystem: string;
      /** every ecosystem string whose rows apply, e.g. ["Debian:12", "Debian"] */
      ecosystems: string[];
      /** the package name as OSV spells it */
      name: string;
      version: string;
    }
  | { ok: false; reason: string };

const DEBIAN_CODENAMES: Record<string, string> = {
  woody: '3.0', sarge: '3.1', etch: '4.0', lenny: '5.0', squeeze: '6.0', wheezy: '7', jessie: '8',
  stretch: '9', buster: '10', bullseye: '11', bookworm: '12', trixie: '13', forky: '14',
};

/** [release, LTS?] */
const UBUNTU_CODENAMES: Record<string, [string, boolean]> = {
  trusty: ['14.04', true], xenial: ['16.04', true], bionic: ['18.04', true], focal: ['20.04', true],
  groovy: ['20.10', false], hirsute: ['21.04', false], impish: ['21.10', false], jammy: ['22.04', true],
  kinetic: ['22.10', false], lunar: ['23.04', false], mantic: ['23.10', false], noble: ['24.04', true],
  oracular: ['24.10', false], plucky: ['25.04', false], questing: ['25.10', false],
};

/** "debian-12", "bookworm", "12", "debian-12.4" -> the release number part, lower case. */
function distroRelease(distro: string, names: string[]): string {
  let d = distro.trim().toLowerCase();
  for (const n of names) if (d.startsWith(`${n}-`)) d = d.slice(n.length + 1);
  return d;
}

function debianEcosystems(distro: string): string[] | null {
  const d = distroRelease(distro, ['debian']);
  const rel = DEBIAN_CODENAMES[d] ?? d;
  const m = /^(\d+)(?:\.(\d+))?/.exec(rel);
  if (!m) return d === 'sid' || d === 'unstable' ? ['Debian:sid'] : null;
  const major = Number(m[1]);
  // releases before 7 were numbered major.minor (Debian:6.0, Debian:3.1)
  const scoped = major < 7 ? [`Debian:${major}.${m[2] ?? '0'}`] : [`Debian:${major}`];
  return scoped;
}

function ubuntuEcosystems(distro: string): string[] | null {
  const d = distroRelease(distro, ['ubuntu']);
  const named = UBUNTU_CODENAMES[d];
  const m = /^(\d\d\.\d\d)/.exec(d);
  const rel = named?.[0] ?? m?.[1];
  if (!rel) return null;
  const lts = named ? named[1] : /^\d[02468]\.04$/.test(rel);
  return lts ? [`Ubuntu:${rel}:LTS`, `Ubuntu:Pro:${rel}:LTS`, `Ubuntu:${rel}`] : [`Ubuntu:${rel}`];
}

function alpineEcosystem(distro: string): string | null {
  const d = distroRelease(distro, ['alpine']).replace(/^v/, '');
  const m = /^(\d+)\.(\d+)/.exec(d);
  if (m) return `Alpine:v${m[1]}.${m[2]}`;
  return d === 'edge' ? 'Alpine:edge' : null;
}

function rpmEcosystem(namespace: string, distro: string | undefined): string | { reason: string } {
  const ns = namespace.toLowerCase();
  const d = (distro ?? '').toLowerCase();
  const major = /(\d+)/.exec(d)?.[1];
  if (ns === 'almalinux' || d.startsWith('almalinux')) return major ? `AlmaLinux:${major}` : { reason: 'rpm purl for AlmaLinux without a distro release (distro=almalinux-9)' };
  if (ns === 'rocky' || ns === 'rocky-linux' || d.startsWith('rocky')) return major ? `Rocky Linux:${major}` : { reason: 'rpm purl for Rocky Linux without a distro release (distro=rocky-9)' };
  if (ns === 'opensuse' || d.startsWith('opensuse')) {
    if (d.includes('tumbleweed')) return 'openSUSE:Tumbleweed';
    const leap = /(\d+\.\d+)/.exec(d)?.[1];
    return leap ? `openSUSE:Leap ${leap}` : { reason: 'rpm purl for openSUSE without a Leap release or Tumbleweed in distro' };
  }
  if (ns === 'redhat' || ns === 'rhel') return { reason: 'Red Hat advisories are scoped by product CPE streams, which a purl does not name' };
  if (ns === 'suse' || ns === 'sles') return { reason: 'SUSE advisories are scoped by product name, which a purl does not name' };
  return { reason: `rpm packages of "${namespace}" have no OSV ecosystem this scanner knows` };
}

/** "openssl-1.1.1k-7.el8_6.src.rpm" -> "openssl" */
function rpmSourceName(upstream: string | undefined): string | null {
  if (!upstream) return null;
  const m = /^(.+)-[^-]+-[^-]+\.src\.rpm$/.exec(upstream);
  return m ? m[1]! : null;
}

function simple(ecosystem: string, name: string, version: string): Identity {
  return { ok: true, ecosystem, ecosystems: [ecosystem], name, version };
}

const identities = new BoundedMap<Identity>(1_000_000, (key) => key.length + 128);

/**
 * `identifyPurl`, remembered per process (a pure function of its two strings;
 * the answer is shared, never to be changed): a site's images repeat their
 * packages, and reading a purl was the largest part of a repeated scan once
 * its DB reads and version checks were cached (docs/performance.md).
 */
export function identifyPurlCached(purlText: string, fallbackVersion: string | null): Identity {
  const key = `${fallbackVersion === null ? '-' : `${fallbackVersion.length}:${fallbackVersion}`}\u0000${purlText}`;
  const hit = identities.get(key);
  if (hit !== undefined) return hit;
  const id = identifyPurl(purlText, fallbackVersion);
  identities.set(key, id);
  return id;
}

/** OSV identity of a component, from its purl (and the SBOM's version when the purl has none). */
export function identifyPurl(purlText: string, fallbackVersion: string | null): Identity {
  const read = readPurl(purlText);
  if (!read.ok) return { ok: false, reason: read.reason };
  const p: PackageURL = read.purl;
  const version = p.version ?? fallbackVersion ?? null;
  if (!version) return { ok: false, reason: 'no version in the purl or the component' };
  const ns = p.namespace ?? '';
  const q = p.qualifiers ?? {};
  const withNs = (sep: string) => (ns ? `${ns}${sep}${p.name}` : p.name);
  switch (p.type) {
    case 'npm':
      return simple('npm', withNs('/'), version);
    case 'pypi':
      return simple('PyPI', p.name, version);
    case 'maven':
      return ns ? simple('Maven', `${ns}:${p.name}`, version) : { ok: false, reason: 'maven purl without a groupId (namespace)' };
    case 'golang':
      return simple('Go', withNs('/'), version);
    case 'cargo':
      return simple('crates.io', p.name, version);
    case 'gem':
      return simple('RubyGems', p.name, version);
    case 'nuget':
      return simple('NuGet', p.name, version);
    case 'composer':
      return simple('Packagist', withNs('/'), version);
    case 'hex':
      return simple('Hex', p.name, version);
    case 'pub':
      return simple('Pub', p.name, version);
    case 'bitnami':
      return simple('Bitnami', p.name, version);
    case 'swift':
      return simple('SwiftURL', withNs('/'), version);
    case 'deb': {
      const family = ns.toLowerCase() === 'ubuntu' ? 'Ubuntu' : ns.toLowerCase() === 'debian' ? 'Debian' : null;
      if (!family) return { ok: false, reason: `deb packages of "${ns || '(no namespace)'}" have no OSV ecosystem this scanner knows (debian, ubuntu)` };
      if (!q.distro) return { ok: false, reason: `deb purl without a distro qualifier: the ${family} release is unknown, and fixes differ per release` };
      const ecos = family === 'Debian' ? debianEcosystems(q.distro) : ubuntuEcosystems(q.distro);
      if (!ecos) return { ok: false, reason: `unrecognised ${family} release in distro=${q.distro}` };
      const source = (q.source ?? '').replace(/\s*\(.*\)$/, '').trim() || p.name;
      return { ok: true, ecosystem: ecos[0]!, ecosystems: [...ecos, family], name: source, version };
    }
    case 'apk': {
      const n = ns.toLowerCase();
      const name = q.origin || p.name;
      if (n === 'wolfi') return simple('Wolfi', name, version);
      if (n === 'chainguard') return simple('Chainguard', name, version);
      if (n !== 'alpine') return { ok: false, reason: `apk packages of "${ns || '(no namespace)'}" have no OSV ecosystem this scanner knows (alpine, wolfi, chainguard)` };
      if (!q.distro) return { ok: false, reason: 'apk purl without a distro qualifier: the Alpine release is unknown, and fixes differ per release' };
      const eco = alpineEcosystem(q.distro);
      if (!eco) return { ok: false, reason: `unrecognised Alpine release in distro=${q.distro}` };
      return { ok: true, ecosystem: eco, ecosystems: [eco, 'Alpine'], name, version };
    }
    case 'rpm': {
      const eco = rpmEcosystem(ns, q.distro);
      if (typeof eco !== 'string') return { ok: false, reason: eco.reason };
      const epoch = q.epoch && q.epoch !== '0' && !version.includes(':') ? `${q.epoch}:` : '';
      const family = eco.slice(0, eco.indexOf(':'));
      return { ok: true, ecosystem: eco, ecosystems: [eco, family], name: rpmSourceName(q.upstream) ?? p.name, version: `${epoch}${version}` };
    }
    default:
      return { ok: false, reason: `purl type "${p.type}" has no OSV ecosystem this scanner knows` };
  }
}

/** The DB lookup pairs of an identity: (ecosystem, packageKey) for each applicable ecosystem. */
export function lookupKeys(id: Extract<Identity, { ok: true }>): { ecosystem: string; package: string }[] {
  return id.ecosystems.map((ecosystem) => ({ ecosystem, package: packageKey(ecosystem, id.name) }));
}
