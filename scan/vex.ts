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
 *
 * A --vex file is outside input: bounded (MAX_VEX_BYTES before it is read,
 * MAX_VEX_DEPTH before anything walks it, MAX_VEX_STATEMENTS as applied),
 * walked without recursion, and checked for shape — one that is malformed is
 * refused (VEX_INVALID, with the file and the JSON path) rather than applied
 * as zero statements; a well-formed one that suppresses nothing is a warning.
 */
import fs from 'node:fs/promises';
import type { PoolClient } from 'pg';
import { csafInfo, csafProducts, CsafTooLarge, csafVulnerabilities, FIXED_STATUSES, validateCsaf } from '../bundle/csaf.ts';
import { ident } from '../infra/db.ts';
import { OukError } from '../lib/errors.ts';
import { jsonDepthProblem } from '../lib/json-bounds.ts';
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

/** Largest `--vex` file read (as large as an SBOM may be). */
export const MAX_VEX_BYTES = 64 * 1024 * 1024;
/** Deepest nesting of objects and arrays in a `--vex` document (real ones: under 20). */
export const MAX_VEX_DEPTH = 64;
/**
 * Most statements one scan takes from its `--vex` files, counted as applied:
 * one per (vulnerability id or alias, product), so a statement naming 1,000
 * aliases and 1,000 products counts a million.
 */
export const MAX_VEX_STATEMENTS = 1_000_000;

export interface ReadVexOptions {
  /** statements this file may still add (default MAX_VEX_STATEMENTS; a scan passes what its earlier files left) */
  maxStatements?: number;
  /** told when a well-formed file suppresses nothing (the CLI prints it as a warning) */
  onWarning?(message: string): void;
}

function invalid(source: string, why: string): OukError {
  return new OukError('VEX_INVALID', `--vex ${source}: ${why}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Collects a document's statements, refusing more than its budget. */
class Statements {
  readonly out: VexStatement[] = [];
  constructor(
    private readonly source: string,
    private readonly max: number,
  ) {}
  push(s: VexStatement): void {
    if (this.out.length >= this.max) {
      throw invalid(
        this.source,
        `it makes more than ${this.max} statements (one per vulnerability id or alias and product; a scan takes at most ${MAX_VEX_STATEMENTS} from all its --vex files together): split it, or keep the statements for this SBOM's components`,
      );
    }
    this.out.push(s);
  }
}

