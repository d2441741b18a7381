/**
 * The image cataloguer (like Syft beside Grype): what an image holds, read
 * from its layers, as a CycloneDX SBOM the scanner scans like any other.
 * Stands on lib/ only; the CLI hands it an image source (a registry through
 * infra/registry.ts, or an OCI layout or archive on disk).
 */
export { catalogImage, hostPlatform, type CatalogOptions } from './catalog-image.ts';
export { toCycloneDx, purlOf, type CycloneDxBom } from './cyclonedx.ts';
export { DEFAULT_LIMITS, type CatalogLimits } from './limits.ts';
export type { CatalogResult, FoundPackage, Skipped, Distro } from './model.ts';
export { ociLayoutSource } from './oci-layout.ts';
export { ociArchiveSource } from './oci-archive.ts';
export type { ImageSource, FetchedDocument } from './source.ts';
