/**
 * `scanSbom(pool, sbom)`: every advisory of the active DB that affects a
 * component of the SBOM, read from ONE snapshot (infra/db.ts
 * withActiveSnapshot: REPEATABLE READ, READ ONLY), so an import that
 * activates mid-scan is not seen. Each finding carries the DB version it was
 * matched against.
 *
 * A component is checked through its purl (OSV ecosystem and ordering, see
 * identify.ts and versions/), or through its CPE when it has no usable purl.
 * One that cannot be checked (no purl or CPE, unknown ecosystem, version that
 * does not parse, OS package without its distro release) is listed in
 * `notChecked` with the reason, never counted as clean; so is an advisory
 * whose range cannot be decided for a component (e.g. only GIT ranges).
 *
 * Each component gets at most one finding per vulnerability (dedupe.ts): the
 * advisory's primary id, with every other id of the vulnerability as aliases.
 */
import type { Pool } from 'pg';
import { withActiveSnapshot } from '../infra/db.ts';
import { matchCpeRow, parseCpe, type ParsedCpe } from './cpe.ts';
import { oneFindingPerVulnerability } from './dedupe.ts';
import { activeDbCache, type ActiveDbCache, type AdvisoryVerdict, type Candidate } from './active-db-cache.ts';
import { cachedCandidates, cachedEnrichment, cachedHeadlines, cachedTables, candidateKey } from './cached-reads.ts';
import { enrich } from './enrichment.ts';
import { identifyPurlCached, type Identity, lookupKeys } from './identify.ts';
import { type CpeMatchRow, type Headline, queryCpes } from './match.ts';
import { rangeCache } from './range-cache.ts';
import { evaluateCompiled } from './ranges.ts';
import type { Sbom, SbomComponent } from './sbom.ts';
import { SEVERITIES, type Finding, type NotChecked, type ScanResult, type Severity } from './findings.ts';
import { parse } from './versions/index.ts';
import { applyVex, kitVexStatements, type VexStatement } from './vex.ts';

export { SEVERITIES, type Finding, type NotChecked, type ScanResult, type ScanSummary, type Severity } from './findings.ts';

type PurlTarget = { c: SbomComponent; id: Extract<Identity, { ok: true }> };
type CpeTarget = { c: SbomComponent; cpe: ParsedCpe; version: string };

function severityOf(s: string | null): Severity {
  const up = (s ?? '').toUpperCase();
  return (SEVERITIES as readonly string[]).includes(up) ? (up as Severity) : 'UNKNOWN';
}

function skipped(c: SbomComponent, reason: string, advisoryId?: string): NotChecked {
  return { component: c.ref, name: c.name, version: c.version, purl: c.purl, cpe: c.cpe, reason, ...(advisoryId ? { advisoryId } : {}) };
}

/** Sorts findings: severity, then CVSS score (high first), package, advisory. */
export function sortFindings(findings: Finding[]): Finding[] {
  return findings.sort(
    (a, b) =>
      SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) ||
      (b.cvssScore ?? -1) - (a.cvssScore ?? -1) ||
      a.package.localeCompare(b.package) ||
      a.installedVersion.localeCompare(b.installedVersion) ||
      a.advisoryId.localeCompare(b.advisoryId),
  );
}

/** Components classified between two turns of the event loop: a large SBOM never starves health checks or other scans. */
const SLICE = 1000;
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

async function classify(sbom: Sbom): Promise<{ purls: PurlTarget[]; cpes: CpeTarget[]; notChecked: NotChecked[] }> {
  const purls: PurlTarget[] = [];
  const cpes: CpeTarget[] = [];
  const notChecked: NotChecked[] = [];
  let n = 0;
  for (const c of sbom.components) {
    if (++n % SLICE === 0) await yieldToLoop();
    if (c.problem) {
      notChecked.push(skipped(c, c.problem));
      continue;
    }
    let purlProblem: string | null = null;
    if (c.purl) {
      const id = identifyPurlCached(c.purl, c.version);
      if (id.ok) {
        const p = parse(id.ecosystem, id.version);
        if (p.ok) {
          purls.push({ c, id });
          continue;
        }
        purlProblem = `version "${id.version}" cannot be checked: ${p.reason}`;
      } else {
        purlProblem = id.reason;
      }
    }
    if (c.cpe) {
      const cpe = parseCpe(c.cpe);
      const version = cpe?.version ?? c.version;
      if (cpe && version && /^\d/.test(version)) {
        cpes.push({ c, cpe, version });
        continue;
      }
      const why = !cpe ? `unreadable CPE "${c.cpe}"` : `CPE without a checkable version (${version ?? 'none'})`;
      notChecked.push(skipped(c, purlProblem ? `${purlProblem}; ${why}` : why));
      continue;
    }
    notChecked.push(skipped(c, purlProblem ?? 'no purl or CPE identifies the package'));
  }
  return { purls, cpes, notChecked };
}

