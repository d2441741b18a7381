/**
 * Reads a package URL (purl-spec) with packageurl-js and, when it cannot be
 * read, says what is wrong with it in the purl's own terms ("missing the
 * pkg: scheme", "no name", "type \"1npm\" starts with a digit"). The
 * library's own messages are used only where they are its validation
 * messages about the purl; anything else it throws (a fault inside the
 * library) never reaches a report: the purl is checked here against the
 * spec's grammar instead, and the first rule it breaks is named.
 */
import { PackageURL } from 'packageurl-js';

export type PurlResult = { ok: true; purl: PackageURL } | { ok: false; reason: string };

/** packageurl-js prefixes its own validation errors with this (src/error.js). */
const LIBRARY_PREFIX = 'Invalid purl: ';

function invalid(what: string): PurlResult {
  return { ok: false, reason: `invalid purl: ${what}` };
}

function decodes(part: string): boolean {
  try {
    decodeURIComponent(part);
    return true;
  } catch {
    return false;
  }
}

/** The first rule of the purl grammar `text` breaks, or null when it breaks none of these. */
export function purlProblem(text: string): string | null {
  const s = text.trim();
  if (s === '') return 'empty';
  if (!/^pkg:/i.test(s)) return "missing the 'pkg:' scheme (pkg:type/namespace/name@version)";
  const rest = s.slice(4).replace(/^\/+/, '').replace(/#.*$/, '').replace(/\?.*$/, '');
  const slash = rest.indexOf('/');
  const type = slash === -1 ? rest : rest.slice(0, slash);
  if (type === '') return 'no type (pkg:type/name)';
  if (/^\d/.test(type)) return `type "${type}" starts with a digit`;
  if (!/^[A-Za-z0-9.+-]+$/.test(type)) return `type "${type}" has a character other than letters, digits, ".", "+" and "-"`;
  const path = slash === -1 ? '' : rest.slice(slash + 1);
  const at = path.lastIndexOf('@');
  const beforeVersion = at === -1 ? path : path.slice(0, at);
  const name = beforeVersion.slice(beforeVersion.lastIndexOf('/') + 1);
  if (name === '') return 'no name';
  for (const [label, part] of [
    ['name', name],
    ['namespace', beforeVersion.slice(0, Math.max(0, beforeVersion.lastIndexOf('/')))],
    ['version', at === -1 ? '' : path.slice(at + 1)],
  ] as const) {
    if (!decodes(part)) return `the ${label} "${part}" is not valid percent-encoding`;
  }
  if (type.toLowerCase() === 'golang' && at !== -1) {
    const version = decodeURIComponent(path.slice(at + 1));
    if (version.startsWith('v') && !/^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.test(version)) {
      return `golang version "${version}" starts with "v" but is not a semantic version (vMAJOR.MINOR.PATCH)`;
    }
  }
  return null;
}

export function readPurl(text: string): PurlResult {
  const problem = purlProblem(text);
  if (problem) return invalid(problem);
  try {
    return { ok: true, purl: PackageURL.fromString(text.trim()) };
  } catch (e) {
    const message = e instanceof Error ? e.message : '';
    if (message.startsWith(LIBRARY_PREFIX)) return invalid(message.slice(LIBRARY_PREFIX.length));
    return invalid('not readable as pkg:type/namespace/name@version?qualifiers#subpath');
  }
}
