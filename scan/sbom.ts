/**
 * SBOM input: CycloneDX JSON (1.4-1.6; 1.2 and 1.3 share the component model
 * and are read too) and SPDX 2.3 JSON (2.2 likewise). Out comes a flat list of
 * components with name, version, purl and CPE; nested CycloneDX components
 * are walked, the BOM's own subject (`metadata.component`) is not a
 * dependency and is left out.
 *
 * Validation is what a scan needs: the document kind and version, and the
 * shape of every component it reads. Anything else wrong is SBOM_INVALID
 * with the JSON path of the fault. Bounded: at most MAX_COMPONENTS components
 * (SBOM_TOO_LARGE), CycloneDX nesting at most MAX_NESTING deep (walked
 * without recursion); a component whose fields hold a NUL or another control
 * character is kept with a `problem` and reported as not checked, never sent
 * to the database.
 */
import fs from 'node:fs/promises';
import { OukError } from '../lib/errors.ts';

export interface SbomComponent {
  /** bom-ref / SPDXID, else the JSON path: how a report points back into the SBOM */
  ref: string;
  name: string;
  version: string | null;
  purl: string | null;
  cpe: string | null;
  /** why this component cannot be checked at all (e.g. a control character in a field) */
  problem?: string;
}

export interface Sbom {
  format: 'CycloneDX' | 'SPDX';
  specVersion: string;
  components: SbomComponent[];
  /** CycloneDX `metadata.component`: the product the BOM describes (not scanned; VEX statements about it apply to its findings) */
  subject?: { purl: string | null; cpe: string | null };
}

/** Largest SBOM file `stella scan` reads (the API's body limit is STELLA_SCAN_MAX_BYTES). */
export const MAX_SBOM_BYTES = 64 * 1024 * 1024;

/** Most components one scan takes (real SBOMs of whole images hold a few thousand). */
export const MAX_COMPONENTS = 20_000;

/** Deepest CycloneDX component nesting read. */
export const MAX_NESTING = 64;

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** A field value safe to report and to query with: control characters shown as U+FFFD. */
function clean(v: string | null): { value: string | null; bad: boolean } {
  if (v === null || !CONTROL.test(v)) return { value: v, bad: false };
  return { value: v.replace(new RegExp(CONTROL.source, 'g'), '\ufffd'), bad: true };
}

/** Marks a component whose fields hold control characters (a NUL breaks PostgreSQL, and is no package name). */
function checked(c: SbomComponent): SbomComponent {
  const fields = ['name', 'version', 'purl', 'cpe'] as const;
  const out: SbomComponent = { ...c };
  const bad: string[] = [];
  for (const f of fields) {
    const r = clean(c[f]);
    if (r.bad) bad.push(f);
    (out as unknown as Record<string, string | null>)[f] = r.value;
  }
  if (bad.length) out.problem = `its ${bad.join(', ')} hold${bad.length === 1 ? 's' : ''} a control character (shown as \ufffd)`;
  return out;
}

function tooMany(n: number): OukError {
  return new OukError('SBOM_TOO_LARGE', `the SBOM has more than ${MAX_COMPONENTS} components (${n} read so far): split it (one SBOM per image or application) and scan the parts`);
}

const CDX_VERSIONS = ['1.2', '1.3', '1.4', '1.5', '1.6'];
const SPDX_VERSIONS = ['SPDX-2.2', 'SPDX-2.3'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(msg: string): OukError {
  return new OukError('SBOM_INVALID', `${msg}: give a CycloneDX 1.4-1.6 or SPDX 2.3 JSON SBOM`);
}

function optString(o: Obj, key: string, where: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw invalid(`${where}.${key} is ${typeof v}, not a string`);
  const t = v.trim();
  return t === '' ? null : t;
}

function readCycloneDx(doc: Obj): Sbom {
  const specVersion = String(doc.specVersion ?? '');
  if (!CDX_VERSIONS.includes(specVersion)) {
    throw invalid(`CycloneDX specVersion ${JSON.stringify(doc.specVersion ?? null)} is not supported (1.4, 1.5 and 1.6 are; 1.2 and 1.3 are read too)`);
  }
  const components: SbomComponent[] = [];
  // Depth-first, in document order (a component, then its children, then its next
  // sibling), with an explicit stack: no recursion for a hostile nesting to overflow.
  const stack: Array<{ list: unknown[]; next: number; where: string }> = [];
  const enter = (list: unknown, where: string): void => {
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) throw invalid(`${where} is not an array`);
    if (stack.length >= MAX_NESTING) throw invalid(`${where} is nested ${stack.length + 1} levels deep, over the limit of ${MAX_NESTING}`);
    stack.push({ list, next: 0, where });
  };
  enter(doc.components, 'components');
  while (stack.length) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.list.length) {
      stack.pop();
      continue;
    }
    const i = frame.next++;
    const c = frame.list[i];
    const at = `${frame.where}[${i}]`;
    if (!isObj(c)) throw invalid(`${at} is not an object`);
    const name = optString(c, 'name', at);
    if (!name) throw invalid(`${at}.name is missing (every CycloneDX component has a name)`);
    if (components.length >= MAX_COMPONENTS) throw tooMany(components.length + 1);
    components.push(
      checked({
        ref: optString(c, 'bom-ref', at) ?? at,
        name: [optString(c, 'group', at), name].filter(Boolean).join('/'),
        version: optString(c, 'version', at),
        purl: optString(c, 'purl', at),
        cpe: optString(c, 'cpe', at),
      }),
    );
    enter(c.components, `${at}.components`);
  }
  const meta = isObj(doc.metadata) && isObj(doc.metadata.component) ? doc.metadata.component : null;
  const subject = meta ? { purl: typeof meta.purl === 'string' ? meta.purl : null, cpe: typeof meta.cpe === 'string' ? meta.cpe : null } : null;
  return { format: 'CycloneDX', specVersion, components, ...(subject && (subject.purl || subject.cpe) ? { subject } : {}) };
}

