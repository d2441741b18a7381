/**
 * What the image cataloguer finds, before it becomes an SBOM: packages with
 * the path and layer they came from, and what was skipped (a partial result
 * says so). OS packages get their distribution (from /etc/os-release of the
 * final file system) only when the SBOM is written.
 */

export type PackageType = 'deb' | 'apk' | 'npm' | 'pypi' | 'maven' | 'golang' | 'gem' | 'composer' | 'nuget';

export interface FoundPackage {
  type: PackageType;
  namespace?: string;
  name: string;
  /** null when the package database names none (a Go main module built from a checkout) */
  version: string | null;
  qualifiers?: Record<string, string>;
  /** the cataloguer that found it: `dpkg`, `apk`, `npm`, `python`, `java`, `go`, `ruby`, `composer`, `dotnet` */
  cataloguer: string;
  /** the file it was read from, absolute in the image (`/var/lib/dpkg/status`; inside an archive `/app.jar!/META-INF/…`) */
  path: string;
  /** the digest of the layer that file came from */
  layer: string;
}

/** A package as a cataloguer reads it from one file (path and layer are added by the caller). */
export type ParsedPackage = Omit<FoundPackage, 'path' | 'layer' | 'cataloguer'> & { path?: string };

export interface Skipped {
  /** the path in the image, or the layer's digest */
  where: string;
  why: string;
}

export interface Distro {
  /** os-release ID: debian, ubuntu, alpine, … */
  id: string;
  /** os-release VERSION_ID: 12, 22.04, 3.18.4 (empty for a rolling release) */
  versionId: string;
  prettyName?: string;
}

export interface CatalogResult {
  /** the manifest catalogued (sha256:…) and its platform */
  manifestDigest: string;
  platform: string;
  layers: string[];
  distro: Distro | null;
  packages: FoundPackage[];
  skipped: Skipped[];
}
