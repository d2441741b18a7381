/**
 * What `stella sbom diff|status|list` and GET /api/v1/sboms[/NAME/diff]
 * answer, read from PostgreSQL (infra/sboms.ts): the newest diff of one SBOM,
 * and every SBOM with its counts, DB version and newest changes.
 *
 * Diff JSON: {"sbom", "state": "diff" | "first-scan" | "not-scanned",
 *   "from", "to" (DB versions), "fromActivation", "toActivation",
 *   "computedAt", "added": [finding…], "removed": [finding…],
 *   "changed": [{"finding", "before": {severity, kev, epss}, "after": {…}}]}
 * — findings in the shape `stella scan --json` prints them.
 */
import type { Pool } from '../../infra/db.ts';
import { getDiff, getSbom, latestResult, sbomOverview, type SbomOverview } from '../../infra/sboms.ts';
import { latestActivation } from '../../infra/activations.ts';
import { checkSbomName, sbomNotFound, type FindingChange, type RescanFinding } from './rescan.ts';

export interface SbomDiffReport<F extends RescanFinding = RescanFinding> {
  sbom: string;
  /** diff: a diff between two results; first-scan: one result so far; not-scanned: none (no DB active yet) */
  state: 'diff' | 'first-scan' | 'not-scanned';
  from: string | null;
  to: string | null;
  fromActivation: number | null;
  toActivation: number | null;
  computedAt: string | null;
  added: F[];
  removed: F[];
  changed: FindingChange<F>[];
}

export async function readDiff<F extends RescanFinding = RescanFinding>(pool: Pool, name: string): Promise<SbomDiffReport<F>> {
  checkSbomName(name);
  if (!(await getSbom(pool, name))) throw sbomNotFound(name);
  const d = await getDiff<F, FindingChange<F>>(pool, name);
  if (d) {
    return {
      sbom: name,
      state: 'diff',
      from: d.fromVersion,
      to: d.toVersion,
      fromActivation: d.fromSeq,
      toActivation: d.toSeq,
      computedAt: d.computedAt.toISOString(),
      added: d.added,
      removed: d.removed,
      changed: d.changed,
    };
  }
  const r = await latestResult<F>(pool, name);
  return {
    sbom: name,
    state: r ? 'first-scan' : 'not-scanned',
    from: null,
    to: r?.dbVersion ?? null,
    fromActivation: null,
    toActivation: r?.activationSeq ?? null,
    computedAt: r ? r.computedAt.toISOString() : null,
    added: [],
    removed: [],
    changed: [],
  };
}

export interface SbomStatusReport {
  /** the newest activation: what every SBOM's result should be for */
  active: { activation: number; dbVersion: string } | null;
  sboms: Array<
    Omit<SbomOverview, 'packageKeys' | 'createdAt' | 'updatedAt' | 'latest' | 'diff'> & {
      createdAt: string;
      /** true while its re-scan for the newest activation has not written a result */
      pending: boolean;
      latest: (Omit<NonNullable<SbomOverview['latest']>, 'computedAt'> & { computedAt: string }) | null;
      diff: (Omit<NonNullable<SbomOverview['diff']>, 'computedAt'> & { computedAt: string }) | null;
    }
  >;
}

export async function readStatus(pool: Pool): Promise<SbomStatusReport> {
  const activation = await latestActivation(pool);
  const rows = await sbomOverview(pool);
  return {
    active: activation ? { activation: activation.seq, dbVersion: activation.version } : null,
    sboms: rows.map(({ packageKeys: _keys, createdAt, updatedAt: _u, latest, diff, ...s }) => ({
      ...s,
      createdAt: createdAt.toISOString(),
      pending: activation !== null && latest?.activationSeq !== activation.seq,
      latest: latest ? { ...latest, computedAt: latest.computedAt.toISOString() } : null,
      diff: diff ? { ...diff, computedAt: diff.computedAt.toISOString() } : null,
    })),
  };
}
