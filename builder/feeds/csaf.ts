/**
 * CSAF 2.0 documents (`csaf/**.json`: advisories and VEX of CERTs and vendors —
 * BSI/CERT-Bund, CERT@VDE, Siemens, Red Hat, CISA) into the normalised model:
 * one record per vulnerability of a document, with the CVE as its id (so it
 * merges by CVE with NVD, OSV and GHSA) and the document's publisher and
 * tracking id as its source.
 *
 * CSAF names product versions, not ranges, for most vendors. What is mapped,
 * per product with a `product_identification_helper`:
 *
 *   status                              purl (language ecosystem)         CPE
 *   known/first/last_affected           version -> affected `versions`    version -> cpes row for that version
 *                                       range  -> OSV range               range -> cpes row with start/end bounds
 *   fixed, first_fixed (VEX documents)  a VEX statement `fixed` for the product (the kit's vex table)
 *   known_not_affected (VEX documents)  a VEX statement `not_affected`, with the product's flag as justification
 *
 * A range is a `product_version_range` branch (a `vers:` string, or `<X`,
 * `<=X`, `>=A|<B` as free text) or a purl's `vers` qualifier. Not mapped,
 * because it would claim more than the document says: a product with neither
 * purl nor CPE (model numbers, names only), a purl or CPE with no version and
 * no range (it would mark every version), a purl of an ecosystem the scanner
 * does not order (rpm, deb and apk without a known distro release, tcpkg,
 * cpan, oci: their statements still become VEX statements), and a range that
 * does not parse. `recommended` and `under_investigation` are not statuses of
 * a product's state.
 */
import { PackageURL } from 'packageurl-js';
import { AFFECTED_STATUSES, csafInfo, csafProducts, csafVulnerabilities, FIXED_STATUSES, isCsafVex, type CsafProduct, type CsafStatement } from '../../bundle/csaf.ts';
import { splitCpe } from '../../bundle/cpe.ts';
import { computeBaseScore } from '../cvss.ts';
import type { Affected, Cpe, Range, RangeEvent, Reference, Severity, SourceRecord, VexStatement } from '../model.ts';
import { cweIds, purlWithoutVersion } from './osv.ts';
import { isObject, isoTime, type Json, type JsonObject } from './fields.ts';

/** purl type -> OSV ecosystem and how the package name is spelled there. */
const PURL_ECOSYSTEMS: Record<string, { ecosystem: string; name: (ns: string | null, name: string) => string | null }> = {
  npm: { ecosystem: 'npm', name: (ns, n) => (ns ? `${ns}/${n}` : n) },
  pypi: { ecosystem: 'PyPI', name: (_ns, n) => n },
  maven: { ecosystem: 'Maven', name: (ns, n) => (ns ? `${ns}:${n}` : null) },
  golang: { ecosystem: 'Go', name: (ns, n) => (ns ? `${ns}/${n}` : n) },
  cargo: { ecosystem: 'crates.io', name: (_ns, n) => n },
  gem: { ecosystem: 'RubyGems', name: (_ns, n) => n },
  nuget: { ecosystem: 'NuGet', name: (_ns, n) => n },
  composer: { ecosystem: 'Packagist', name: (ns, n) => (ns ? `${ns}/${n}` : n) },
  hex: { ecosystem: 'Hex', name: (_ns, n) => n },
  pub: { ecosystem: 'Pub', name: (_ns, n) => n },
  swift: { ecosystem: 'SwiftURL', name: (ns, n) => (ns ? `${ns}/${n}` : n) },
};

export interface Bound {
  op: '<' | '<=' | '>' | '>=' | '=';
  version: string;
}

/**
 * `vers:semver/>=1.0|<2.5.3`, `<6.3-rc1`, `<=2.4` -> its bounds; null when it
 * is not one exact version or one interval (at most a lower and an upper bound).
 */
