/**
 * CPE matching for components that carry a CPE but no usable purl, against
 * the `cpes` table (NVD configurations, flattened; only `vulnerable` entries
 * count). Vendor and product must be equal (case-insensitive, CPE escaping
 * kept as NVD writes it); then the version: a criteria naming one version
 * matches that version (and its update, when it names one); a criteria with
 * "*" matches within its start/end bounds (or every version without any).
 *
 * NVD versions follow no single scheme: SemVer-shaped pairs compare by SemVer
 * precedence, anything else by rpmvercmp's natural order (digit runs as
 * numbers, letter runs as text). A version that does not start with a digit
 * is not checked. NVD's AND-configurations (vulnerable only on some platform)
 * are not modelled: a product match is reported even when the platform part
 * is unknown, which errs on the side of a finding.
 */
import { splitCpe } from '../bundle/cpe.ts';
import { compareSemverLike } from './versions/semver.ts';
import { rpmvercmp } from './versions/rpm.ts';

export interface ParsedCpe {
  part: string;
  vendor: string;
  product: string;
  /** null for "*", "-" or empty */
  version: string | null;
  update: string | null;
}

const ANY = (v: string | undefined): boolean => v === undefined || v === '' || v === '*' || v === '-';

function unescape(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

/** cpe:2.3 formatted strings and cpe:/ URIs (2.2); null when neither. */
export function parseCpe(text: string): ParsedCpe | null {
  const s = text.trim();
  if (s.toLowerCase().startsWith('cpe:2.3:')) {
    const p = splitCpe(s);
    if (p.length < 6 || !p[2] || !p[3] || !p[4]) return null;
    return {
      part: p[2].toLowerCase(),
      vendor: p[3].toLowerCase(),
      product: p[4].toLowerCase(),
      version: ANY(p[5]) ? null : unescape(p[5]!),
      update: ANY(p[6]) ? null : unescape(p[6]!),
    };
  }
  if (s.toLowerCase().startsWith('cpe:/')) {
    const p = s.slice(5).split(':').map((x) => decodeURIComponent(x));
    if (p.length < 3 || !p[0] || !p[1] || !p[2]) return null;
    // 2.2 binds "::" inside names as-is; re-escape colons the way 2.3 strings carry them
    const esc = (x: string) => x.replace(/[\\:]/g, '\\$&').toLowerCase();
    return { part: p[0].toLowerCase(), vendor: esc(p[1]), product: esc(p[2]), version: ANY(p[3]) ? null : p[3]!, update: ANY(p[4]) ? null : p[4]! };
  }
  return null;
}

const SEMVERISH = /^v?\d+(\.\d+)*([-+][0-9A-Za-z.+-]*)?$/;

/** Ordering for NVD versions (see the file comment). */
export function compareCpeVersions(a: string, b: string): number {
  if (SEMVERISH.test(a) && SEMVERISH.test(b)) return Math.sign(compareSemverLike(a, b, 16));
  return rpmvercmp(a, b);
}

export interface CpeRow {
  criteria: string;
  version_start_including: string | null;
  version_start_excluding: string | null;
  version_end_including: string | null;
  version_end_excluding: string | null;
}

export type CpeVerdict = { affected: true; range: string; fixed: string | null } | { affected: false };

/** Whether `version` (with CPE update `update`) falls under one `cpes` row. */
export function matchCpeRow(row: CpeRow, version: string, update: string | null): CpeVerdict {
  const c = parseCpe(row.criteria);
  if (!c) return { affected: false };
  if (c.version !== null) {
    if (compareCpeVersions(version, c.version) !== 0) return { affected: false };
    if (c.update !== null && (update ?? '').toLowerCase() !== c.update.toLowerCase()) return { affected: false };
    return { affected: true, range: `=${c.version}${c.update ? ` ${c.update}` : ''}`, fixed: null };
  }
  const parts: string[] = [];
  const check = (bound: string | null, op: string, ok: (d: number) => boolean): boolean => {
    if (bound === null) return true;
    parts.push(`${op}${bound}`);
    return ok(compareCpeVersions(version, bound));
  };
  const inside =
    check(row.version_start_including, '>=', (d) => d >= 0) &&
    check(row.version_start_excluding, '>', (d) => d > 0) &&
    check(row.version_end_including, '<=', (d) => d <= 0) &&
    check(row.version_end_excluding, '<', (d) => d < 0);
  if (!inside) return { affected: false };
  return { affected: true, range: parts.length ? parts.join(', ') : 'all versions', fixed: row.version_end_excluding };
}