/** A finding whose headline fields (aliases, summary, severity, CVSS) are filled once its advisory's headline is read (queryHeadlines). */
type Match = Finding;

/** A match in the Finding's own shape (one object layout for all: the headline is filled in place). */
function match(m: Omit<Finding, 'aliases' | 'summary' | 'severity' | 'cvssScore' | 'cvssVector'>): Match {
  return {
    advisoryId: m.advisoryId,
    aliases: [],
    summary: null,
    severity: 'UNKNOWN',
    cvssScore: null,
    cvssVector: null,
    package: m.package,
    ecosystem: m.ecosystem,
    purl: m.purl,
    installedVersion: m.installedVersion,
    affectedRange: m.affectedRange,
    fixedVersion: m.fixedVersion,
    matchedBy: m.matchedBy,
    component: m.component,
    dbVersion: m.dbVersion,
    kev: null,
    epss: null,
  };
}
/** An advisory whose range could not be decided for a component. */
type Undecided = { c: SbomComponent; advisoryId: string; reason: string };

/** The verdicts of one installed version against its package's candidate rows, unaffected advisories left out. */
function verdictsOf(id: PurlTarget['id'], byKey: Map<string, Candidate[]>): AdvisoryVerdict[] {
  const verdicts = new Map<string, AdvisoryVerdict>();
  for (const key of lookupKeys(id)) {
    for (const row of byKey.get(candidateKey(key.ecosystem, key.package)) ?? []) {
      const prev = verdicts.get(row.advisory_id);
      if (prev?.range !== undefined) continue; // already affected through another entry
      const compiled = row.compiled === undefined ? (row.compiled = rangeCache.ranges(row.ecosystem, row.ranges)) : row.compiled;
      if (!compiled) {
        verdicts.set(row.advisory_id, { advisoryId: row.advisory_id, undecided: 'the DB row for this advisory is unreadable (ranges not a JSON array)' });
        continue;
      }
      // a long list most rows never need: parsed only when no range decides
      const v = evaluateCompiled(compiled, id.version, () => (row.compiledVersions === undefined ? (row.compiledVersions = rangeCache.versions(row.versions)) : row.compiledVersions));
      if (v.status === 'affected') verdicts.set(row.advisory_id, { advisoryId: row.advisory_id, range: v.range, fixed: v.fixed });
      else if (v.status === 'undetermined' && !prev) verdicts.set(row.advisory_id, { advisoryId: row.advisory_id, undecided: v.reason });
    }
  }
  return [...verdicts.values()];
}

/** What the verdicts of an installed version depend on, besides the DB: its package's lookup keys and the version. */
function verdictKey(id: PurlTarget['id']): string {
  let k = id.version;
  for (const key of lookupKeys(id)) k += `\u0001${key.ecosystem}\u0000${key.package}`;
  return k;
}

/**
 * An affected row's ranges and explicit versions come from the process's cache (range-cache.ts), parsed and
 * compiled once whatever the scan; the verdicts for a package's installed version, once a DB (active-db-cache.ts).
 */
function matchPurls(targets: PurlTarget[], byKey: Map<string, Candidate[]>, cache: ActiveDbCache, dbVersion: string, matches: Match[], undecided: Undecided[]): void {
  for (const { c, id } of targets) {
    const key = verdictKey(id);
    let verdicts = cache.verdicts.get(key);
    if (verdicts === undefined) {
      verdicts = verdictsOf(id, byKey);
      cache.verdicts.set(key, verdicts);
    }
    for (const v of verdicts) {
      if (v.range !== undefined) {
        matches.push(match({
          advisoryId: v.advisoryId,
          package: id.name,
          ecosystem: id.ecosystem,
          purl: c.purl,
          installedVersion: id.version,
          affectedRange: v.range,
          fixedVersion: v.fixed ?? null,
          matchedBy: 'purl',
          component: c.ref,
          dbVersion,
        }));
      } else if (v.undecided) {
        undecided.push({ c, advisoryId: v.advisoryId, reason: v.undecided });
      }
    }
  }
}

function matchCpes(targets: CpeTarget[], rows: CpeMatchRow[], dbVersion: string, matches: Match[]): void {
  const byKey = new Map<string, CpeMatchRow[]>();
  for (const r of rows) {
    const k = `${r.part}\u0000${r.vendor.toLowerCase()}\u0000${r.product.toLowerCase()}`;
    const list = byKey.get(k);
    if (list) list.push(r);
    else byKey.set(k, [r]);
  }
  for (const { c, cpe, version } of targets) {
    const seen = new Set<string>();
    for (const row of byKey.get(`${cpe.part}\u0000${cpe.vendor}\u0000${cpe.product}`) ?? []) {
      if (seen.has(row.advisory_id)) continue;
      const m = matchCpeRow(row, version, cpe.update);
      if (!m.affected) continue;
      seen.add(row.advisory_id);
      matches.push(match({
        advisoryId: row.advisory_id,
        package: `${row.vendor}:${row.product}`,
        ecosystem: 'CPE',
        purl: c.purl,
        installedVersion: version,
        affectedRange: m.range,
        fixedVersion: m.fixed,
        matchedBy: 'cpe',
        component: c.ref,
        dbVersion,
      }));
    }
  }
}

