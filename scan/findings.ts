/**
 * What a scan reports: findings (one per component and vulnerability), the
 * components it could not check and why, and the summary. scan.ts produces
 * these; dedupe.ts and report.ts read them.
 */
import type { Severity } from '../lib/severity.ts';
import type { Sbom } from './sbom.ts';

export { SEVERITIES, type Severity } from '../lib/severity.ts';

export interface Finding {
  advisoryId: string;
  aliases: string[];
  summary: string | null;
  severity: Severity;
  cvssScore: number | null;
  cvssVector: string | null;
  /** package name as OSV spells it (or vendor:product for a CPE match) */
  package: string;
  ecosystem: string;
  purl: string | null;
  installedVersion: string;
  affectedRange: string;
  fixedVersion: string | null;
  matchedBy: 'purl' | 'cpe';
  /** bom-ref / SPDXID of the component */
  component: string;
  dbVersion: string;
  /** CISA KEV (else ENISA's exploited-list) entry of one of its CVE ids, when the active kit carries them (scan/enrichment.ts). */
  kev?: KevInfo | null;
  /** FIRST EPSS score of one of its CVE ids, when the active kit carries EPSS. */
  epss?: EpssInfo | null;
  /** Suppressed findings only: the VEX statement that took it out of the count (scan/vex.ts). */
  vex?: { status: 'not_affected' | 'fixed'; justification: string | null; impact: string | null; source: string };
}

/** A known-exploited entry: CISA's Known Exploited Vulnerabilities catalog, or ENISA's exploited list (EUVD). */
export interface KevInfo {
  cve: string;
  /** The catalog of this entry: CISA's, or ENISA's when CISA's lists none of the finding's CVEs. */
  catalog: 'cisa' | 'enisa';
  /** Every catalog that lists one of the finding's CVEs. */
  catalogs: ('cisa' | 'enisa')[];
  /** ENISA's entry: its EUVD id. */
  euvdId?: string;
  /** YYYY-MM-DD: when CISA added it (ENISA: exploited since) */
  dateAdded: string;
  /** YYYY-MM-DD: the remediation due date CISA set for federal agencies */
  dueDate: string | null;
  /** "Known" or "Unknown", as CISA writes it */
  knownRansomwareCampaignUse: string | null;
  vulnerabilityName: string | null;
  requiredAction: string | null;
}

/** A FIRST EPSS score: probability of exploitation activity in the next 30 days. */
export interface EpssInfo {
  cve: string;
  /** 0..1 */
  score: number;
  /** 0..1 */
  percentile: number;
  /** YYYY-MM-DD of the scores */
  date: string;
}

export interface NotChecked {
  component: string;
  name: string;
  version: string | null;
  purl: string | null;
  cpe: string | null;
  reason: string;
  /** set when the component was checked but this one advisory could not be decided */
  advisoryId?: string;
}

export interface ScanSummary {
  components: number;
  checked: number;
  notChecked: number;
  /** advisories that could not be decided for a checked component */
  undecided: number;
  findings: number;
  vulnerableComponents: number;
  bySeverity: Record<Severity, number>;
  /** findings on CISA's KEV list */
  kev: number;
  /** findings a VEX statement marks not_affected or fixed: not in `findings`, nor in the counts above */
  suppressed: number;
}

export interface ScanResult {
  dbVersion: string;
  dbActivatedAt: string;
  sbom: { format: Sbom['format']; specVersion: string };
  findings: Finding[];
  /** findings a VEX statement (--vex, or the kit's CSAF VEX) marks not_affected or fixed, each with its `vex` */
  suppressed: Finding[];
  notChecked: NotChecked[];
  summary: ScanSummary;
}
