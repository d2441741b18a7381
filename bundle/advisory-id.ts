/**
 * Which id names a vulnerability, shared by the builder (the primary id of a
 * merged advisory) and the scanner (the id a finding is reported under).
 *
 * A vulnerability is a connected component of ids joined by aliases; its
 * primary id is the component's first id in this order:
 *
 *   1. CVE ids, oldest first: by year, then by number (CVE-2021-9999 before
 *      CVE-2021-10000);
 *   2. GitHub advisories (GHSA-…), bytewise;
 *   3. every other id (GO-…, PYSEC-…, DSA-…, ALBA-…), bytewise.
 *
 * The order is total and depends on the ids alone, so the same feeds always
 * give the same primary id, whatever order they are read in.
 */

const CVE_RE = /^CVE-(\d{4})-(\d{4,})$/;

export function isCveId(id: string): boolean {
  return CVE_RE.test(id);
}

function rank(id: string): number {
  if (CVE_RE.test(id)) return 0;
  if (id.startsWith('GHSA-')) return 1;
  return 2;
}

function bytewise(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** <0 when `a` is preferred over `b` as the primary id. */
export function comparePrimaryPreference(a: string, b: string): number {
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  if (rank(a) === 0) {
    const x = CVE_RE.exec(a)!;
    const y = CVE_RE.exec(b)!;
    const year = Number(x[1]) - Number(y[1]);
    if (year !== 0) return year;
    const nx = x[2]!.replace(/^0+(?=\d)/, '');
    const ny = y[2]!.replace(/^0+(?=\d)/, '');
    if (nx.length !== ny.length) return nx.length - ny.length;
    if (nx !== ny) return nx < ny ? -1 : 1;
  }
  return bytewise(a, b);
}

/** The primary id among `ids` (at least one). */
export function primaryId(ids: Iterable<string>): string {
  let best: string | null = null;
  for (const id of ids) if (best === null || comparePrimaryPreference(id, best) < 0) best = id;
  if (best === null) throw new Error('primaryId: no ids');
  return best;
}
