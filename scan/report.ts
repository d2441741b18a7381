/**
 * Scan output for people: a header (DB version, each feed's age against its
 * budget, the freshness warnings, SBOM, counts), the findings as
 * a table sorted by severity, what was not checked and why, and the quota
 * banner. Colour only when asked (stdout is a TTY and NO_COLOR is unset).
 * Every value from the SBOM or the DB (names, versions, summaries, reasons)
 * is printed through lib/terminal-text.ts, colour or not: a package name
 * holding an escape sequence or a newline shows as `\x1b…`/`\n`.
 */
import type { Config } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';
import { formatAge, formatBudget, type FeedAge } from '../lib/freshness.ts';
import { terminalText as t } from '../lib/terminal-text.ts';
import { type Finding, type ScanResult, SEVERITIES, type Severity } from './scan.ts';

const COLOURS: Record<Severity, string> = {
  CRITICAL: '\x1b[1;35m',
  HIGH: '\x1b[1;31m',
  MEDIUM: '\x1b[33m',
  LOW: '\x1b[36m',
  NONE: '\x1b[2m',
  UNKNOWN: '\x1b[2m',
};
const RESET = '\x1b[0m';

/** Colour on `stream`: a terminal, and the process's configuration does not ask for plain output (NO_COLOR, TERM=dumb). */
export function useColour(stream: { isTTY?: boolean }, config: Pick<Config, 'noColour'>): boolean {
  return Boolean(stream.isTTY) && !config.noColour;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** `yes` (CISA's KEV), `R` (used in ransomware), `EU` (ENISA's exploited list). */
function kevLabel(f: Finding): string {
  if (!f.kev) return '-';
  // a finding stored before ENISA's list was carried has no catalog: CISA's
  const cisa = f.kev.catalog !== 'enisa' ? [f.kev.knownRansomwareCampaignUse === 'Known' ? 'yes,R' : 'yes'] : [];
  return [...cisa, ...(f.kev.catalogs?.includes('enisa') ? ['EU'] : [])].join(',');
}

/** `; 3 on CISA's KEV list, 1 on ENISA's exploited list only` (empty when none). */
function kevSummary(findings: Finding[]): string {
  const cisa = findings.filter((f) => f.kev && f.kev.catalog !== 'enisa').length;
  const enisa = findings.filter((f) => f.kev?.catalog === 'enisa').length;
  const parts = [...(cisa ? [`${cisa} on CISA's KEV list`] : []), ...(enisa ? [`${enisa} on ENISA's exploited list (EUVD) only`] : [])];
  return parts.length ? `; ${parts.join(', ')}` : '';
}

function epssLabel(f: Finding): string {
  if (!f.epss) return '-';
  return `${(f.epss.score * 100).toFixed(f.epss.score < 0.1 ? 2 : 1)}% (p${Math.floor(f.epss.percentile * 100)})`;
}

function advisoryLabel(f: Finding): string {
  const cve = f.aliases.find((a) => a.startsWith('CVE-'));
  return cve && cve !== f.advisoryId ? `${f.advisoryId} (${cve})` : f.advisoryId;
}

/** Rows of outside values as aligned columns; every cell is escaped before it is measured. */
function table(cells: string[][], colourCol: ((row: number) => string | null) | null): string {
  const rows = cells.map((r) => r.map((c) => t(c)));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r, ri) =>
      r
        .map((cell, i) => {
          const padded = i === r.length - 1 ? cell : cell.padEnd(widths[i]!);
          const c = i === 0 && ri > 0 && colourCol ? colourCol(ri - 1) : null;
          return c ? `${c}${padded}${RESET}` : padded;
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `nvd 1d 2h old (budget 3d)`, `osv 3d 0h old (over its 2d budget)`, `csaf 6h 0m old`. */
function feedLabel(f: FeedAge): string {
  const age = f.ageSeconds === null ? 'no snapshot time' : `${formatAge(f.ageSeconds)} old`;
  if (f.budgetSeconds === null) return `${t(f.name)} ${age}`;
  return `${t(f.name)} ${age} (${f.stale ? `STALE: over its ${formatBudget(f.budgetSeconds)} budget` : `budget ${formatBudget(f.budgetSeconds)}`})`;
}

export function renderTable(
  r: ScanResult & { quota?: { banner: string | null }; feeds?: FeedAge[]; freshness?: { warnings: string[]; clock: { ageFrom: string; behind: boolean } } },
  opts: { colour: boolean; showSuppressed?: boolean },
): string {
  const out: string[] = [];
  const s = r.summary;
  out.push(`Vulnerability DB ${t(r.dbVersion)} (activated ${r.dbActivatedAt})`);
  if (r.feeds?.length) out.push(`Feed ages: ${r.feeds.map(feedLabel).join(', ')}${r.freshness?.clock.behind ? ` (counted from ${r.freshness.clock.ageFrom}, the newest signed time)` : ''}`);
  for (const w of r.freshness?.warnings ?? []) out.push(`WARNING: ${t(w)}`);
  out.push(`SBOM: ${r.sbom.format} ${t(r.sbom.specVersion)}, ${s.components} components: ${s.checked} checked, ${s.notChecked} not checked`);
  out.push('');
  if (r.findings.length === 0) {
    out.push('No known vulnerabilities in the checked components.');
  } else {
    // KEV and EPSS columns when the kit carries them (some finding has one)
    const enriched = r.findings.some((f) => f.kev || f.epss);
    const rows = [['SEVERITY', 'CVSS', ...(enriched ? ['KEV', 'EPSS'] : []), 'PACKAGE', 'INSTALLED', 'FIXED IN', 'ADVISORY', 'SUMMARY']];
    for (const f of r.findings) {
      rows.push([
        f.severity,
        f.cvssScore === null ? '-' : f.cvssScore.toFixed(1),
        ...(enriched ? [kevLabel(f), epssLabel(f)] : []),
        truncate(f.ecosystem === 'npm' || f.ecosystem === 'CPE' ? f.package : `${f.package} (${f.ecosystem})`, 50),
        truncate(f.installedVersion, 24),
        f.fixedVersion ? truncate(f.fixedVersion, 24) : '-',
        advisoryLabel(f),
        truncate(f.summary ?? '', 60),
      ]);
    }
    out.push(table(rows, opts.colour ? (i) => COLOURS[r.findings[i]!.severity] : null));
    const counts = SEVERITIES.filter((sev) => s.bySeverity[sev] > 0).map((sev) => `${s.bySeverity[sev]} ${sev}`);
    out.push('');
    out.push(`${s.findings} finding${s.findings === 1 ? '' : 's'} in ${s.vulnerableComponents} component${s.vulnerableComponents === 1 ? '' : 's'}: ${counts.join(', ')}${kevSummary(r.findings)}`);
    const epssDates = [...new Set(r.findings.flatMap((f) => (f.epss ? [f.epss.date] : [])))].sort();
    const eu = r.findings.some((f) => f.kev?.catalogs?.includes('enisa'));
    if (s.kev || epssDates.length) out.push(`KEV: yes = known exploited (CISA), R = used in ransomware campaigns${eu ? ", EU = on ENISA's exploited list (EUVD)" : ''}; EPSS: probability of exploitation in 30 days (percentile)${epssDates.length ? `, scores of ${t(epssDates.join(', '))}` : ''}`);
  }
  const suppressed = r.suppressed ?? [];
  if (suppressed.length > 0) {
    out.push('');
    if (!opts.showSuppressed) {
      out.push(`${suppressed.length} finding${suppressed.length === 1 ? '' : 's'} suppressed by VEX statements (not_affected or fixed), not counted above: --show-suppressed lists them`);
    } else {
      out.push(`Suppressed by VEX (${suppressed.length}) — not counted above:`);
      const rows = [['STATUS', 'JUSTIFICATION', 'PACKAGE', 'INSTALLED', 'ADVISORY', 'STATEMENT']];
      for (const f of suppressed) {
        rows.push([f.vex?.status ?? '-', f.vex?.justification ?? '-', truncate(f.package, 50), truncate(f.installedVersion, 24), advisoryLabel(f), truncate(f.vex?.source ?? '', 70)]);
      }
      out.push(table(rows, null));
    }
  }
  if (r.notChecked.length > 0) {
    out.push('');
    out.push(`Not checked (${r.notChecked.length}) — these are NOT known to be clean:`);
    for (const n of r.notChecked.slice(0, 50)) {
      const what = n.purl ?? n.cpe ?? `${n.name}${n.version ? `@${n.version}` : ''}`;
      out.push(`  ${t(what)}${n.advisoryId ? ` [${t(n.advisoryId)}]` : ''}: ${t(n.reason)}`);
    }
    if (r.notChecked.length > 50) out.push(`  … and ${r.notChecked.length - 50} more (see --json)`);
  }
  if (r.quota?.banner) {
    out.push('');
    out.push(r.quota.banner);
  }
  return out.join('\n') + '\n';
}

/** A --fail-on value, upper-cased (GitHub's MODERATE is MEDIUM); USAGE for anything else. */
export function parseSeverity(v: string): Severity {
  const up = v.trim().toUpperCase();
  if (up === 'MODERATE') return 'MEDIUM';
  if (!(SEVERITIES as readonly string[]).includes(up)) throw new OukError('USAGE', `--fail-on ${v}: give one of ${SEVERITIES.join(', ')}, or kev`);
  return up as Severity;
}

/** What `--fail-on` and `--fail-on-epss` ask for: a severity, KEV membership, an EPSS score. */
export interface FailPolicy {
  severity: Severity | null;
  kev: boolean;
  /** fail on a finding whose EPSS score is at least this (0..1) */
  epss: number | null;
}

/**
 * `--fail-on` values (repeatable, or comma-separated): severities (the most
 * lenient one given wins) and `kev`; `--fail-on-epss` a score in 0..1.
 */
export function parseFailPolicy(failOn: readonly string[], failOnEpss: string | undefined): FailPolicy {
  let severity: Severity | null = null;
  let kev = false;
  for (const v of failOn.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)) {
    if (v.toLowerCase() === 'kev') {
      kev = true;
      continue;
    }
    const s = parseSeverity(v);
    if (!severity || SEVERITIES.indexOf(s) > SEVERITIES.indexOf(severity)) severity = s;
  }
  let epss: number | null = null;
  if (failOnEpss !== undefined) {
    epss = Number(failOnEpss);
    if (failOnEpss.trim() === '' || !Number.isFinite(epss) || epss < 0 || epss > 1) {
      throw new OukError('USAGE', `--fail-on-epss ${failOnEpss}: give an EPSS score between 0 and 1 (e.g. 0.5)`);
    }
  }
  return { severity, kev, epss };
}

/** The findings that break the policy, and why, for the exit message. */
export function policyFailures(findings: Finding[], p: FailPolicy): { findings: Finding[]; why: string[] } {
  const why: string[] = [];
  const bad = new Set<Finding>();
  const n = (k: number): string => `${k} finding${k === 1 ? '' : 's'}`;
  if (p.severity) {
    const hit = atOrAbove(findings, p.severity);
    if (hit.length) why.push(`${n(hit.length)} at or above ${p.severity} (--fail-on ${p.severity})`);
    hit.forEach((f) => bad.add(f));
  }
  if (p.kev) {
    const hit = findings.filter((f) => f.kev);
    if (hit.length) why.push(`${n(hit.length)} on CISA's KEV list or ENISA's exploited list (--fail-on kev)`);
    hit.forEach((f) => bad.add(f));
  }
  if (p.epss !== null) {
    const limit = p.epss;
    const hit = findings.filter((f) => f.epss && f.epss.score >= limit);
    if (hit.length) why.push(`${n(hit.length)} with an EPSS score of ${limit} or more (--fail-on-epss ${limit})`);
    hit.forEach((f) => bad.add(f));
  }
  return { findings: [...bad], why };
}

/**
 * Findings at or above `threshold`, in the order CRITICAL > HIGH > MEDIUM >
 * LOW > NONE > UNKNOWN (as Trivy and Grype rank them): an advisory without
 * any severity counts only for `--fail-on UNKNOWN`, which means "any finding".
 */
export function atOrAbove(findings: Finding[], threshold: Severity): Finding[] {
  const limit = SEVERITIES.indexOf(threshold);
  return findings.filter((f) => SEVERITIES.indexOf(f.severity) <= limit);
}
