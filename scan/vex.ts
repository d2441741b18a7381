/**
 * VEX: statements that a product is not affected by a vulnerability, or that
 * it is fixed, which take matching findings out of the count and out of
 * `--fail-on` (they stay listed under `suppressed`, with the status and the
 * justification). Two sources:
 *
 *   `stella scan SBOM --vex FILE…`   OpenVEX, CycloneDX VEX, CSAF VEX (readVexFile)
 *   the kit                          the CSAF VEX documents it was built from (the
 *                                    `vex` table: kitVexStatements)
 *
 * A statement matches a finding when it names the finding's vulnerability (its
 * id or one of its aliases) and its product is the finding's component:
 *
 *   purl   same type, namespace and name (case-insensitive); a version in the
 *          statement must equal the component's (case-insensitive), none
 *          matches every version; `arch` and `distro` qualifiers must agree
 *          when both sides give them, other qualifiers are not compared
 *   CPE    same part, vendor and product; a version must equal, `*`/`-` match any
 *   bom-ref (CycloneDX VEX `affects[].ref`, or a BOM-link's fragment): the component's
 *   the SBOM's subject: a statement whose product is the product the SBOM
 *          describes (CycloneDX metadata.component, by purl or CPE as above)
 *          covers every finding of that vulnerability in it — a vendor's
 *          "our product is not affected (or is fixed)", as OpenVEX and CSAF
 *          state it for an image or a package with what it bundles
 *
 * Statuses: not_affected (OpenVEX, CSAF known_not_affected, CycloneDX
 * not_affected and false_positive) and fixed (OpenVEX fixed, CSAF fixed and
 * first_fixed, CycloneDX resolved and resolved_with_pedigree) suppress;
 * affected, under_investigation, exploitable and in_triage do not. The
 * operator's --vex files are applied before the kit's statements, in the
 * order given; the first matching statement is the one reported.
 */
import fs from 'node:fs/promises';
import type { PoolClient } from 'pg';
import { csafInfo, csafProducts, csafVulnerabilities, FIXED_STATUSES, validateCsaf } from '../bundle/csaf.ts';
import { ident } from '../infra/db.ts';
import { OukError } from '../lib/errors.ts';
import { parseCpe } from './cpe.ts';
import type { Finding } from './findings.ts';
import { readPurl } from './purl.ts';
import type { SbomComponent } from './sbom.ts';

export type VexStatus = 'not_affected' | 'fixed';

export interface VexStatement {
  vulnerability: string;
  purl: string | null;
  cpe: string | null;
  /** a component's bom-ref (CycloneDX VEX) */
  bomRef: string | null;
  status: VexStatus;
  justification: string | null;
  impact: string | null;
  /** where the statement comes from: a file, or `kit: <publisher> <document>` */
  source: string;
}

