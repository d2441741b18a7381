/** The severities a finding can have, most severe first: the one order every report, count and threshold uses. */
export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'NONE', 'UNKNOWN'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A severity's place in SEVERITIES (0 most severe); an unknown text sorts after every severity. */
export function severityRank(severity: string): number {
  const i = (SEVERITIES as readonly string[]).indexOf(severity);
  return i < 0 ? SEVERITIES.length : i;
}
