/**
 * CVSS base scores and severity bands. Scores come from the feed where it gives
 * one (NVD's cvssData.baseScore) and are otherwise computed from the vector with
 * ae-cvss-calculator (metaeffekt's calculator: CVSS 2.0, 3.0, 3.1 and 4.0).
 * The advisory's headline severity is picked by source priority (see pickHeadline).
 */
import cvssCalculator from 'ae-cvss-calculator';
import type { CvssType, DatabaseSeverity, Severity } from './model.ts';

const { Cvss2, Cvss3P0, Cvss3P1, Cvss4P0 } = cvssCalculator;

/** Base score of a complete base vector, or null when the vector is incomplete or unreadable. */
export function computeBaseScore(type: CvssType, vector: string): number | null {
  try {
    const v = vector.trim();
    let calc;
    if (type === 'CVSS_V4') {
      if (!v.startsWith('CVSS:4.0/')) return null;
      calc = new Cvss4P0(v);
    } else if (type === 'CVSS_V3') {
      if (v.startsWith('CVSS:3.1/')) calc = new Cvss3P1(v);
      else if (v.startsWith('CVSS:3.0/')) calc = new Cvss3P0(v);
      else return null;
    } else {
      calc = new Cvss2(v.replace(/^\(|\)$/g, ''));
    }
    if (!calc.isBaseFullyDefined()) return null;
    const base = calc.calculateScores().base;
    return typeof base === 'number' && Number.isFinite(base) ? base : null;
  } catch {
    return null;
  }
}

export type SeverityBand = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'NONE';

/** The qualitative rating of a score: NVD's v2 bands for v2, the v3/v4 table otherwise. */
export function severityBand(type: CvssType, score: number): SeverityBand {
  if (type === 'CVSS_V2') return score >= 7 ? 'HIGH' : score >= 4 ? 'MEDIUM' : 'LOW';
  if (score === 0) return 'NONE';
  if (score < 4) return 'LOW';
  if (score < 7) return 'MEDIUM';
  if (score < 9) return 'HIGH';
  return 'CRITICAL';
}

/** GitHub's and other databases' labels mapped onto the bands; null for anything else. */
export function normaliseSeverityLabel(label: unknown): string | null {
  if (typeof label !== 'string') return null;
  const up = label.trim().toUpperCase();
  if (up === 'MODERATE') return 'MEDIUM';
  return ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'].includes(up) ? up : null;
}

/**
 * Priority of a severity entry for the headline (lower wins): NVD's primary
 * v3.1, then NVD's primary v3.0, then GHSA v3, OSV v3, a secondary (CNA) v3 in
 * NVD, then any v4, then v2.
 */
function rank(s: Severity): number {
  if (s.type === 'CVSS_V3') {
    if (s.source === 'nvd' && s.primary) return s.vector.startsWith('CVSS:3.1/') ? 0 : 1;
    if (s.source === 'ghsa') return 2;
    if (s.source === 'osv') return 3;
    return 4;
  }
  if (s.type === 'CVSS_V4') return s.source === 'nvd' && s.primary ? 5 : s.source === 'nvd' ? 7 : 6;
  return s.source === 'nvd' && s.primary ? 8 : 9;
}

export interface Headline {
  severity: string | null;
  score: number | null;
  vector: string | null;
}

/**
 * The advisory's headline: the best-ranked scored vector (ties: the higher score,
 * then the vector text), with its band; without any scored vector, the first
 * database label; else nothing.
 */
export function pickHeadline(severity: readonly Severity[], labels: readonly DatabaseSeverity[]): Headline {
  let best: Severity | null = null;
  for (const s of severity) {
    if (s.score === null) continue;
    if (!best) {
      best = s;
      continue;
    }
    const d = rank(s) - rank(best);
    if (d < 0 || (d === 0 && (s.score > best.score! || (s.score === best.score && s.vector < best.vector)))) best = s;
  }
  if (best) return { severity: severityBand(best.type, best.score!), score: best.score, vector: best.vector };
  const label = labels[0];
  return { severity: label ? label.severity : null, score: null, vector: null };
}
