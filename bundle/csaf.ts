/**
 * CSAF 2.0 documents (OASIS Common Security Advisory Framework: advisories and
 * VEX), read the same way by the builder (builder/feeds/csaf.ts: the regional
 * feed) and the scanner (scan/vex.ts: `--vex FILE`):
 *
 *   validateCsaf(doc)       the CSAF 2.0 JSON schema (csaf-schema/, shipped)
 *   csafProducts(doc)       product_id -> how the product is identified: a
 *                           purl and/or CPE from product_identification_helper,
 *                           its version or version range from the branch path;
 *                           a relationship's product (a component in a
 *                           platform) is identified as its component
 *   csafStatements(doc)     (vulnerability, product, status) for every
 *                           product_status entry, with the product's
 *                           justification (flags) and impact statement (threats)
 *
 * A document is outside input (a CSAF provider's, or an operator's `--vex`
 * file), so everything here is bounded and linear in its size: nesting deeper
 * than MAX_CSAF_DEPTH is refused before the schema is checked (the validator
 * and the product tree walk would otherwise recurse once per `branches`
 * level), the tree is walked with an explicit stack, the schema's
 * `uniqueItems` is checked with a hash set instead of ajv's pairwise
 * comparison (quadratic for arrays of `$ref` items: 80,000 product ids took
 * 19 s), and product groups are expanded at most MAX_GROUP_EXPANSION times a
 * document (CsafTooLarge).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { jsonDepthProblem } from '../lib/json-bounds.ts';
import { canonicalJson } from './manifest.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/**
 * Deepest nesting of objects and arrays read (real documents: at most 19,
 * with five levels of `branches`); each `branches` level takes two.
 */
export const MAX_CSAF_DEPTH = 64;

/** Most product ids that product groups (`group_ids` of flags and threats) may expand to in one document. */
export const MAX_GROUP_EXPANSION = 1_000_000;

/** A document over one of this module's bounds (MAX_GROUP_EXPANSION): the caller skips or refuses it with the message. */
export class CsafTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsafTooLarge';
  }
}

let validator: ValidateFunction | null = null;

/** The schema with every `uniqueItems` replaced by LINEAR_UNIQUE (the shipped files stay OASIS's, byte for byte). */
function withLinearUniqueItems(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(withLinearUniqueItems);
  if (!isObj(schema)) return schema;
  const out: Obj = {};
  for (const [k, v] of Object.entries(schema)) out[k === 'uniqueItems' ? LINEAR_UNIQUE : k] = withLinearUniqueItems(v);
  return out;
}

const LINEAR_UNIQUE = 'x-stella-unique-items';

/**
 * `uniqueItems` in one pass: strings into a set as they are, other items by
 * their canonical JSON (keys sorted: equal as ajv's deep equality is). Items
 * are at most MAX_CSAF_DEPTH deep, checked before the validator runs.
 */