export function parseVersionRange(text: string): Bound[] | null {
  const body = text.trim().replace(/^vers:[^/]*\//i, '');
  if (body === '' || body === '*') return null;
  const bounds: Bound[] = [];
  for (const part of body.split('|').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(<=|>=|<|>|=)?\s*([^\s<>=|]+)$/.exec(part);
    if (!m) return null;
    bounds.push({ op: (m[1] ?? '=') as Bound['op'], version: m[2]! });
  }
  const lower = bounds.filter((b) => b.op === '>' || b.op === '>=');
  const upper = bounds.filter((b) => b.op === '<' || b.op === '<=');
  const exact = bounds.filter((b) => b.op === '=');
  if (exact.length === 1 && bounds.length === 1) return bounds;
  if (exact.length > 0 || lower.length > 1 || upper.length > 1 || lower.some((b) => b.op === '>')) return null;
  return bounds;
}

function osvRange(bounds: Bound[]): Range {
  const lower = bounds.find((b) => b.op === '>=');
  const upper = bounds.find((b) => b.op === '<' || b.op === '<=');
  const events: RangeEvent[] = [{ introduced: lower?.version ?? '0' }];
  if (upper) events.push(upper.op === '<' ? { fixed: upper.version } : { last_affected: upper.version });
  return { type: 'ECOSYSTEM', events };
}

function rangeOf(p: CsafProduct, purl: PackageURL | null): Bound[] | null | undefined {
  const text = p.versionRange ?? purl?.qualifiers?.vers ?? null;
  return text === null ? undefined : parseVersionRange(text);
}

function readPurl(s: string): PackageURL | null {
  try {
    return PackageURL.fromString(s);
  } catch {
    return null;
  }
}

/** The affected entry a known/first/last_affected product gives, or null when it cannot be mapped honestly. */
function affectedFromPurl(p: CsafProduct): Affected | null {
  const purl = p.purl ? readPurl(p.purl) : null;
  if (!purl) return null;
  const eco = PURL_ECOSYSTEMS[purl.type];
  const name = eco?.name(purl.namespace ?? null, purl.name);
  if (!eco || !name) return null;
  const range = rangeOf(p, purl);
  const base = { ecosystem: eco.ecosystem, name, purl: purlWithoutVersion(p.purl!).replace(/\?.*$/, '') };
  if (range === null) return null;
  if (range !== undefined) {
    if (range.length === 1 && range[0]!.op === '=') return { ...base, ranges: [], versions: [range[0]!.version] };
    return { ...base, ranges: [osvRange(range)], versions: [] };
  }
  const version = purl.version ?? p.version;
  return version ? { ...base, ranges: [], versions: [version] } : null;
}

const CPE_ANY = (v: string | undefined): boolean => v === undefined || v === '' || v === '*' || v === '-' || /[*?]/.test(v);

/** cpe:2.3 formatted string parts (a cpe:/ 2.2 URI is converted), 13 of them, or null. */
export function cpe23Parts(cpe: string): string[] | null {
  const s = cpe.trim();
  let parts: string[];
  if (/^cpe:2\.3:/i.test(s)) parts = splitCpe(s);
  else if (/^cpe:\/[aoh]:/i.test(s)) {
    const uri = s.slice(5).split(':').map((x) => decodeURIComponent(x).replace(/([!"#$%&'()+,/:;<=>@[\]^`{|}~])/g, '\\$1'));
    parts = ['cpe', '2.3', ...uri];
  } else return null;
  while (parts.length < 13) parts.push('*');
  if (parts.length !== 13 || !/^[aoh]$/i.test(parts[2]!) || !parts[3] || !parts[4]) return null;
  return parts.map((x) => (x === '' ? '*' : x));
}

const escapeCpeValue = (v: string): string => v.replace(/([\\!"#$%&'()*+,/:;<=>?@[\]^`{|}~\s])/g, '\\$1');

/** The cpes row a known/first/last_affected product gives, or null. */
function cpeFromProduct(p: CsafProduct): Cpe | null {
  if (!p.cpe) return null;
  const parts = cpe23Parts(p.cpe);
  if (!parts) return null;
  const range = p.versionRange === null ? undefined : parseVersionRange(p.versionRange);
  if (range === null) return null;
  const row = (version: string, bounds: Partial<Cpe> = {}): Cpe => {
    // a range's bound carries the whole version: the update field of its CPE goes with it
    const rest = version === '*' ? ['*', ...parts.slice(7)] : parts.slice(6);
    const criteria = [...parts.slice(0, 5), version, ...rest].join(':');
    return { criteria, vulnerable: true, part: parts[2]!.toLowerCase(), vendor: parts[3]!, product: parts[4]!, ...bounds };
  };
  if (range !== undefined) {
    if (range.length === 1 && range[0]!.op === '=') return row(escapeCpeValue(range[0]!.version));
    const b: Partial<Cpe> = {};
    for (const x of range) {
      if (x.op === '>=') b.versionStartIncluding = x.version;
      if (x.op === '<') b.versionEndExcluding = x.version;
      if (x.op === '<=') b.versionEndIncluding = x.version;
    }
    return row('*', b);
  }
  if (!CPE_ANY(parts[5])) return row(parts[5]!);
  return p.version ? row(escapeCpeValue(p.version)) : null;
}

function vexStatement(s: CsafStatement, p: CsafProduct, info: ReturnType<typeof csafInfo>): VexStatement | null {
  const status = FIXED_STATUSES.includes(s.status) ? 'fixed' : s.status === 'known_not_affected' ? 'not_affected' : null;
  if (!status || (!p.purl && !p.cpe)) return null;
  return {
    vulnerability: s.vulnerability,
    purl: p.purl,
    cpe: p.cpe,
    status,
    justification: status === 'not_affected' ? s.justification : null,
    impact: status === 'not_affected' ? s.impact : null,
    publisher: info.publisher,
    document: info.trackingId,
    released: isoTime(info.released),
  };
}

function text(v: unknown): string | null {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

function notes(v: JsonObject, categories: string[]): string | null {
  const list = Array.isArray(v.notes) ? v.notes : [];
  for (const c of categories) {
    const n = list.find((x): x is JsonObject => isObject(x) && x.category === c && typeof x.text === 'string');
    if (n) return text(n.text);
  }
  return null;
}

function references(list: Json | undefined, self = false): Reference[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((r) => (isObject(r) && typeof r.url === 'string' ? [{ type: self && r.category === 'self' ? 'ADVISORY' : 'WEB', url: r.url }] : []));
}

function severities(v: JsonObject): Severity[] {
  const out: Severity[] = [];
  for (const s of Array.isArray(v.scores) ? v.scores : []) {
    if (!isObject(s)) continue;
    for (const [key, type] of [['cvss_v3', 'CVSS_V3'], ['cvss_v2', 'CVSS_V2']] as const) {
      const c = s[key];
      if (!isObject(c) || typeof c.vectorString !== 'string') continue;
      const score = typeof c.baseScore === 'number' ? c.baseScore : computeBaseScore(type, c.vectorString);
      out.push({ type, vector: c.vectorString, score, source: 'csaf' });
    }
  }
  return out;
}

/** Every vulnerability of a (schema-valid) CSAF document as a record. */
export function normaliseCsaf(doc: JsonObject): SourceRecord[] {
  const info = csafInfo(doc);
  const products = csafProducts(doc);
  const vex = isCsafVex(info);
  const d = isObject(doc.document) ? doc.document : {};
  const docRefs = references(d.references, true);
  const modified = isoTime(info.released);
  const out: SourceRecord[] = [];
  for (const v of csafVulnerabilities(doc)) {
    const raw = v.raw as JsonObject;
    const affected: Affected[] = [];
    const cpes: Cpe[] = [];
    const statements: VexStatement[] = [];
    for (const s of v.statements) {
      const p = products.get(s.productId);
      if (!p) continue;
      if (AFFECTED_STATUSES.includes(s.status)) {
        const a = affectedFromPurl(p);
        if (a) affected.push(a);
        const c = cpeFromProduct(p);
        if (c) cpes.push(c);
      } else if (vex) {
        const st = vexStatement(s, p, info);
        if (st) statements.push(st);
      }
    }
    const cwe = isObject(raw.cwe) ? cweIds([raw.cwe.id ?? null]) : [];
    const rec: SourceRecord = {
      source: {
        feed: 'csaf',
        id: v.id,
        modified,
        published: isoTime(raw.release_date) ?? isoTime(info.initialRelease),
        withdrawn: null,
        publisher: info.publisher,
        document: info.trackingId,
      },
      aliases: [],
      upstream: [],
      related: [],
      summary: text(raw.title) ?? info.title,
      details: notes(raw, ['description', 'summary', 'general']),
      severity: severities(raw),
      databaseSeverity: [],
      cwes: cwe,
      references: [...references(raw.references), ...docRefs],
      affected,
      cpes,
    };
    if (statements.length) rec.vex = statements;
    out.push(rec);
  }
  return out;
}
