/**
 * Stored SBOMs and their re-scan after every activation.
 *
 *   addSbom      validates and stores an SBOM under a name, and scans it once
 *                against the active DB (no quota: stored SBOMs are the site's own)
 *   planRescans  what the newest activation needs: one job per stored SBOM
 *                without a result for it; after a delta, each job carries the
 *                SBOM's lookup keys the delta touched (packages of the
 *                advisories, KEV, EPSS and VEX rows it changed)
 *   rescanSbom   one job: scan the stored SBOM at the newest activation, diff
 *                against its previous result, write result and diff in ONE
 *                transaction. After a delta only the components with a
 *                touched key are scanned and merged into the previous
 *                findings (none touched: the result is carried forward), so
 *                the cost grows with the SBOMs and the rows the delta
 *                touched, not with the DB or the SBOM's size.
 *                Idempotent: a result for (SBOM, activation) already there
 *                means nothing is done; a job for an activation that is no
 *                longer the newest does nothing either (the newer one's job
 *                covers it)
 *   diffFindings added, removed and changed findings between two results
 *
 * The matcher is scan/'s, passed in (`SbomScanner`, scan/stored.ts): a
 * function never imports the scanner, so it runs under a worker, the API or
 * the CLI with whatever scanner it is given.
 */
import { OukError } from '../../lib/errors.ts';
import { SEVERITIES, severityRank } from '../../lib/severity.ts';
import { excerpt } from '../../lib/terminal-text.ts';
import type { Logger } from '../../lib/logger.ts';
import { withTransaction, type Pool } from '../../infra/db.ts';
import {
  getSbom,
  getSbomDocument,
  insertResult,
  insertSbom,
  resultFor,
  resultSeqBefore,
  sbomsTouching,
  sbomsWithoutResult,
  touchedKeys,
  upsertDiff,
  type SbomCounts,
  type SbomResultRow,
} from '../../infra/sboms.ts';
import { undoSchemaFor } from '../context.ts';
import { activationBefore, latestActivation, type ActivationRef } from '../../infra/activations.ts';

/** What a diff reads of a finding (scan/findings.ts Finding has all of it and more). */
export interface RescanFinding {
  advisoryId: string;
  aliases: string[];
  component: string;
  purl: string | null;
  severity: string;
  dbVersion: string;
  kev?: { cve: string } | null;
  epss?: { score: number } | null;
}

/** What the scanner reports for one SBOM (scan/scan.ts ScanResult has all of it). */
export interface ScanOutcome<F extends RescanFinding = RescanFinding> {
  dbVersion: string;
  findings: F[];
  summary: { findings: number; bySeverity: Record<string, number>; kev: number };
}

export interface InspectedSbom {
  format: string;
  specVersion: string;
  components: number;
  /** lookup keys of its components: affected.package values and `cpe:<vendor>:<product>` */
  packageKeys: string[];
}

export interface SbomScanner<F extends RescanFinding = RescanFinding> {
  /** Reads a document as `stella scan` does; SBOM_INVALID / SBOM_TOO_LARGE when it is not one. */
  inspect(document: unknown): InspectedSbom;
  /**
   * Scans a document against the active DB, in one snapshot; no quota. With
   * `only`, just the components with one of those lookup keys, named in
   * `scannedComponents` (null: all of them).
   */
  scan(document: unknown, only?: ReadonlySet<string>): Promise<ScanOutcome<F> & { scannedComponents: string[] | null }>;
}

export interface RescanDeps<F extends RescanFinding = RescanFinding> {
  pool: Pool;
  scanner: SbomScanner<F>;
  logger: Logger;
  now(): Date;
}

/**
 * The re-scan job's payload: which SBOM against which activation. After a
 * delta, `incremental`: the activation just before it and the SBOM's lookup
 * keys the delta touched — only those components are scanned again, merged
 * into the result of `from` (none: carried forward). Without a result for
 * `from`, the whole SBOM is scanned.
 */
export interface RescanPayload {
  sbom: string;
  activationSeq: number;
  incremental?: { from: number; keys: string[] };
}

export interface FindingChange<F extends RescanFinding = RescanFinding> {
  finding: F;
  before: { severity: string; kev: boolean; epss: number | null };
  after: { severity: string; kev: boolean; epss: number | null };
}

export interface FindingsDiff<F extends RescanFinding = RescanFinding> {
  added: F[];
  removed: F[];
  changed: FindingChange<F>[];
}

