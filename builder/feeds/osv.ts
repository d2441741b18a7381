/**
 * OSV-schema records (osv/**.json and ghsa/**.json: GitHub's advisory database
 * is published in the OSV schema) into the normalised model. One record a file;
 * files are small, so each is parsed whole. Only named fields are read, except
 * `ecosystem_specific`, kept as it is: nested deeper than MAX_KEPT_DEPTH, it
 * makes the record malformed.
 */
import { jsonDepthProblem } from '../../lib/json-bounds.ts';
import { computeBaseScore } from '../cvss.ts';
import type { Affected, CvssType, DatabaseSeverity, FeedName, Range, RangeEvent, RangeType, Reference, Severity, SourceRecord } from '../model.ts';
import { normaliseSeverityLabel } from '../cvss.ts';
import {
  describe,
  isObject,
  isoTime,
  type Json,
  type JsonObject,
  MalformedRecord,
  optArray,
  optObject,
  optString,
  optStringArray,
  requireId,
} from './fields.ts';
import { withdrawalWording } from './withdrawn-in-words.ts';

const RANGE_TYPES: readonly RangeType[] = ['SEMVER', 'ECOSYSTEM', 'GIT'];

/** Deepest `ecosystem_specific` kept (the advisory's doc is serialised by recursive code). */
export const MAX_KEPT_DEPTH = 32;
const EVENT_KEYS = ['introduced', 'fixed', 'last_affected', 'limit'] as const;
const CVSS_TYPES: readonly CvssType[] = ['CVSS_V2', 'CVSS_V3', 'CVSS_V4'];

export function normaliseOsv(raw: unknown, feed: Exclude<FeedName, 'nvd'>): SourceRecord {
  if (!isObject(raw)) throw new MalformedRecord(`the record is ${describe(raw)}, not a JSON object`);
  const id = requireId(raw.id, 'id');
  const aliases = unique(optStringArray(raw, 'aliases', '')).filter((a) => a !== id);
  const upstream = unique(optStringArray(raw, 'upstream', '')).filter((a) => a !== id);
  const related = unique(optStringArray(raw, 'related', '')).filter((a) => a !== id);

  const severity: Severity[] = [];
  readSeverity(raw, '', feed, severity);
  const affected: Affected[] = [];
  optArray(raw, 'affected', '').forEach((a, i) => {
    const entry = readAffected(a, `affected[${i}].`, feed, severity);
    if (entry) affected.push(entry);
  });

  const references: Reference[] = optArray(raw, 'references', '').map((r, i) => {
    const path = `references[${i}].`;
    if (!isObject(r)) throw new MalformedRecord(`${path.slice(0, -1)} is ${describe(r)}, not an object`);
    const url = optString(r, 'url', path);
    if (!url) throw new MalformedRecord(`${path}url is missing`);
    return { type: optString(r, 'type', path) ?? 'WEB', url };
  });

  const dbSpecific = isObject(raw.database_specific) ? raw.database_specific : null;
  const cwes = dbSpecific ? cweIds(dbSpecific.cwe_ids) : [];
  const databaseSeverity: DatabaseSeverity[] = [];
  const label = dbSpecific ? normaliseSeverityLabel(dbSpecific.severity) : null;
  if (label) databaseSeverity.push({ source: feed, id, severity: label });

  const summary = text(optString(raw, 'summary', ''));
  const details = text(optString(raw, 'details', ''));
  const modified = isoTime(optString(raw, 'modified', ''));
  const published = isoTime(optString(raw, 'published', ''));
  return {
    source: {
      feed,
      id,
      modified,
      published,
      // A record withdrawn only in its text (no `withdrawn` field: GitHub's
      // duplicates and withdrawals, rejected CVEs) is withdrawn at its
      // `modified` time: see withdrawn-in-words.ts for the wordings.
      withdrawn: isoTime(optString(raw, 'withdrawn', '')) ?? (withdrawalWording(summary, details) ? (modified ?? published) : null),
    },
    aliases,
    upstream,
    related,
    summary,
    details,
    severity,
    databaseSeverity,
    cwes,
    references,
    affected,
    cpes: [],
  };
}

