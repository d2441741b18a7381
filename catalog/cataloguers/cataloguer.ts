/**
 * A cataloguer reads one kind of package record from one file of the image:
 * `wants` says from the path (and mode and size) whether a file is its,
 * `read` parses the file's bytes (never more than `maxBytes`) into packages.
 * Reading is parsing only: nothing from a layer is ever executed. What a
 * cataloguer cannot read it reports through `skip`, and returns what it could.
 */
import type { CatalogLimits } from '../limits.ts';
import type { ParsedPackage } from '../model.ts';

export interface ReadContext {
  /** the file's path in the image, without the leading slash */
  path: string;
  limits: CatalogLimits;
  /** a part of this file that was not catalogued, and why */
  skip(why: string, where?: string): void;
}

export interface Cataloguer {
  readonly name: string;
  wants(path: string, mode: number, size: number): boolean;
  maxBytes(limits: CatalogLimits): number;
  read(content: Buffer, ctx: ReadContext): ParsedPackage[] | Promise<ParsedPackage[]>;
}

/** RFC 822-style stanzas (dpkg status, apk's `K:value` lines are read elsewhere): field name → value, continuation lines joined. */
export function headerFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | null = null;
  for (const line of text.split('\n')) {
    if (line === '' || line === '\r') break;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    if (!fields.has(last)) fields.set(last, line.slice(colon + 1).trim());
  }
  return fields;
}

const SANE = /^[\x21-\x7e]{1,214}$/;

/** Whether a name or version read from a file is plausible (printable, no spaces, bounded): what is not is skipped. */
export function sane(v: unknown): v is string {
  return typeof v === 'string' && SANE.test(v);
}

/** The file as JSON, or undefined with the file listed as skipped ("not JSON"). */
export function readJson(content: Buffer, ctx: Pick<ReadContext, 'skip'>): unknown {
  try {
    return JSON.parse(content.toString('utf8')) as unknown;
  } catch {
    ctx.skip('not JSON');
    return undefined;
  }
}
