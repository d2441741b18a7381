/**
 * NVD CVE API 2.0 records into the normalised model: descriptions, CVSS metrics
 * (v2, v3.0, v3.1, v4.0 with NVD's own base scores), CWE ids, references and the
 * CPE configurations, flattened into one row per cpeMatch. A Rejected CVE is
 * kept and marked withdrawn at its lastModified time.
 */
import { computeBaseScore } from '../cvss.ts';
import type { Cpe, CvssType, Reference, Severity, SourceRecord } from '../model.ts';
import { describe, isCveId, isObject, isoTime, type Json, MalformedRecord, optArray, optObject, optString, requireId } from './fields.ts';
import { cweIds } from './osv.ts';
import { splitCpe } from '../../bundle/cpe.ts';

const METRICS: readonly (readonly [string, CvssType])[] = [
  ['cvssMetricV40', 'CVSS_V4'],
  ['cvssMetricV31', 'CVSS_V3'],
  ['cvssMetricV30', 'CVSS_V3'],
  ['cvssMetricV2', 'CVSS_V2'],
];

/** NVD reference tags, most telling first, and the OSV reference type each maps to. */
const TAG_TYPES: readonly (readonly [string, string])[] = [
  ['Patch', 'FIX'],
  ['Vendor Advisory', 'ADVISORY'],
  ['Third Party Advisory', 'ADVISORY'],
  ['US Government Resource', 'ADVISORY'],
  ['Exploit', 'EVIDENCE'],
  ['Issue Tracking', 'REPORT'],
  ['Mailing List', 'DISCUSSION'],
];

export function normaliseNvd(raw: unknown): SourceRecord {
  if (!isObject(raw)) throw new MalformedRecord(`the cve is ${describe(raw)}, not a JSON object`);
  const id = requireId(raw.id, 'cve.id');
  if (!isCveId(id)) throw new MalformedRecord(`cve.id ${JSON.stringify(id)} is not a CVE id`);
  const p = 'cve.';
  const status = optString(raw, 'vulnStatus', p);
  const modified = isoTime(optString(raw, 'lastModified', p));

  let details: string | null = null;
  for (const [i, d] of optArray(raw, 'descriptions', p).entries()) {
    if (!isObject(d)) throw new MalformedRecord(`cve.descriptions[${i}] is ${describe(d)}, not an object`);
    const value = optString(d, 'value', `cve.descriptions[${i}].`);
    if (value && value.trim() && (d.lang === 'en' || details === null)) {
      details = value.trim();
      if (d.lang === 'en') break;
    }
  }

  const severity: Severity[] = [];
  const metrics = optObject(raw, 'metrics', p);
  if (metrics) {
    for (const [key, type] of METRICS) {
      optArray(metrics, key, 'cve.metrics.').forEach((m, i) => {
        const mp = `cve.metrics.${key}[${i}].`;
        if (!isObject(m)) throw new MalformedRecord(`${mp.slice(0, -1)} is ${describe(m)}, not an object`);
        const data = optObject(m, 'cvssData', mp);
        const vector = data ? optString(data, 'vectorString', `${mp}cvssData.`) : null;
        if (!data || !vector) throw new MalformedRecord(`${mp}cvssData.vectorString is missing`);
        const given = data.baseScore;
        const entry: Severity = {
          type,
          vector,
          score: typeof given === 'number' && Number.isFinite(given) ? given : computeBaseScore(type, vector),
          source: 'nvd',
          primary: m.type === 'Primary',
        };
        const assigner = optString(m, 'source', mp);
        if (assigner) entry.assigner = assigner;
        severity.push(entry);
      });
    }
  }

  const cweSet = new Set<string>();
  optArray(raw, 'weaknesses', p).forEach((w, i) => {
    if (!isObject(w)) throw new MalformedRecord(`cve.weaknesses[${i}] is ${describe(w)}, not an object`);
    const values = optArray(w, 'description', `cve.weaknesses[${i}].`).map((d) => (isObject(d) ? d.value : null));
    for (const c of cweIds(values as Json[])) cweSet.add(c);
  });
  const cwes = [...cweSet];

  const references: Reference[] = optArray(raw, 'references', p).map((r, i) => {
    const rp = `cve.references[${i}].`;
    if (!isObject(r)) throw new MalformedRecord(`${rp.slice(0, -1)} is ${describe(r)}, not an object`);
    const url = optString(r, 'url', rp);
    if (!url) throw new MalformedRecord(`${rp}url is missing`);
    const tags = Array.isArray(r.tags) ? r.tags.filter((t): t is string => typeof t === 'string') : [];
    const type = TAG_TYPES.find(([tag]) => tags.includes(tag))?.[1] ?? 'WEB';
    return { type, url };
  });

  const cpes: Cpe[] = [];
  optArray(raw, 'configurations', p).forEach((conf, i) => {
    const cp = `cve.configurations[${i}].`;
    if (!isObject(conf)) throw new MalformedRecord(`${cp.slice(0, -1)} is ${describe(conf)}, not an object`);
    optArray(conf, 'nodes', cp).forEach((node, j) => {
      const np = `${cp}nodes[${j}].`;
      if (!isObject(node)) throw new MalformedRecord(`${np.slice(0, -1)} is ${describe(node)}, not an object`);
      optArray(node, 'cpeMatch', np).forEach((m, k) => {
        const mp = `${np}cpeMatch[${k}].`;
        if (!isObject(m)) throw new MalformedRecord(`${mp.slice(0, -1)} is ${describe(m)}, not an object`);
        const cpe = readCpeMatch(m, mp);
        if (cpe) cpes.push(cpe);
      });
    });
  });

  return {
    source: {
      feed: 'nvd',
      id,
      modified,
      published: isoTime(optString(raw, 'published', p)),
      withdrawn: status === 'Rejected' ? modified : null,
      ...(status ? { status } : {}),
    },
    aliases: [],
    upstream: [],
    related: [],
    summary: null,
    details,
    severity,
    databaseSeverity: [],
    cwes,
    references,
    affected: [],
    cpes,
  };
}

const BOUNDS = ['versionStartIncluding', 'versionStartExcluding', 'versionEndIncluding', 'versionEndExcluding'] as const;

function readCpeMatch(m: { [key: string]: Json }, path: string): Cpe | null {
  const criteria = optString(m, 'criteria', path);
  if (!criteria) throw new MalformedRecord(`${path}criteria is missing`);
  const parts = splitCpe(criteria);
  // Not a cpe:2.3 formatted string: nothing a scanner could match on.
  if (parts.length < 5 || parts[0] !== 'cpe' || parts[1] !== '2.3') return null;
  const cpe: Cpe = { criteria, vulnerable: m.vulnerable === true, part: parts[2]!, vendor: parts[3]!, product: parts[4]! };
  for (const b of BOUNDS) {
    const v = optString(m, b, path);
    if (v) cpe[b] = v;
  }
  return cpe;
}