/** The findings of `matches` whose advisory has a headline (a withdrawn one has none). */
function withHeadlines(matches: Match[], headlines: Map<string, Headline>): Finding[] {
  const out: Finding[] = [];
  for (const m of matches) {
    const h = headlines.get(m.advisoryId);
    if (!h) continue;
    m.aliases = h.aliases.slice(); // the headline is the cache's (active-db-cache.ts): never shared with a result
    m.summary = h.summary;
    m.severity = severityOf(h.severity);
    m.cvssScore = h.cvss_score;
    m.cvssVector = h.cvss_vector;
    out.push(m);
  }
  return out;
}

function dedupe<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = key(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export interface ScanOptions {
  /** statements of `--vex` files, applied before the kit's own */
  vex?: VexStatement[];
}

export async function scanSbom(pool: Pool, sbom: Sbom, opts: ScanOptions = {}): Promise<ScanResult> {
  const { purls, cpes, notChecked } = await classify(sbom);
  const pairs = dedupe(purls.flatMap((t) => lookupKeys(t.id)), (p) => `${p.ecosystem}\u0000${p.package}`);
  const cpeKeys = dedupe(cpes.map((t) => ({ part: t.cpe.part, vendor: t.cpe.vendor, product: t.cpe.product })), (k) => `${k.part}\u0000${k.vendor}\u0000${k.product}`);

  const { active, matched, undecided, enrichment, kitVex } = await withActiveSnapshot(pool, async (client, active) => {
    // what an earlier scan of this same DB read is answered by the process's cache, the rest read here
    const cache = activeDbCache(pool, active);
    const byKey = await cachedCandidates(client, active.schema, pairs, cache);
    const cpeRows = await queryCpes(client, active.schema, cpeKeys);
    const tables = await cachedTables(client, active.schema, cache);
    // The kit's VEX for the candidates is read by PostgreSQL while the ranges are checked here (sent
    // now, awaited after); the headlines only for what matched, after the checks: reading them for
    // every candidate cost PostgreSQL about twice the time the checks take.
    const candidates = new Set<string>();
    for (const rows of byKey.values()) for (const r of rows) candidates.add(r.advisory_id);
    for (const r of cpeRows) candidates.add(r.advisory_id);
    const kitVexP = kitVexStatements(client, active.schema, [...candidates], tables.vex);
    kitVexP.catch(() => undefined); // awaited below; a failure must not be an unhandled rejection meanwhile
    const matches: Match[] = [];
    const undecidedRows: Undecided[] = [];
    for (let i = 0; i < purls.length; i += SLICE) {
      await yieldToLoop();
      matchPurls(purls.slice(i, i + SLICE), byKey, cache, active.version, matches, undecidedRows);
    }
    await yieldToLoop();
    matchCpes(cpes, cpeRows, active.version, matches);
    const headlines = await cachedHeadlines(client, active.schema, [...matches.map((m) => m.advisoryId), ...undecidedRows.map((u) => u.advisoryId)], cache);
    const matched = withHeadlines(matches, headlines);
    const ids = new Set<string>();
    for (const f of matched) for (const id of [f.advisoryId, ...f.aliases]) ids.add(id);
    return {
      active,
      matched,
      undecided: undecidedRows.filter((u) => headlines.has(u.advisoryId)).map((u) => skipped(u.c, u.reason, u.advisoryId)),
      enrichment: await cachedEnrichment(client, active.schema, ids, tables, cache),
      kitVex: await kitVexP,
    };
  });

  const components = new Map(sbom.components.map((c) => [c.ref, c]));
  const vexed = applyVex(oneFindingPerVulnerability(matched).map((f) => enrich(f, enrichment)), [...(opts.vex ?? []), ...kitVex], components, sbom.subject);
  const findings = sortFindings(vexed.findings);
  const suppressed = sortFindings(vexed.suppressed);

  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) bySeverity[f.severity]++;
  return {
    dbVersion: active.version,
    dbActivatedAt: new Date(active.activatedAt).toISOString(),
    sbom: { format: sbom.format, specVersion: sbom.specVersion },
    findings,
    suppressed,
    notChecked: [...notChecked, ...undecided],
    summary: {
      components: sbom.components.length,
      checked: purls.length + cpes.length,
      notChecked: notChecked.length,
      undecided: undecided.length,
      findings: findings.length,
      vulnerableComponents: new Set(findings.map((f) => f.component)).size,
      bySeverity,
      kev: findings.filter((f) => f.kev).length,
      suppressed: suppressed.length,
    },
  };
}