function readSeverity(o: JsonObject, path: string, feed: FeedName, out: Severity[]): void {
  optArray(o, 'severity', path).forEach((s, i) => {
    const p = `${path}severity[${i}].`;
    if (!isObject(s)) throw new MalformedRecord(`${p.slice(0, -1)} is ${describe(s)}, not an object`);
    const type = optString(s, 'type', p);
    const vector = optString(s, 'score', p);
    if (!type || !vector) throw new MalformedRecord(`${p.slice(0, -1)} lacks its type or score`);
    // Other severity types (e.g. "Ubuntu") are not CVSS vectors: left out.
    if (!(CVSS_TYPES as readonly string[]).includes(type)) return;
    const t = type as CvssType;
    out.push({ type: t, vector, score: computeBaseScore(t, vector), source: feed });
  });
}

function readAffected(a: Json, path: string, feed: FeedName, severity: Severity[]): Affected | null {
  if (!isObject(a)) throw new MalformedRecord(`${path.slice(0, -1)} is ${describe(a)}, not an object`);
  const ranges = optArray(a, 'ranges', path).map((r, i) => readRange(r, `${path}ranges[${i}].`));
  const versions = unique(optStringArray(a, 'versions', path));
  readSeverity(a, path, feed, severity);
  const pkg = optObject(a, 'package', path);
  const eco = pkg ? optString(pkg, 'ecosystem', `${path}package.`) : null;
  const nm = pkg ? optString(pkg, 'name', `${path}package.`) : null;
  let ecosystem: string;
  let name: string;
  let purl: string | undefined;
  if (eco || nm) {
    if (!eco || !nm) throw new MalformedRecord(`${path}package has ${eco ? 'an ecosystem but no name' : 'a name but no ecosystem'}`);
    ecosystem = eco;
    name = nm;
    const p = optString(pkg!, 'purl', `${path}package.`);
    if (p) purl = purlWithoutVersion(p);
  } else {
    // No package (or `"package": {}`, as some mirrors re-serialise it):
    // OSV allows a package-less entry with GIT ranges only; it is keyed by its repository.
    const repo = ranges.find((r) => r.type === 'GIT' && r.repo)?.repo;
    if (!repo) return null;
    ecosystem = 'GIT';
    name = repo;
  }
  const entry: Affected = { ecosystem, name, ranges, versions };
  if (purl) entry.purl = purl;
  if (a.ecosystem_specific !== undefined && a.ecosystem_specific !== null) {
    // kept as it is, and serialised by recursive code later: its depth is checked here, without recursion
    const deep = jsonDepthProblem(a.ecosystem_specific, MAX_KEPT_DEPTH);
    if (deep) throw new MalformedRecord(`${path}ecosystem_specific: ${deep}`);
    entry.ecosystem_specific = a.ecosystem_specific;
  }
  return entry;
}

function readRange(r: Json, path: string): Range {
  if (!isObject(r)) throw new MalformedRecord(`${path.slice(0, -1)} is ${describe(r)}, not an object`);
  const type = optString(r, 'type', path);
  if (!type || !(RANGE_TYPES as readonly string[]).includes(type)) {
    throw new MalformedRecord(`${path}type ${JSON.stringify(type)} is not SEMVER, ECOSYSTEM or GIT`);
  }
  const events = optArray(r, 'events', path).map((e, i): RangeEvent => {
    const p = `${path}events[${i}]`;
    if (!isObject(e)) throw new MalformedRecord(`${p} is ${describe(e)}, not an object`);
    for (const k of EVENT_KEYS) {
      const v = e[k];
      if (typeof v === 'string') return { [k]: v } as RangeEvent;
    }
    throw new MalformedRecord(`${p} has none of introduced, fixed, last_affected, limit`);
  });
  const range: Range = { type: type as RangeType, events };
  const repo = optString(r, 'repo', path);
  if (repo) range.repo = repo;
  return range;
}

/** `pkg:npm/%40scope/name@1.2.3?q#s` -> `pkg:npm/%40scope/name?q#s` (in a purl a literal `@` only ever starts the version). */
export function purlWithoutVersion(purl: string): string {
  return purl.replace(/@[^?#]*/, '');
}

/** The CWE ids of a list, upper-cased, each once, in order (a set: linear in the list, however long). */
export function cweIds(v: Json | undefined): string[] {
  if (!Array.isArray(v)) return [];
  const out = new Set<string>();
  for (const c of v) {
    if (typeof c !== 'string') continue;
    const up = c.trim().toUpperCase();
    if (/^CWE-\d+$/.test(up)) out.add(up);
  }
  return [...out];
}

function text(s: string | null): string | null {
  if (s === null) return null;
  const t = s.trim();
  return t === '' ? null : t;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
