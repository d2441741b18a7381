/**
 * The root document: TUF root metadata, spec 1.0 (`signed._type: "root"`,
 * `spec_version`, `version`, `expires`, `keys`, `roles`, `consistent_snapshot`,
 * `signatures`), read and written by @tufjs/models (Metadata<Root>). The
 * library checks the format; this module adds what a Stella root must also be:
 *
 * - roles `root` and `kit` (and TUF's `targets`, `snapshot`, `timestamp`, which
 *   the library requires in every root: Stella writes them equal to `kit` and
 *   decides nothing by them);
 * - every role's key ids listed under `keys`, a threshold it can reach
 *   (1 ≤ threshold ≤ its keys), keys that are ECDSA P-256 under their true id
 *   (keys.ts), and no public key under two ids (a threshold counts distinct keys);
 * - an `expires` time that parses, a version from 1 up, at most MAX_ROOT_BYTES.
 *
 * Any failure is ROOT_INVALID, naming the document.
 */
import { Metadata, MetadataKind, type Root } from '@tufjs/models';
import { MAX_ROOT_BYTES } from '../../bundle/trust.ts';
import { OukError } from '../../lib/errors.ts';
import { readFailure, readSmallFile, SmallFileError } from '../small-file.ts';
import { spkiDer } from '../suites/index.ts';
import { publicKeyOf } from './keys.ts';

export type RootMetadata = Metadata<Root>;

export const ROOT_ROLE = 'root';
export const KIT_ROLE = 'kit';
/** TUF's other top-level roles, required by the format; Stella writes them equal to the kit role. */
export const TUF_MIRRORED_ROLES = ['targets', 'snapshot', 'timestamp'] as const;

/** TUF's time format: `2027-01-31T00:00:00Z`. */
const TUF_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function invalid(source: string, why: string, cause?: unknown): OukError {
  return new OukError('ROOT_INVALID', `${source} is not a valid root of trust: ${why}`, cause === undefined ? {} : { cause });
}

/** Parses and checks a root document (see the header). `source` names it in errors: a path, or a kit member. */
export function parseRoot(raw: Buffer | string, source: string): RootMetadata {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  if (bytes.length > MAX_ROOT_BYTES) throw invalid(source, `${bytes.length} bytes, over the ${MAX_ROOT_BYTES}-byte limit of a root`);
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalid(source, `not JSON (${(e as Error).message})`, e);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw invalid(source, 'not a JSON object');
  let md: RootMetadata;
  try {
    md = Metadata.fromJSON(MetadataKind.Root, data as Parameters<typeof Metadata.fromJSON>[1]);
  } catch (e) {
    throw invalid(source, `not TUF root metadata (${(e as Error).message})`, e);
  }
  if (!Number.isSafeInteger(md.signed.version) || md.signed.version < 1) throw invalid(source, `version ${md.signed.version} is not a whole number from 1 up`);
  checkRoot(md, source);
  return md;
}

/** The checks of the header, on a parsed (or freshly made) root. */
export function checkRoot(md: RootMetadata, source: string): void {
  const root = md.signed;
  if (!TUF_TIME.test(root.expires) || Number.isNaN(Date.parse(root.expires))) throw invalid(source, `expires "${root.expires}" is not a time like 2027-01-31T00:00:00Z`);
  const byDer = new Map<string, string>();
  for (const [keyid, key] of Object.entries(root.keys)) {
    if (key.keyID !== keyid) throw invalid(source, `key ${keyid} is filed under another id`);
    const der = spkiDer(publicKeyOf(key, source)).toString('base64');
    const other = byDer.get(der);
    if (other !== undefined) throw invalid(source, `keys ${other} and ${keyid} are the same public key: a threshold counts distinct keys, so a key may be listed once`);
    byDer.set(der, keyid);
  }
  for (const name of [ROOT_ROLE, KIT_ROLE]) if (!root.roles[name]) throw invalid(source, `it has no "${name}" role`);
  for (const [name, role] of Object.entries(root.roles)) {
    for (const keyid of role.keyIDs) if (!root.keys[keyid]) throw invalid(source, `role ${name} names key ${keyid}, which is not under "keys"`);
    if (!Number.isSafeInteger(role.threshold) || role.threshold < 1 || role.threshold > role.keyIDs.length) {
      throw invalid(source, `role ${name} has threshold ${role.threshold} with ${role.keyIDs.length} key(s): it must be between 1 and its number of keys`);
    }
  }
}

/** The root as a file: the document's JSON, two-space indented, with a final newline (signatures cover the canonical form of `signed`, not these bytes). */
export function serializeRoot(md: RootMetadata): string {
  return JSON.stringify(md.toJSON(), null, 2) + '\n';
}

/** Reads and parses a root file; a missing or unreadable one is INPUT_NOT_FOUND, naming `what` (e.g. `--root`). */
export async function readRootFile(path: string, what: string): Promise<{ md: RootMetadata; raw: Buffer }> {
  let raw: Buffer;
  try {
    raw = await readSmallFile(path, MAX_ROOT_BYTES);
  } catch (e) {
    if (e instanceof SmallFileError) throw invalid(path, e.message, e);
    throw new OukError('INPUT_NOT_FOUND', `cannot read the root ${path} (${what}: ${readFailure(e)}): check the path and its permissions`, { cause: e });
  }
  return { md: parseRoot(raw, path), raw };
}