export interface RescanResult {
  sbom: string;
  activationSeq: number;
  dbVersion: string;
  /** scanned whole, partly (the components a delta touched), carried forward (none touched), already there, superseded by a newer activation, or the SBOM was removed */
  outcome: 'scanned' | 'partial' | 'carried' | 'already' | 'superseded' | 'gone';
  /** components scanned */
  scannedComponents: number | null;
  findings: number;
  added: number;
  removed: number;
  changed: number;
  /** new findings per severity (what ouk_rescan_new_findings_total counts) */
  newBySeverity: Record<string, number>;
  seconds: number;
}

/** Names usable in a job id and a URL: letters, digits, `.`, `_`, `-`, at most 128. */
export const SBOM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkSbomName(name: string): string {
  if (!SBOM_NAME.test(name)) {
    // the name is outside input: echoed as a short, escaped excerpt, never whole
    throw new OukError('USAGE', `SBOM name "${excerpt(String(name), 40)}" is not usable: give 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

export function sbomNotFound(name: string): OukError {
  return new OukError('SBOM_NOT_FOUND', `no stored SBOM is named ${name}: \`stella sbom list\` shows them`);
}

const rank = (f: RescanFinding): number => severityRank(f.severity);

const keyOf = (f: RescanFinding): string => `${f.component}\u0000${f.advisoryId}`;
const facts = (f: RescanFinding): FindingChange['before'] => ({ severity: f.severity, kev: Boolean(f.kev), epss: f.epss?.score ?? null });

/**
 * What changed from `before` to `after`. A finding is the same when its
 * component (bom-ref / SPDXID) and vulnerability id match — or, when a new DB
 * names the same vulnerability by another primary id (an alias became the
 * primary), when the component matches and their id sets overlap. Same
 * finding, other severity, KEV membership or EPSS score: `changed`.
 */
export function diffFindings<F extends RescanFinding>(before: F[], after: F[]): FindingsDiff<F> {
  const old = new Map(before.map((f) => [keyOf(f), f]));
  const added: F[] = [];
  const changed: FindingChange<F>[] = [];
  const pairs: Array<[F, F]> = [];
  for (const f of after) {
    const o = old.get(keyOf(f));
    if (o) {
      old.delete(keyOf(f));
      pairs.push([o, f]);
    } else added.push(f);
  }
  // Renamed: the same vulnerability of the same component under another primary id.
  const stillAdded: F[] = [];
  for (const f of added) {
    const ids = new Set([f.advisoryId, ...f.aliases]);
    const match = [...old.values()].find((o) => o.component === f.component && [o.advisoryId, ...o.aliases].some((id) => ids.has(id)));
    if (match) {
      old.delete(keyOf(match));
      pairs.push([match, f]);
    } else stillAdded.push(f);
  }
  for (const [o, f] of pairs) {
    const b = facts(o);
    const a = facts(f);
    if (b.severity !== a.severity || b.kev !== a.kev || b.epss !== a.epss) changed.push({ finding: f, before: b, after: a });
  }
  return { added: stillAdded, removed: [...old.values()], changed };
}

function countsOf(o: ScanOutcome): SbomCounts {
  return { findings: o.summary.findings, bySeverity: o.summary.bySeverity, kev: o.summary.kev };
}

/** Counts of a merged findings list, in the scan summary's terms. */
function countFindings(findings: RescanFinding[]): SbomCounts {
  const bySeverity = Object.fromEntries(SEVERITIES.map((sev) => [sev, 0])) as Record<string, number>;
  for (const f of findings) bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1;
  return { findings: findings.length, bySeverity, kev: findings.filter((f) => f.kev).length };
}

function bySeverity(findings: RescanFinding[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of findings) out[f.severity] = (out[f.severity] ?? 0) + 1;
  return out;
}

/**
 * Scans `document` at the newest activation: the activation is read before and
 * after the scan's own snapshot, so the findings are known to belong to it.
 * Null when nothing is active, `moved` when an activation committed meanwhile.
 */
async function scanAtActivation<F extends RescanFinding>(
  deps: RescanDeps<F>,
  document: unknown,
  only?: ReadonlySet<string>,
): Promise<{ activation: ActivationRef; outcome: ScanOutcome<F> & { scannedComponents: string[] | null }; seconds: number } | 'moved' | null> {
  const before = await latestActivation(deps.pool);
  if (!before) return null;
  const t0 = performance.now();
  const outcome = await deps.scanner.scan(document, only);
  const seconds = (performance.now() - t0) / 1000;
  const after = await latestActivation(deps.pool);
  if (after?.seq !== before.seq) return 'moved';
  return { activation: before, outcome, seconds };
}

export interface AddSbomInput {
  name: string;
  document: unknown;
  /** bytes of the document as received (bounded by `maxBytes`) */
  bytes: number;
  maxBytes: number;
  replace?: boolean;
  addedBy?: string | null;
}

export interface AddSbomResult {
  name: string;
  state: 'inserted' | 'replaced';
  format: string;
  specVersion: string;
  components: number;
  /** the first scan, or null when no DB is active yet (the first activation scans it) */
  scan: { dbVersion: string; activationSeq: number; counts: SbomCounts } | null;
}

/** Stores an SBOM (USAGE for a bad name, SBOM_INVALID/SBOM_TOO_LARGE for a bad document, SBOM_EXISTS unless `replace`), then scans it once. */
export async function addSbom<F extends RescanFinding>(deps: RescanDeps<F>, input: AddSbomInput): Promise<AddSbomResult> {
  const name = checkSbomName(input.name);
  if (input.bytes > input.maxBytes) {
    throw new OukError('SBOM_TOO_LARGE', `the SBOM is ${input.bytes} bytes, above the ${input.maxBytes}-byte limit (STELLA_SCAN_MAX_BYTES): split it (one SBOM per image or application)`);
  }
  const info = deps.scanner.inspect(input.document);
  const now = deps.now();
  const state = await insertSbom(
    deps.pool,
    { name, format: info.format, specVersion: info.specVersion, document: input.document, docBytes: input.bytes, components: info.components, packageKeys: info.packageKeys, addedBy: input.addedBy ?? null, now },
    input.replace ?? false,
  );
  if (state === 'exists') throw new OukError('SBOM_EXISTS', `an SBOM named ${name} is stored already: choose another name, or replace it (\`stella sbom add FILE --name ${name} --replace\`)`);
  const base = { name, state, format: info.format, specVersion: info.specVersion, components: info.components };
  // An activation committing during the scan: scan again (its own re-scan job skips an SBOM with a result).
  let scanned = await scanAtActivation(deps, input.document);
  for (let i = 0; scanned === 'moved' && i < 3; i++) scanned = await scanAtActivation(deps, input.document);
  if (scanned === 'moved') throw new OukError('SCAN_BUSY', `activations kept changing the DB while ${name} was scanned; it is stored, and the next re-scan covers it`, { retryable: true });
  if (!scanned) {
    deps.logger.info({ sbom: name }, 'SBOM stored; no DB is active yet, the first activation scans it');
    return { ...base, scan: null };
  }
  const counts = countsOf(scanned.outcome);
  await insertResult(deps.pool, {
    sbom: name,
    activationSeq: scanned.activation.seq,
    dbVersion: scanned.outcome.dbVersion,
    findings: scanned.outcome.findings,
    counts,
    scanned: true,
    seconds: scanned.seconds,
    computedAt: now,
  });
  deps.logger.info({ sbom: name, dbVersion: scanned.outcome.dbVersion, findings: counts.findings }, 'SBOM stored and scanned');
  return { ...base, scan: { dbVersion: scanned.outcome.dbVersion, activationSeq: scanned.activation.seq, counts } };
}

export interface RescanPlan {
  activation: ActivationRef | null;
  jobs: RescanPayload[];
  /** SBOMs the activation cannot have changed (a delta that touched none of their packages) */
  carried: number;
}

/**
 * The re-scans the newest activation needs: every stored SBOM without a result
 * for it. After a delta (not after a full import or a rollback, whose undo data
 * is gone by then), an SBOM whose packages the delta did not touch gets
 * `carryFrom`: its result is copied forward without a scan, if its previous
 * result is for the activation just before.
 */
export async function planRescans(pool: Pool): Promise<RescanPlan> {
  const activation = await latestActivation(pool);
  if (!activation) return { activation: null, jobs: [], carried: 0 };
  const names = await sbomsWithoutResult(pool, activation.seq);
  if (names.length === 0) return { activation, jobs: [], carried: 0 };
  let delta: { from: number; touched: Map<string, string[]> } | null = null;
  if (activation.action === 'activate' && activation.kind === 'delta' && activation.importId) {
    const prev = await activationBefore(pool, activation.seq);
    const keys = prev ? await touchedKeys(pool, undoSchemaFor(activation.importId), activation.schema) : null;
    if (prev && keys) delta = { from: prev.seq, touched: await sbomsTouching(pool, names, keys) };
  }
  const jobs = names.map((sbom): RescanPayload =>
    delta ? { sbom, activationSeq: activation.seq, incremental: { from: delta.from, keys: delta.touched.get(sbom) ?? [] } } : { sbom, activationSeq: activation.seq },
  );
  return { activation, jobs, carried: delta ? names.filter((n) => !delta.touched.has(n)).length : 0 };
}

/** One re-scan job (see the module comment). */
export async function rescanSbom<F extends RescanFinding>(deps: RescanDeps<F>, p: RescanPayload): Promise<RescanResult> {
  const t0 = performance.now();
  const done = (outcome: RescanResult['outcome'], extra: Partial<RescanResult> = {}): RescanResult => ({
    sbom: p.sbom,
    activationSeq: p.activationSeq,
    dbVersion: '',
    outcome,
    scannedComponents: null,
    findings: 0,
    added: 0,
    removed: 0,
    changed: 0,
    newBySeverity: {},
    seconds: (performance.now() - t0) / 1000,
    ...extra,
  });
  if (!(await getSbom(deps.pool, p.sbom))) return done('gone');
  const have = await resultFor<F>(deps.pool, p.sbom, p.activationSeq);
  if (have) return done('already', { dbVersion: have.dbVersion, findings: have.counts.findings });
  const current = await latestActivation(deps.pool);
  if (!current || current.seq !== p.activationSeq) return done('superseded');

  // The new result: from the activation before (only the components a delta touched scanned again), or a whole scan.
  let next: SbomResultRow<F>;
  let outcome: 'scanned' | 'partial' | 'carried';
  let scannedComponents: number | null = null;
  const base = p.incremental ? await resultFor<F>(deps.pool, p.sbom, p.incremental.from) : null;
  if (base && p.incremental && p.incremental.keys.length === 0) {
    outcome = 'carried';
    scannedComponents = 0;
    next = {
      ...base,
      activationSeq: current.seq,
      dbVersion: current.version,
      findings: base.findings.map((f) => ({ ...f, dbVersion: current.version })),
      scanned: false,
      seconds: 0,
      computedAt: deps.now(),
    };
  } else {
    const document = await getSbomDocument(deps.pool, p.sbom);
    if (document === undefined) return done('gone');
    const only = base && p.incremental ? new Set(p.incremental.keys) : undefined;
    const s = await scanAtActivation(deps, document, only);
    if (!s || s === 'moved' || s.activation.seq !== p.activationSeq) return done('superseded');
    if (base && s.outcome.scannedComponents) {
      // The components scanned again replace their findings; every other one keeps its own.
      const rescanned = new Set(s.outcome.scannedComponents);
      const kept = base.findings.filter((f) => !rescanned.has(f.component)).map((f) => ({ ...f, dbVersion: s.outcome.dbVersion }));
      const findings = [...kept, ...s.outcome.findings].sort((a, b) => rank(a) - rank(b));
      outcome = 'partial';
      scannedComponents = rescanned.size;
      next = { sbom: p.sbom, activationSeq: s.activation.seq, dbVersion: s.outcome.dbVersion, findings, counts: countFindings(findings), scanned: true, seconds: s.seconds, computedAt: deps.now() };
    } else {
      outcome = 'scanned';
      next = {
        sbom: p.sbom,
        activationSeq: s.activation.seq,
        dbVersion: s.outcome.dbVersion,
        findings: s.outcome.findings,
        counts: countsOf(s.outcome),
        scanned: true,
        seconds: s.seconds,
        computedAt: deps.now(),
      };
    }
  }

  // One transaction, the SBOM row locked: the result, then the diff against the one before it
  // (a gone SBOM or a result already there writes nothing).
  const written = await withTransaction(deps.pool, async (client) => {
    if (!(await getSbom(client, p.sbom, true))) return 'gone' as const;
    if (!(await insertResult(client, next))) return 'already' as const;
    // The result before is usually `base`, read already: read it again only when it is another one.
    const prevSeq = await resultSeqBefore(client, p.sbom, next.activationSeq);
    const prev = prevSeq === null ? null : base?.activationSeq === prevSeq ? base : await resultFor<F>(client, p.sbom, next.activationSeq, true);
    const diff: FindingsDiff<F> = prev ? diffFindings(prev.findings, next.findings) : { added: [], removed: [], changed: [] };
    if (prev) {
      await upsertDiff(client, {
        sbom: p.sbom,
        fromSeq: prev.activationSeq,
        fromVersion: prev.dbVersion,
        toSeq: next.activationSeq,
        toVersion: next.dbVersion,
        added: diff.added,
        removed: diff.removed,
        changed: diff.changed,
        computedAt: next.computedAt,
      });
    }
    return diff;
  });
  if (written === 'gone') return done('gone');
  if (written === 'already') return done('already', { dbVersion: next.dbVersion, findings: next.counts.findings });
  const diff = written;
  const result = done(outcome, {
    scannedComponents,
    dbVersion: next.dbVersion,
    findings: next.counts.findings,
    added: diff.added.length,
    removed: diff.removed.length,
    changed: diff.changed.length,
    newBySeverity: bySeverity(diff.added),
  });
  deps.logger.info({ sbom: p.sbom, activation: p.activationSeq, dbVersion: next.dbVersion, outcome: result.outcome, added: result.added, removed: result.removed, changed: result.changed }, 'SBOM re-scanned');
  return result;
}
