/**
 * sbom.spdx.json: an SPDX 2.3 JSON document describing a bundle. One package
 * (the bundle, at its version) CONTAINS one file entry per member it carries
 * (the DB members and the image archives; not manifest.json, which lists the
 * SBOM's own digest, nor the SBOM itself), each with its SHA256 (and the SHA1
 * SPDX 2.3 makes mandatory for files). Deterministic: `created` is the
 * manifest's, the namespace derives from the members' digests, and keys are
 * sorted; the same members give the same bytes.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './manifest.ts';
import { platformLabel, type KitImage } from './oci.ts';

export interface SbomFile {
  /** Path inside the bundle. */
  path: string;
  sha256: string;
  sha1: string;
  /** `removed`: a delta's list of removed advisory ids (db/removed.tsv); `trust`: a carried root of trust. */
  role: 'db' | 'removed' | 'image' | 'trust';
}

export interface SbomInput {
  bundleVersion: string;
  /** ISO 8601; written at second precision, as SPDX wants. */
  created: string;
  /** "stella-ouk 0.1.0" */
  generator: string;
  files: SbomFile[];
  /** OCI images the kit carries: one SPDX package each, named by its index digest and platforms. */
  images?: KitImage[];
}

const FILE_COMMENTS: Record<SbomFile['role'], string> = {
  db: 'vulnerability DB table, PostgreSQL COPY text format',
  removed: 'advisory ids this delta removes, one a line (PostgreSQL COPY text format)',
  image: 'OCI image layout file (oci-layout, index.json or a blob)',
  trust: 'root of trust the kit carries: TUF root metadata (spec 1.0), signed by the previous root\'s keys',
};

/** Namespace host: `.invalid` is reserved, so the URI can never point at somebody's server. */
const NAMESPACE_BASE = 'https://spdx.stella-ouk.invalid/bundles';

export function spdxId(prefix: string, index: number, path: string): string {
  return `SPDXRef-${prefix}-${index}-${path.replace(/[^A-Za-z0-9.-]+/g, '-')}`;
}

/** sha256 of `"<path> <sha256>\n"` over the files: what names this SBOM's content. */
export function sbomContentDigest(files: readonly SbomFile[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path} ${f.sha256}\n`);
  return h.digest('hex');
}

/** SPDX 2.3 §7.9: sha1 of the sorted, concatenated sha1s of the package's files. */
export function packageVerificationCode(files: readonly SbomFile[]): string {
  const sorted = files.map((f) => f.sha1).sort();
  return createHash('sha1').update(sorted.join('')).digest('hex');
}

/** The kit is part of Stella Ops: AGPL-3.0-or-later, and every component of it inherits that licence. */
export const KIT_LICENSE = 'AGPL-3.0-or-later';

/** The notices the feeds' terms ask for, carried with the data. */
export const DATA_NOTICES = [
  'This product uses data from the NVD API but is not endorsed or certified by the NVD.',
  'GitHub Advisory Database records are CC-BY-4.0, (c) GitHub, Inc.',
];

export function buildSbom(input: SbomInput): string {
  const created = new Date(input.created).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const digest = sbomContentDigest(input.files);
  const pkgId = 'SPDXRef-Package-stella-ouk-bundle';
  const files = input.files.map((f, i) => ({
    SPDXID: spdxId('File', i + 1, f.path),
    fileName: `./${f.path}`,
    fileTypes: [f.role === 'image' ? 'ARCHIVE' : 'TEXT'],
    checksums: [
      { algorithm: 'SHA1', checksumValue: f.sha1 },
      { algorithm: 'SHA256', checksumValue: f.sha256 },
    ],
    licenseConcluded: KIT_LICENSE,
    copyrightText: 'NOASSERTION',
    comment: FILE_COMMENTS[f.role],
  }));
  // One package per image: its digest is the index digest (what the site's registry must serve), its platforms listed.
  const imagePackages = (input.images ?? []).map((img, i) => ({
    SPDXID: spdxId('Image', i + 1, img.name),
    name: img.name,
    versionInfo: img.tag,
    primaryPackagePurpose: 'CONTAINER',
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: img.indexDigest.replace(/^sha256:/, '') }],
    externalRefs: [
      {
        referenceCategory: 'PACKAGE-MANAGER',
        referenceType: 'purl',
        referenceLocator: `pkg:oci/${encodeURIComponent(img.name)}@${encodeURIComponent(img.indexDigest)}?tag=${encodeURIComponent(img.tag)}`,
      },
    ],
    licenseConcluded: KIT_LICENSE,
    licenseDeclared: KIT_LICENSE,
    copyrightText: 'NOASSERTION',
    comment: `OCI image index ${img.indexDigest} (${img.mediaType}), carried as images/${img.name}/; platforms: ${img.platforms.map((p) => `${platformLabel(p)} ${p.digest}`).join(', ')}`,
  }));
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `stella-ouk-${input.bundleVersion}`,
    documentNamespace: `${NAMESPACE_BASE}/${encodeURIComponent(input.bundleVersion)}/${digest}`,
    creationInfo: {
      created,
      creators: [`Tool: ${input.generator.replace(/ /g, '-')}`],
    },
    documentDescribes: [pkgId],
    packages: [
      {
        SPDXID: pkgId,
        name: 'stella-ouk-bundle',
        versionInfo: input.bundleVersion,
        primaryPackagePurpose: 'ARCHIVE',
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: true,
        hasFiles: files.map((f) => f.SPDXID),
        packageVerificationCode: { packageVerificationCodeValue: packageVerificationCode(input.files) },
        licenseConcluded: KIT_LICENSE,
        licenseDeclared: KIT_LICENSE,
        copyrightText: 'NOASSERTION',
        attributionTexts: DATA_NOTICES,
        comment: 'Stella OUK offline update bundle: vulnerability DB snapshot and optional OCI images',
      },
      ...imagePackages,
    ],
    files,
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: pkgId },
      ...files.map((f) => ({ spdxElementId: pkgId, relationshipType: 'CONTAINS', relatedSpdxElement: f.SPDXID })),
      ...imagePackages.map((p) => ({ spdxElementId: pkgId, relationshipType: 'CONTAINS', relatedSpdxElement: p.SPDXID })),
    ],
  };
  return canonicalJson(doc, 2) + '\n';
}