function product(ref: string): Pick<VexStatement, 'purl' | 'cpe' | 'bomRef'> {
  if (ref.startsWith('pkg:')) return { purl: ref, cpe: null, bomRef: null };
  if (/^cpe:/i.test(ref)) return { purl: null, cpe: ref, bomRef: null };
  const frag = /^urn:cdx:[^#]*#(.+)$/.exec(ref)?.[1];
  return { purl: null, cpe: null, bomRef: frag ? decodeURIComponent(frag) : ref };
}

const OPENVEX_STATUSES = ['not_affected', 'affected', 'fixed', 'under_investigation'];

/** What a product or subcomponent of an OpenVEX statement is matched by: its @id, else its purl or CPE identifier. */
function openVexRef(p: unknown, at: string, source: string): string | null {
  if (typeof p === 'string') return str(p);
  if (!isObj(p)) throw invalid(source, `${at} is ${describe(p)}, not a product object or string`);
  if (p.identifiers !== undefined && !isObj(p.identifiers)) throw invalid(source, `${at}.identifiers is ${describe(p.identifiers)}, not an object`);
  const ids = isObj(p.identifiers) ? p.identifiers : {};
  return str(p['@id']) ?? str(ids.purl) ?? str(ids.cpe23) ?? str(ids.cpe22);
}

/**
 * OpenVEX (v0.2.0, and v0.0.x's string `vulnerability`). Refused as VEX_INVALID:
 * no `statements` array; a statement that is not an object, names no
 * vulnerability or has a status that is not one of OpenVEX's four; a
 * not_affected or fixed statement without products; a product or
 * subcomponent that is neither a string nor an object.
 */
function openVex(doc: Obj, source: string, st: Statements): { statements: number; unmatched: number } {
  if (!Array.isArray(doc.statements)) throw invalid(source, `an OpenVEX document needs a "statements" array (it is ${describe(doc.statements)}): fix the document`);
  let unmatched = 0;
  doc.statements.forEach((s, i) => {
    const at = `statements[${i}]`;
    if (!isObj(s)) throw invalid(source, `${at} is ${describe(s)}, not a statement object`);
    const status = s.status;
    if (typeof status !== 'string' || !OPENVEX_STATUSES.includes(status)) {
      throw invalid(source, `${at}.status ${status === undefined ? 'is missing' : JSON.stringify(status).slice(0, 60)}${status === undefined ? '' : ' is not a status'}: OpenVEX's are ${OPENVEX_STATUSES.join(', ')}`);
    }
    const v = s.vulnerability;
    if (v !== undefined && !isObj(v) && typeof v !== 'string') throw invalid(source, `${at}.vulnerability is ${describe(v)}, not an object or string`);
    const vuln = isObj(v) ? str(v.name) ?? str(v['@id']) : str(v);
    if (!vuln) throw invalid(source, `${at} names no vulnerability (vulnerability.name)`);
    if (isObj(v) && v.aliases !== undefined && !Array.isArray(v.aliases)) throw invalid(source, `${at}.vulnerability.aliases is ${describe(v.aliases)}, not an array`);
    if (s.products !== undefined && !Array.isArray(s.products)) throw invalid(source, `${at}.products is ${describe(s.products)}, not an array`);
    const refs: string[] = [];
    list(s.products).forEach((p, j) => {
      const pat = `${at}.products[${j}]`;
      if (isObj(p) && p.subcomponents !== undefined && !Array.isArray(p.subcomponents)) throw invalid(source, `${pat}.subcomponents is ${describe(p.subcomponents)}, not an array`);
      const subs = isObj(p) ? list(p.subcomponents).map((x, k) => openVexRef(x, `${pat}.subcomponents[${k}]`, source)) : [];
      const own = openVexRef(p, pat, source);
      const named = subs.filter((x): x is string => x !== null);
      if (named.length > 0) for (const x of named) refs.push(x);
      else if (own) refs.push(own);
    });
    if (status !== 'not_affected' && status !== 'fixed') return;
    if (list(s.products).length === 0) throw invalid(source, `${at} says ${status} but lists no products: a statement must name the products it is about`);
    if (refs.length === 0) {
      unmatched++;
      return;
    }
    const ids = [vuln, ...list(isObj(v) ? v.aliases : []).map(str).filter((x): x is string => x !== null)];
    for (const id of ids) {
      for (const ref of refs) {
        st.push({ vulnerability: id, ...product(ref), status, justification: str(s.justification), impact: str(s.impact_statement), source });
      }
    }
  });
  return { statements: doc.statements.length, unmatched };
}

const CDX_STATES: Record<string, VexStatus | null> = {
  not_affected: 'not_affected',
  false_positive: 'not_affected',
  resolved: 'fixed',
  resolved_with_pedigree: 'fixed',
  exploitable: null,
  in_triage: null,
};

/** Every component's purl by bom-ref, nested components too (walked with an explicit stack). */
function purlsByRef(doc: Obj): Map<string, string> {
  const purlOf = new Map<string, string>();
  const stack: unknown[][] = [list(doc.components)];
  while (stack.length > 0) {
    for (const c of stack.pop()!) {
      if (!isObj(c)) continue;
      const ref = str(c['bom-ref']);
      const purl = str(c.purl);
      if (ref && purl) purlOf.set(ref, purl);
      const children = list(c.components);
      if (children.length > 0) stack.push(children);
    }
  }
  return purlOf;
}

/**
 * CycloneDX VEX. Refused as VEX_INVALID: no `vulnerabilities` array (a BOM
 * without them is an SBOM, not a VEX); a vulnerability that is not an object;
 * an `analysis` that is not an object or a state CycloneDX does not define; a
 * not_affected, false_positive or resolved analysis without the
 * vulnerability's id or that affects nothing; an `affects` entry without a
 * `ref`.
 */
function cycloneDxVex(doc: Obj, source: string, st: Statements): { statements: number; unmatched: number } {
  if (!Array.isArray(doc.vulnerabilities)) {
    throw invalid(source, `a CycloneDX document without a "vulnerabilities" array (it is ${describe(doc.vulnerabilities)}) is an SBOM, not a VEX: pass the VEX document (vulnerabilities[].analysis)`);
  }
  const purlOf = purlsByRef(doc);
  doc.vulnerabilities.forEach((v, i) => {
    const at = `vulnerabilities[${i}]`;
    if (!isObj(v)) throw invalid(source, `${at} is ${describe(v)}, not a vulnerability object`);
    if (v.analysis === undefined) return;
    if (!isObj(v.analysis)) throw invalid(source, `${at}.analysis is ${describe(v.analysis)}, not an object`);
    const state = v.analysis.state;
    if (state === undefined) return;
    if (typeof state !== 'string' || !(state in CDX_STATES)) {
      throw invalid(source, `${at}.analysis.state ${JSON.stringify(state).slice(0, 60)} is not a state: CycloneDX's are ${Object.keys(CDX_STATES).join(', ')}`);
    }
    if (v.affects !== undefined && !Array.isArray(v.affects)) throw invalid(source, `${at}.affects is ${describe(v.affects)}, not an array`);
    if (v.references !== undefined && !Array.isArray(v.references)) throw invalid(source, `${at}.references is ${describe(v.references)}, not an array`);
    const refs = list(v.affects).map((a, j) => {
      const ref = isObj(a) ? str(a.ref) : null;
      if (!ref) throw invalid(source, `${at}.affects[${j}] has no ref (a bom-ref, a BOM-link or a purl)`);
      return ref;
    });
    const status = CDX_STATES[state];
    if (!status) return;
    const id = str(v.id);
    if (!id) throw invalid(source, `${at} says ${state} but has no id: name the vulnerability it is about`);
    if (refs.length === 0) throw invalid(source, `${at} says ${state} but affects nothing: list the components in "affects"`);
    const ids = [id, ...list(v.references).map((r) => (isObj(r) ? str(r.id) : null)).filter((x): x is string => x !== null)];
    const justification = state === 'false_positive' ? 'false_positive' : str(v.analysis.justification);
    for (const ref of refs) {
      const p = purlOf.get(ref);
      for (const vid of ids) {
        st.push({ vulnerability: vid, ...(p ? { purl: p, cpe: null, bomRef: ref } : product(ref)), status, justification, impact: str(v.analysis.detail), source });
      }
    }
  });
  return { statements: doc.vulnerabilities.length, unmatched: 0 };
}

/** CSAF (schema-checked, bounded as the builder reads it: bundle/csaf.ts). */
function csafVex(doc: Obj, source: string, st: Statements): { statements: number; unmatched: number } {
  const invalidSchema = validateCsaf(doc);
  if (invalidSchema) throw invalid(source, invalidSchema);
  const info = csafInfo(doc as Parameters<typeof csafInfo>[0]);
  const products = csafProducts(doc as Parameters<typeof csafProducts>[0]);
  let vulnerabilities;
  try {
    vulnerabilities = csafVulnerabilities(doc as Parameters<typeof csafVulnerabilities>[0]);
  } catch (e) {
    if (e instanceof CsafTooLarge) throw invalid(source, e.message);
    throw e;
  }
  let statements = 0;
  let unmatched = 0;
  for (const v of vulnerabilities) {
    for (const s of v.statements) {
      statements++;
      const status: VexStatus | null = s.status === 'known_not_affected' ? 'not_affected' : FIXED_STATUSES.includes(s.status) ? 'fixed' : null;
      if (!status) continue;
      const p = products.get(s.productId);
      if (!p || (!p.purl && !p.cpe)) {
        unmatched++;
        continue;
      }
      st.push({ vulnerability: v.id, purl: p.purl, cpe: p.cpe, bomRef: null, status, justification: s.justification, impact: s.impact, source: `${source} (${info.publisher} ${info.trackingId})` });
    }
  }
  return { statements, unmatched };
}

/**
 * The statements of one VEX document (OpenVEX, CycloneDX VEX or CSAF), by its
 * shape. VEX_INVALID when it is none of them, is nested deeper than
 * MAX_VEX_DEPTH, is malformed (each reader says what it refuses) or makes
 * more statements than allowed; a well-formed document that suppresses
 * nothing is told to `onWarning`.
 */
export function parseVex(doc: unknown, source: string, opts: ReadVexOptions = {}): VexStatement[] {
  if (!isObj(doc)) throw invalid(source, `not a JSON object (${describe(doc)})`);
  const deep = jsonDepthProblem(doc, MAX_VEX_DEPTH);
  if (deep) throw invalid(source, `not a VEX document this scanner takes: ${deep}`);
  const st = new Statements(source, opts.maxStatements ?? MAX_VEX_STATEMENTS);
  let kind: string;
  let read: { statements: number; unmatched: number };
  if (typeof doc['@context'] === 'string' && doc['@context'].includes('openvex')) {
    kind = 'OpenVEX';
    read = openVex(doc, source, st);
  } else if (doc.bomFormat === 'CycloneDX') {
    kind = 'CycloneDX';
    read = cycloneDxVex(doc, source, st);
  } else if (isObj(doc.document) && typeof doc.document.csaf_version === 'string') {
    kind = 'CSAF';
    read = csafVex(doc, source, st);
  } else {
    throw invalid(source, 'neither OpenVEX (@context openvex), CycloneDX (bomFormat) nor CSAF (document.csaf_version): pass a VEX document');
  }
  if (st.out.length === 0) {
    const why = read.unmatched > 0
      ? `its ${read.unmatched} not_affected/fixed statement(s) name products only by what the scanner does not match (a purl, a CPE or a bom-ref is needed)`
      : read.statements === 0
        ? `it holds no ${kind === 'CycloneDX' ? 'vulnerabilities' : 'statements'}`
        : `none of its ${read.statements} ${kind === 'CycloneDX' ? 'vulnerabilities has a not_affected, false_positive or resolved analysis' : 'statements says not_affected or fixed'}`;
    opts.onWarning?.(`--vex ${source} suppresses nothing: ${why}`);
  }
  return st.out;
}

/** A `--vex` file: INPUT_NOT_FOUND when it cannot be read, VEX_INVALID when it is over MAX_VEX_BYTES (not read), not JSON, or as parseVex. */
export async function readVexFile(file: string, opts: ReadVexOptions = {}): Promise<VexStatement[]> {
  let text: string;
  try {
    const fh = await fs.open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      if (size > MAX_VEX_BYTES) throw invalid(file, `it is ${size} bytes, over the ${MAX_VEX_BYTES}-byte limit of a VEX file: split it, or keep the statements for the products you scan`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (e instanceof OukError) throw e;
    throw new OukError('INPUT_NOT_FOUND', `--vex ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check the path`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw invalid(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseVex(doc, file, opts);
}

/** The kit's statements (the active DB's `vex` table) for these advisories. */
export async function kitVexStatements(client: PoolClient, schema: string, advisoryIds: string[], hasVex?: boolean): Promise<VexStatement[]> {
  if (advisoryIds.length === 0) return [];
  if (hasVex === undefined) {
    const has = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(schema)}.vex`]);
    hasVex = Boolean(has.rows[0]?.t);
  }
  if (!hasVex) return [];
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
 * Keys a product is found by: its purl's type/namespace/name (lower case, as
 * purlMatches compares them), its CPE's part:vendor:product (as cpeMatches).
 */
function productKeys(p: Identified | undefined): string[] {
  if (!p) return [];
  const keys: string[] = [];
  if (p.purl) {
    const r = readPurl(p.purl);
    if (r.ok) keys.push(`p:${lower(r.purl.type)}/${lower(r.purl.namespace)}/${lower(r.purl.name)}`);
  }
  if (p.cpe) {
    const c = parseCpe(p.cpe);
    if (c) keys.push(`c:${c.part}:${c.vendor}:${c.product}`);
  }
  return keys;
}

/**
 * Splits findings into those that stand and those a statement suppresses
 * (each with its verdict). `components` by bom-ref: a finding's component.
 * Statements are indexed by (vulnerability, product key), so a finding is
 * compared only with the statements about its vulnerability and its
 * component's (or the SBOM subject's) package: linear in findings plus
 * statements, not their product.
 */
export function applyVex(
  findings: Finding[],
  statements: VexStatement[],
  components: Map<string, Pick<SbomComponent, 'ref' | 'purl' | 'cpe'>>,
  subject?: Identified,
): { findings: Finding[]; suppressed: (Finding & { vex: VexVerdict })[] } {
  if (statements.length === 0) return { findings, suppressed: [] };
  // by vulnerability id and product key, each statement with its place in `statements` (the first match wins)
  const index = new Map<string, { s: VexStatement; at: number }[]>();
  const add = (key: string, entry: { s: VexStatement; at: number }): void => {
    const l = index.get(key);
    if (l) l.push(entry);
    else index.set(key, [entry]);
  };
  // a file's statements repeat their products (one per alias): each purl and CPE is parsed once
  const parsed = new Map<string, string[]>();
  const keysOf = (s: VexStatement): string[] => {
    const memo = `${s.purl ?? ''}\u0000${s.cpe ?? ''}`;
    let k = parsed.get(memo);
    if (!k) parsed.set(memo, (k = productKeys(s)));
    return s.bomRef ? [...k, `r:${s.bomRef}`] : k;
  };
  statements.forEach((s, at) => {
    const vuln = s.vulnerability.toUpperCase();
    const keys = keysOf(s);
    for (const k of keys) add(`${vuln}\u0000${k}`, { s, at });
  });
  const subjectKeys = productKeys(subject);
  const kept: Finding[] = [];
  const suppressed: (Finding & { vex: VexVerdict })[] = [];
  for (const f of findings) {
    const component = components.get(f.component);
    const keys = [`r:${f.component}`, ...productKeys(component ?? { purl: f.purl, cpe: null }), ...subjectKeys];
    const seen = new Set<number>();
    const candidates: { s: VexStatement; at: number }[] = [];
    for (const id of [f.advisoryId, ...f.aliases]) {
      for (const k of keys) {
        for (const c of index.get(`${id.toUpperCase()}\u0000${k}`) ?? []) {
          if (!seen.has(c.at)) {
            seen.add(c.at);
            candidates.push(c);
          }
        }
      }
    }
    candidates.sort((a, b) => a.at - b.at);
    const hit = candidates.find((c) => statementMatches(c.s, f, component, subject))?.s;
    if (!hit) kept.push(f);
    else suppressed.push({ ...f, vex: { status: hit.status, justification: hit.justification, impact: hit.impact, source: hit.source } });
  }
  return { findings: kept, suppressed };
}
