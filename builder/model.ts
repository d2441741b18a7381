/**
 * The one normalised advisory model every feed is read into and every merged
 * advisory is written from. A `SourceRecord` is one upstream record (one NVD CVE,
 * one OSV or GHSA file) after normalisation; an `Advisory` is what the merge makes
 * of every record of one vulnerability (one component of the alias graph, see
 * merge-key.ts). The advisories member's `doc` column is
 * an Advisory as canonical JSON (sorted keys), so this file is the doc's schema.
 *
 * Timestamps are ISO 8601 UTC strings (`2024-01-02T03:04:05.000Z`) or null.
 */

export type FeedName = 'nvd' | 'osv' | 'ghsa' | 'csaf';

/** Feeds in the order the manifest lists them (merge.ts ranks them). `csaf`: CSAF 2.0 advisories and VEX (feeds/csaf.ts). */
export const FEEDS: readonly FeedName[] = ['nvd', 'osv', 'ghsa', 'csaf'];

export interface SourceRef {
  feed: FeedName;
  /** The record's own id in that feed (CVE-…, GHSA-…, PYSEC-…, DSA-…). */
  id: string;
  modified: string | null;
  published: string | null;
  /** When this source withdrew the record (OSV `withdrawn`; an OSV record withdrawn in words only, feeds/withdrawn-in-words.ts: its modified; NVD status "Rejected": its lastModified), else null. */
  withdrawn: string | null;
  /** NVD `vulnStatus` (Analyzed, Deferred, Rejected, …); absent for OSV and GHSA. */
  status?: string;
  /** CSAF only: the document's publisher (`document.publisher.name`) and tracking id. */
  publisher?: string;
  document?: string;
  /**
   * Merged advisories only: other copies of the same id (another feed, or the
   * same feed twice) that this one, the newest, replaced as a whole.
   */
  superseded?: SupersededCopy[];
}

/** A copy of a record that lost to a newer copy of the same id. */
export interface SupersededCopy {
  feed: FeedName;
  modified: string | null;
}

export type CvssType = 'CVSS_V2' | 'CVSS_V3' | 'CVSS_V4';

export interface Severity {
  type: CvssType;
  /** The CVSS vector as published (v3 and v4 carry their `CVSS:3.1/` or `CVSS:4.0/` prefix). */
  vector: string;
  /** Base score: NVD's own `baseScore`, or computed from the vector; null when the vector is not a complete base vector. */
  score: number | null;
  /** The feed that published this vector. */
  source: FeedName;
  /** NVD only: who scored it (`nvd@nist.gov` or the CNA) and whether NVD marks it Primary. */
  assigner?: string;
  primary?: boolean;
}

/** A severity label a database gives without a vector (GHSA `database_specific.severity`). */
export interface DatabaseSeverity {
  source: FeedName;
  id: string;
  /** CRITICAL | HIGH | MEDIUM | LOW (GitHub's MODERATE is MEDIUM). */
  severity: string;
}

export interface Reference {
  /** OSV reference type: ADVISORY, ARTICLE, DETECTION, DISCUSSION, REPORT, FIX, INTRODUCED, PACKAGE, EVIDENCE, WEB. */
  type: string;
  url: string;
}

/** One OSV range event: exactly one of the four keys. */
export type RangeEvent = { introduced: string } | { fixed: string } | { last_affected: string } | { limit: string };

export type RangeType = 'SEMVER' | 'ECOSYSTEM' | 'GIT';

export interface Range {
  type: RangeType;
  /** GIT ranges: the repository URL. */
  repo?: string;
  events: RangeEvent[];
}

export interface Affected {
  /** OSV ecosystem as published ("npm", "Debian:12", "Alpine:v3.18"); "GIT" for a package-less GIT range. */
  ecosystem: string;
  /** Package name as the first source spelled it. */
  name: string;
  /** Package URL without version, when a source gave one. */
  purl?: string;
  ranges: Range[];
  /** Explicitly affected versions. */
  versions: string[];
  ecosystem_specific?: unknown;
}

/** One NVD cpeMatch entry, flattened out of its configuration nodes. */
export interface Cpe {
  criteria: string;
  vulnerable: boolean;
  versionStartIncluding?: string;
  versionStartExcluding?: string;
  versionEndIncluding?: string;
  versionEndExcluding?: string;
  /** a | o | h, from the cpe:2.3 string. */
  part: string;
  /** Vendor and product as written in the cpe:2.3 string (formatted-string escaping kept). */
  vendor: string;
  product: string;
}

/**
 * A VEX statement a CSAF VEX document makes about one product: the kit's `vex`
 * table (bundle/extra-tables.ts), which marks a scan's matching findings.
 */
export interface VexStatement {
  /** The vulnerability id the statement names (a CVE). */
  vulnerability: string;
  purl: string | null;
  cpe: string | null;
  status: 'not_affected' | 'fixed';
  /** CSAF flag label (component_not_present, vulnerable_code_not_present, …) */
  justification: string | null;
  /** CSAF threat of category impact */
  impact: string | null;
  publisher: string;
  document: string;
  released: string | null;
}

/** Fields a normalised record and a merged advisory share. */
export interface AdvisoryContent {
  summary: string | null;
  details: string | null;
  severity: Severity[];
  databaseSeverity: DatabaseSeverity[];
  cwes: string[];
  references: Reference[];
  affected: Affected[];
  cpes: Cpe[];
  /** CSAF VEX statements; absent when there are none (so documents without them stay as they were). */
  vex?: VexStatement[];
}

/** One upstream record after normalisation, before the merge. */
export interface SourceRecord extends AdvisoryContent {
  source: SourceRef;
  /** OSV `aliases` (and `upstream`, which is listed separately too). */
  aliases: string[];
  upstream: string[];
  related: string[];
}

/** The merged advisory: every record of one vulnerability (one component of the alias graph). */
export interface Advisory extends AdvisoryContent {
  /** The component's primary id (bundle/advisory-id.ts: a CVE first, the oldest). */
  id: string;
  /** Every other id of the component (the records' own ids, their aliases, a single upstream id), sorted. */
  aliases: string[];
  /** Upstream ids of records that name several: vulnerabilities this one was derived from, not aliases. */
  upstream: string[];
  /** OSV `related` ids: other advisories about a similar issue (not the same one). */
  related: string[];
  /** One entry per record: per id (NVD's and the OSV schema's apart), the copy that won (the newest `modified`), with its feed and the copies it superseded; sorted by feed, id. */
  sources: SourceRef[];
  /** Earliest publication of any source. */
  published: string | null;
  /** Latest modification of any source. */
  modified: string | null;
  /** Set only when every source is withdrawn: the latest withdrawal time. */
  withdrawn: string | null;
}