/** What a suppressed finding carries. */
export interface VexVerdict {
  status: VexStatus;
  justification: string | null;
  impact: string | null;
  source: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function product(ref: string): Pick<VexStatement, 'purl' | 'cpe' | 'bomRef'> {
  if (ref.startsWith('pkg:')) return { purl: ref, cpe: null, bomRef: null };
  if (/^cpe:/i.test(ref)) return { purl: null, cpe: ref, bomRef: null };
  const frag = /^urn:cdx:[^#]*#(.+)$/.exec(ref)?.[1];
  return { purl: null, cpe: null, bomRef: frag ? decodeURIComponent(frag) : ref };
}

function openVex(doc: Obj, source: string): VexStatement[] {
  const out: VexStatement[] = [];
  for (const s of list(doc.statements)) {
    if (!isObj(s)) continue;
    const status = str(s.status);
    if (status !== 'not_affected' && status !== 'fixed') continue;
    const vuln = isObj(s.vulnerability) ? str(s.vulnerability.name) ?? str(s.vulnerability['@id']) : str(s.vulnerability);
    if (!vuln) continue;
    const ids = [vuln, ...list(isObj(s.vulnerability) ? s.vulnerability.aliases : []).map(str).filter((x): x is string => x !== null)];
    const refs: string[] = [];
    for (const p of list(s.products)) {
      const subs = isObj(p) ? list(p.subcomponents).map((x) => (isObj(x) ? str(x['@id']) : str(x))) : [];
      const own = isObj(p) ? str(p['@id']) ?? (isObj(p.identifiers) ? str(p.identifiers.purl) ?? str(p.identifiers.cpe23) : null) : str(p);
      const named = subs.filter((x): x is string => x !== null);
      refs.push(...(named.length ? named : own ? [own] : []));
    }
    for (const id of ids) {
      for (const ref of refs) {
        out.push({ vulnerability: id, ...product(ref), status, justification: str(s.justification), impact: str(s.impact_statement), source });
      }
    }
  }
  return out;
}

const CDX_STATES: Record<string, VexStatus> = { not_affected: 'not_affected', false_positive: 'not_affected', resolved: 'fixed', resolved_with_pedigree: 'fixed' };

function cycloneDxVex(doc: Obj, source: string): VexStatement[] {
  const purlOf = new Map<string, string>();
  const walk = (cs: unknown): void => {
    for (const c of list(cs)) {
      if (!isObj(c)) continue;
      const ref = str(c['bom-ref']);
      const purl = str(c.purl);
      if (ref && purl) purlOf.set(ref, purl);
      walk(c.components);
    }
  };
  walk(doc.components);
  const out: VexStatement[] = [];
  for (const v of list(doc.vulnerabilities)) {
    if (!isObj(v) || !isObj(v.analysis)) continue;
    const state = str(v.analysis.state);
    const status = state ? CDX_STATES[state] : undefined;
    const id = str(v.id);
    if (!status || !id) continue;
    const ids = [id, ...list(v.references).map((r) => (isObj(r) ? str(r.id) : null)).filter((x): x is string => x !== null)];
    const justification = state === 'false_positive' ? 'false_positive' : str(v.analysis.justification);
    for (const a of list(v.affects)) {
      const ref = isObj(a) ? str(a.ref) : null;
      if (!ref) continue;
      const p = purlOf.get(ref);
      for (const vid of ids) {
        out.push({ vulnerability: vid, ...(p ? { purl: p, cpe: null, bomRef: ref } : product(ref)), status, justification, impact: str(v.analysis.detail), source });
      }
    }
  }
  return out;
}

function csafVex(doc: Obj, source: string): VexStatement[] {
  const invalid = validateCsaf(doc);
  if (invalid) throw new OukError('USAGE', `--vex ${source}: ${invalid}`);
  const info = csafInfo(doc as Parameters<typeof csafInfo>[0]);
  const products = csafProducts(doc as Parameters<typeof csafProducts>[0]);
  const out: VexStatement[] = [];
  for (const v of csafVulnerabilities(doc as Parameters<typeof csafVulnerabilities>[0])) {
    for (const s of v.statements) {
      const status: VexStatus | null = s.status === 'known_not_affected' ? 'not_affected' : FIXED_STATUSES.includes(s.status) ? 'fixed' : null;
      const p = products.get(s.productId);
      if (!status || !p || (!p.purl && !p.cpe)) continue;
      out.push({ vulnerability: v.id, purl: p.purl, cpe: p.cpe, bomRef: null, status, justification: s.justification, impact: s.impact, source: `${source} (${info.publisher} ${info.trackingId})` });
    }
  }
  return out;
}

/** The statements of one VEX document (OpenVEX, CycloneDX VEX or CSAF), by its shape. */
export function parseVex(doc: unknown, source: string): VexStatement[] {
  if (!isObj(doc)) throw new OukError('USAGE', `--vex ${source}: not a JSON object`);
  if (typeof doc['@context'] === 'string' && doc['@context'].includes('openvex')) return openVex(doc, source);
  if (doc.bomFormat === 'CycloneDX') return cycloneDxVex(doc, source);
  if (isObj(doc.document) && typeof doc.document.csaf_version === 'string') return csafVex(doc, source);
  throw new OukError('USAGE', `--vex ${source}: neither OpenVEX (@context openvex), CycloneDX (bomFormat) nor CSAF (document.csaf_version)`);
}

export async function readVexFile(file: string): Promise<VexStatement[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new OukError('INPUT_NOT_FOUND', `--vex ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check the path`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new OukError('USAGE', `--vex ${file} is not valid JSON (${(e as Error).message})`);
  }
  return parseVex(doc, file);
}

/** The kit's statements (the active DB's `vex` table) for these advisories. */
export async function kitVexStatements(client: PoolClient, schema: string, advisoryIds: string[]): Promise<VexStatement[]> {
  if (advisoryIds.length === 0) return [];
  const has = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(schema)}.vex`]);
  if (!has.rows[0]?.t) return [];
  const r = await client.query<{ advisory_id: string; vulnerability_id: string; product_purl: string | null; product_cpe: string | null; status: string; justification: string | null; impact_statement: string | null; publisher: string; document: string }>(
    `SELECT advisory_id, vulnerability_id, product_purl, product_cpe, status, justification, impact_statement, publisher, document
       FROM ${ident(schema)}.vex WHERE advisory_id = ANY($1::text[]) ORDER BY advisory_id, vulnerability_id, product_purl, product_cpe, document`,
    [advisoryIds],
  );
  return r.rows
    .filter((x) => x.status === 'not_affected' || x.status === 'fixed')
    .map((x) => ({
      vulnerability: x.vulnerability_id,
      purl: x.product_purl,
      cpe: x.product_cpe,
      bomRef: null,
      status: x.status as VexStatus,
      justification: x.justification,
      impact: x.impact_statement,
      source: `kit: ${x.publisher} ${x.document}`,
    }));
}

const lower = (s: string | null | undefined): string => (s ?? '').toLowerCase();

function purlMatches(statement: string, component: string | null): boolean {
  if (!component) return false;
  const a = readPurl(statement);
  const b = readPurl(component);
  if (!a.ok || !b.ok) return false;
  const s = a.purl;
  const c = b.purl;
  if (lower(s.type) !== lower(c.type) || lower(s.namespace) !== lower(c.namespace) || lower(s.name) !== lower(c.name)) return false;
  if (s.version && lower(s.version) !== lower(c.version)) return false;
  for (const q of ['arch', 'distro']) {
    const sv = s.qualifiers?.[q];
    const cv = c.qualifiers?.[q];
    if (sv && cv && lower(sv) !== lower(cv)) return false;
  }
  return true;
}

function cpeMatches(statement: string, component: string | null): boolean {
  if (!component) return false;
  const s = parseCpe(statement);
  const c = parseCpe(component);
  if (!s || !c || s.part !== c.part || s.vendor !== c.vendor || s.product !== c.product) return false;
  return s.version === null || lower(s.version) === lower(c.version);
}

type Identified = { purl: string | null; cpe: string | null };

function productMatches(v: VexStatement, p: Identified | undefined): boolean {
  if (!p) return false;
  return Boolean((v.purl && purlMatches(v.purl, p.purl)) || (v.cpe && cpeMatches(v.cpe, p.cpe)));
}

export function statementMatches(v: VexStatement, f: Finding, component: Pick<SbomComponent, 'ref' | 'purl' | 'cpe'> | undefined, subject?: Identified): boolean {
  const ids = new Set([f.advisoryId, ...f.aliases].map((x) => x.toUpperCase()));
  if (!ids.has(v.vulnerability.toUpperCase())) return false;
  if (v.bomRef && v.bomRef === f.component) return true;
  return productMatches(v, component ?? { purl: f.purl, cpe: null }) || productMatches(v, subject);
}

/**
 * Splits findings into those that stand and those a statement suppresses
 * (each with its verdict). `components` by bom-ref: a finding's component.
 */
export function applyVex(
  findings: Finding[],
  statements: VexStatement[],
  components: Map<string, Pick<SbomComponent, 'ref' | 'purl' | 'cpe'>>,
  subject?: Identified,
): { findings: Finding[]; suppressed: (Finding & { vex: VexVerdict })[] } {
  if (statements.length === 0) return { findings, suppressed: [] };
  // by vulnerability id, each statement with its place in `statements` (the first match wins)
  const byVuln = new Map<string, { s: VexStatement; at: number }[]>();
  statements.forEach((s, at) => {
    const k = s.vulnerability.toUpperCase();
    const l = byVuln.get(k);
    if (l) l.push({ s, at });
    else byVuln.set(k, [{ s, at }]);
  });
  const kept: Finding[] = [];
  const suppressed: (Finding & { vex: VexVerdict })[] = [];
  for (const f of findings) {
    const candidates = [f.advisoryId, ...f.aliases].flatMap((id) => byVuln.get(id.toUpperCase()) ?? []).sort((a, b) => a.at - b.at);
    const hit = candidates.map((c) => c.s).find((s) => statementMatches(s, f, components.get(f.component), subject));
    if (!hit) kept.push(f);
    else suppressed.push({ ...f, vex: { status: hit.status, justification: hit.justification, impact: hit.impact, source: hit.source } });
  }
  return { findings: kept, suppressed };
}