function uniqueItems(on: boolean, data: unknown[]): boolean {
  if (!on) return true;
  const strings = new Set<string>();
  const others = new Set<string>();
  for (let i = 0; i < data.length; i++) {
    const item = data[i];
    const seen = typeof item === 'string' ? strings : others;
    const key = typeof item === 'string' ? item : canonicalJson(item);
    if (seen.has(key)) {
      // the first copy, found once (the error path): the same key again from the start
      const j = data.findIndex((x) => (typeof x === 'string' ? typeof item === 'string' && x === key : typeof item !== 'string' && canonicalJson(x) === key));
      uniqueItems.errors = [{ keyword: 'uniqueItems', params: { i, j }, message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)` }];
      return false;
    }
    seen.add(key);
  }
  return true;
}
uniqueItems.errors = null as null | Array<{ keyword: string; params: Record<string, unknown>; message: string }>;

function schemaValidator(): ValidateFunction {
  if (validator) return validator;
  const load = (f: string): Obj => JSON.parse(readFileSync(new URL(`./csaf-schema/${f}`, import.meta.url), 'utf8')) as Obj;
  // the CVSS schemas are draft-04 and draft-07 documents the 2020-12 validator reads as plain schemas
  const ajv = new Ajv2020({ allErrors: false, strict: false, validateFormats: true, validateSchema: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addKeyword({ keyword: LINEAR_UNIQUE, type: 'array', schemaType: 'boolean', errors: true, validate: uniqueItems as never });
  for (const v of ['2.0', '3.0', '3.1']) {
    // the CSAF schema refers to them without the `?date` their own $id carries
    const { $id: _id, $schema: _s, id: _draft4Id, ...schema } = load(`cvss-v${v}.json`);
    ajv.addSchema(withLinearUniqueItems(schema) as Obj, `https://www.first.org/cvss/cvss-v${v}.json`);
  }
  validator = ajv.compile(withLinearUniqueItems(load('csaf_json_schema.json')) as Obj);
  return validator;
}

/**
 * null when `doc` is a valid CSAF 2.0 document, else why not: nested deeper
 * than MAX_CSAF_DEPTH (checked first, without recursion), or the first
 * schema errors, with their paths.
 */
export function validateCsaf(doc: unknown): string | null {
  const deep = jsonDepthProblem(doc, MAX_CSAF_DEPTH);
  if (deep) return `not a CSAF document this reader takes: ${deep}`;
  const validate = schemaValidator();
  if (validate(doc)) return null;
  const errors = (validate.errors ?? []).slice(0, 3).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  return `does not match the CSAF 2.0 schema: ${errors.join('; ')}`;
}

/** A file that is part of a CSAF provider's directory but not a document: provider metadata, an aggregator list, a JSON schema. */
export function csafNonDocument(doc: unknown): string | null {
  if (!isObj(doc)) return null;
  if (isObj(doc.document)) return null;
  if ('canonical_url' in doc && 'metadata_version' in doc) return 'provider metadata';
  if ('aggregator' in doc && 'csaf_providers' in doc) return 'an aggregator list';
  if (typeof doc.$schema === 'string' && 'properties' in doc) return 'a JSON schema';
  return null;
}

export interface CsafDocumentInfo {
  category: string;
  title: string | null;
  publisher: string;
  /** publisher.namespace: with tracking.id, what names a document across revisions */
  namespace: string;
  trackingId: string;
  /** tracking.current_release_date, ISO 8601 as written */
  released: string | null;
  initialRelease: string | null;
  /** tracking.version (the revision) */
  revision: string | null;
  /** `final`, `interim` or `draft` */
  status: string | null;
}

export function csafInfo(doc: Obj): CsafDocumentInfo {
  const d = isObj(doc.document) ? doc.document : {};
  const pub = isObj(d.publisher) ? d.publisher : {};
  const tr = isObj(d.tracking) ? d.tracking : {};
  return {
    category: str(d.category) ?? '',
    title: str(d.title),
    publisher: str(pub.name) ?? '',
    namespace: str(pub.namespace) ?? '',
    trackingId: str(tr.id) ?? '',
    released: str(tr.current_release_date),
    initialRelease: str(tr.initial_release_date),
    revision: str(tr.version),
    status: str(tr.status),
  };
}

/** Whether the document is a VEX document (profile `csaf_vex`). */
export function isCsafVex(info: CsafDocumentInfo): boolean {
  return info.category.toLowerCase() === 'csaf_vex';
}

export interface CsafProduct {
  id: string;
  name: string;
  purl: string | null;
  cpe: string | null;
  /** the name of a `product_version` branch on the product's path */
  version: string | null;
  /** the name of a `product_version_range` branch on the product's path (`vers:semver/<2.5.3`, or free text) */
  versionRange: string | null;
}

function helperOf(p: Obj): { purl: string | null; cpe: string | null } {
  const h = isObj(p.product_identification_helper) ? p.product_identification_helper : {};
  return { purl: str(h.purl), cpe: str(h.cpe) };
}

/** Every product of the product tree, by product_id. */
export function csafProducts(doc: Obj): Map<string, CsafProduct> {
  const out = new Map<string, CsafProduct>();
  const tree = isObj(doc.product_tree) ? doc.product_tree : {};
  // Depth first, in document order (a branch, then its branches, then its next
  // sibling), with an explicit stack: no recursion for a deep tree to overflow.
  const stack: Array<{ branches: Json[]; next: number; version: string | null; range: string | null }> = [{ branches: arr(tree.branches), next: 0, version: null, range: null }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.branches.length) {
      stack.pop();
      continue;
    }
    const b = frame.branches[frame.next++];
    if (!isObj(b)) continue;
    const cat = str(b.category);
    const name = str(b.name);
    const v = cat === 'product_version' ? name : frame.version;
    const r = cat === 'product_version_range' ? name : frame.range;
    if (isObj(b.product)) {
      const id = str(b.product.product_id);
      if (id) out.set(id, { id, name: str(b.product.name) ?? id, ...helperOf(b.product), version: v, versionRange: r });
    }
    const children = arr(b.branches);
    if (children.length > 0) stack.push({ branches: children, next: 0, version: v, range: r });
  }
  for (const p of arr(tree.full_product_names)) {
    if (!isObj(p)) continue;
    const id = str(p.product_id);
    if (id && !out.has(id)) out.set(id, { id, name: str(p.name) ?? id, ...helperOf(p), version: null, versionRange: null });
  }
  for (const rel of arr(tree.relationships)) {
    if (!isObj(rel) || !isObj(rel.full_product_name)) continue;
    const id = str(rel.full_product_name.product_id);
    const component = out.get(str(rel.product_reference) ?? '');
    if (!id || out.has(id)) continue;
    const own = helperOf(rel.full_product_name);
    out.set(id, {
      id,
      name: str(rel.full_product_name.name) ?? id,
      purl: own.purl ?? component?.purl ?? null,
      cpe: own.cpe ?? component?.cpe ?? null,
      version: component?.version ?? null,
      versionRange: component?.versionRange ?? null,
    });
  }
  return out;
}

export type CsafStatus = 'first_affected' | 'known_affected' | 'last_affected' | 'first_fixed' | 'fixed' | 'known_not_affected' | 'recommended' | 'under_investigation';

export interface CsafStatement {
  /** The vulnerability's CVE id, or its first `ids` entry. */
  vulnerability: string;
  productId: string;
  status: CsafStatus;
  /** A flag's label for the product (component_not_present, vulnerable_code_not_present, …). */
  justification: string | null;
  /** A threat of category `impact` for the product: why it is not affected. */
  impact: string | null;
}

export interface CsafVulnerability {
  id: string;
  raw: Obj;
  statements: CsafStatement[];
}

/** The vulnerabilities of a document with their product statuses; CsafTooLarge over MAX_GROUP_EXPANSION. */
export function csafVulnerabilities(doc: Obj): CsafVulnerability[] {
  const tree = isObj(doc.product_tree) ? doc.product_tree : {};
  const groups = new Map<string, string[]>();
  for (const g of arr(tree.product_groups)) {
    if (!isObj(g)) continue;
    const id = str(g.group_id);
    if (id) groups.set(id, arr(g.product_ids).map(str).filter((x): x is string => x !== null));
  }
  // A group named by many flags or threats would be expanded once each: bounded,
  // since a small document could otherwise ask for billions of product ids.
  let expanded = 0;
  const productsOf = (o: Obj): string[] => {
    const ids = arr(o.product_ids).map(str).filter((x): x is string => x !== null);
    for (const g of arr(o.group_ids)) {
      const members = groups.get(str(g) ?? '') ?? [];
      expanded += members.length;
      if (expanded > MAX_GROUP_EXPANSION) {
        throw new CsafTooLarge(`its flags and threats name product groups holding more than ${MAX_GROUP_EXPANSION} product ids in all: not a document this reader takes`);
      }
      for (const id of members) ids.push(id);
    }
    return ids;
  };
  const out: CsafVulnerability[] = [];
  for (const v of arr(doc.vulnerabilities)) {
    if (!isObj(v)) continue;
    const firstId = arr(v.ids).map((i) => (isObj(i) ? str(i.text) : null)).find((x) => x !== null);
    const id = str(v.cve) ?? firstId ?? null;
    if (!id) continue;
    const justification = new Map<string, string>();
    for (const f of arr(v.flags)) if (isObj(f) && str(f.label)) for (const p of productsOf(f)) justification.set(p, str(f.label)!);
    const impact = new Map<string, string>();
    for (const t of arr(v.threats)) if (isObj(t) && str(t.category) === 'impact' && str(t.details)) for (const p of productsOf(t)) impact.set(p, str(t.details)!);
    const statements: CsafStatement[] = [];
    const status = isObj(v.product_status) ? v.product_status : {};
    for (const [st, ids] of Object.entries(status)) {
      for (const p of arr(ids)) {
        const productId = str(p);
        if (productId) statements.push({ vulnerability: id, productId, status: st as CsafStatus, justification: justification.get(productId) ?? null, impact: impact.get(productId) ?? null });
      }
    }
    out.push({ id, raw: v, statements });
  }
  return out;
}

/** Statuses that say a product is affected, and those that say it is not (or no longer). */
export const AFFECTED_STATUSES: readonly CsafStatus[] = ['first_affected', 'known_affected', 'last_affected'];
export const FIXED_STATUSES: readonly CsafStatus[] = ['first_fixed', 'fixed'];