function readSpdx(doc: Obj): Sbom {
  const specVersion = String(doc.spdxVersion ?? '');
  if (!SPDX_VERSIONS.includes(specVersion)) {
    throw invalid(`spdxVersion ${JSON.stringify(doc.spdxVersion ?? null)} is not supported (SPDX-2.3; SPDX-2.2 is read too)`);
  }
  const packages = doc.packages ?? [];
  if (!Array.isArray(packages)) throw invalid('packages is not an array');
  if (packages.length > MAX_COMPONENTS) throw tooMany(packages.length);
  const components: SbomComponent[] = packages.map((p, i) => {
    const at = `packages[${i}]`;
    if (!isObj(p)) throw invalid(`${at} is not an object`);
    const name = optString(p, 'name', at);
    if (!name) throw invalid(`${at}.name is missing (every SPDX package has a name)`);
    const spdxId = optString(p, 'SPDXID', at);
    if (!spdxId) throw invalid(`${at}.SPDXID is missing`);
    let purl: string | null = null;
    let cpe: string | null = null;
    const refs = p.externalRefs ?? [];
    if (!Array.isArray(refs)) throw invalid(`${at}.externalRefs is not an array`);
    refs.forEach((r, j) => {
      const rat = `${at}.externalRefs[${j}]`;
      if (!isObj(r)) throw invalid(`${rat} is not an object`);
      const type = optString(r, 'referenceType', rat);
      const locator = optString(r, 'referenceLocator', rat);
      if (!type || !locator) throw invalid(`${rat} needs referenceType and referenceLocator`);
      if (type === 'purl' && !purl) purl = locator;
      else if ((type === 'cpe23Type' || type === 'cpe22Type') && !cpe) cpe = locator;
    });
    return checked({ ref: spdxId, name, version: optString(p, 'versionInfo', at), purl, cpe });
  });
  return { format: 'SPDX', specVersion, components };
}

/** Reads an already parsed JSON document. */
export function parseSbom(doc: unknown): Sbom {
  if (!isObj(doc)) throw invalid(`the document is ${Array.isArray(doc) ? 'an array' : typeof doc}, not a JSON object`);
  if (doc.bomFormat === 'CycloneDX') return readCycloneDx(doc);
  if (typeof doc.spdxVersion === 'string') return readSpdx(doc);
  if (doc.bomFormat !== undefined) throw invalid(`bomFormat ${JSON.stringify(doc.bomFormat)} is not CycloneDX`);
  throw invalid('the document is neither CycloneDX (no "bomFormat") nor SPDX (no "spdxVersion")');
}

/** SBOM text as a JSON document; SBOM_INVALID when it is not JSON. */
export function parseSbomJson(text: string, source = 'the SBOM'): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new OukError('SBOM_INVALID', `${source} is not valid JSON (${(e as Error).message}): only JSON SBOMs are read (CycloneDX 1.4-1.6, SPDX 2.3)`, { cause: e });
  }
}

/** Parses SBOM text (JSON). */
export function parseSbomText(text: string, source = 'the SBOM'): Sbom {
  return parseSbom(parseSbomJson(text, source));
}

/**
 * The text of the SBOM file `file`: INPUT_NOT_FOUND when it is not a readable
 * file, `tooLarge(size)` when it is larger than `maxBytes` (checked before a
 * byte is read).
 */
export async function readSbomFileText(file: string, maxBytes: number, tooLarge: (size: number) => OukError): Promise<{ text: string; bytes: number }> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    throw new OukError('INPUT_NOT_FOUND', `SBOM ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check the path`, { cause: e });
  }
  if (!st.isFile()) throw new OukError('INPUT_NOT_FOUND', `SBOM ${file} is not a file`);
  if (st.size > maxBytes) throw tooLarge(st.size);
  return { text: await fs.readFile(file, 'utf8'), bytes: st.size };
}

export async function readSbomFile(file: string): Promise<Sbom> {
  const { text } = await readSbomFileText(file, MAX_SBOM_BYTES, (size) => new OukError('SBOM_INVALID', `SBOM ${file} is ${size} bytes, above the ${MAX_SBOM_BYTES}-byte limit`));
  return parseSbomText(text, `SBOM ${file}`);
}
