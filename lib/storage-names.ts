/**
 * The names the pipeline gives what it stores, each as a make/parse pair so
 * that a name is written in one place and read back by the same rule:
 *
 *   PostgreSQL schemas   ouk_db_<import id>      a loaded full DB
 *                        ouk_delta_<import id>   a delta's rows before activation
 *                        ouk_undo_<import id>    the rows a delta's activation replaced
 *   object-store keys    staged/<sha256>/<import id>/<member path>   unpacked members
 *   BullMQ job ids       <import id>-<stage>     (BullMQ ids may not contain ':')
 *
 * An import id is 24 hex digits (queue/identity.ts derives it from the bundle object).
 */
import type { StageName } from './stages.ts';

const IMPORT_ID = /^[0-9a-f]{24}$/;

// --- DB schemas ---

export const SCHEMA_KINDS = ['db', 'delta', 'undo'] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

/** The pattern of every schema name below, for PostgreSQL's `~` (the same rule as parseSchemaName). */
export const SCHEMA_NAME_PATTERN = '^ouk_(db|delta|undo)_[0-9a-f]{24}$';
const SCHEMA_NAME = new RegExp(SCHEMA_NAME_PATTERN);

export function schemaName(kind: SchemaKind, importId: string): string {
  if (!IMPORT_ID.test(importId)) throw new Error(`not an import id: ${importId}`);
  return `ouk_${kind}_${importId}`;
}

/** The kind and import of a pipeline schema's name, or null for any other name. */
export function parseSchemaName(name: string): { kind: SchemaKind; importId: string } | null {
  if (!SCHEMA_NAME.test(name)) return null;
  const [, kind, importId] = /^ouk_([a-z]+)_([0-9a-f]{24})$/.exec(name)!;
  return { kind: kind as SchemaKind, importId: importId! };
}

/** The DB schema a full import's tables are loaded into. */
export function schemaFor(importId: string): string {
  return schemaName('db', importId);
}

/** The schema a delta's rows are loaded into before activate applies them to the active DB. */
export function deltaSchemaFor(importId: string): string {
  return schemaName('delta', importId);
}

/** Where a delta's activation saves the rows it replaced (what its rollback restores). */
export function undoSchemaFor(importId: string): string {
  return schemaName('undo', importId);
}

/**
 * The table of an undo schema listing the keys a delta touched in one table:
 * an extra table's (functions/common/extras.ts), and, for a format-3 delta,
 * the advisories of each core table but advisories; where a core table has
 * none, the delta touched all of `touched` in it.
 */
export function touchedTableName(table: string): string {
  return `touched_${table}`;
}

// --- staged members in the object store ---

export const STAGING_PREFIX = 'staged/';

/** Object-store prefix under which unpack stages a bundle's members. */
export function stagedPrefix(digest: string, importId: string): string {
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  if (!/^[0-9a-z-]+$/i.test(importId)) throw new Error(`not an import id: ${importId}`);
  // Under the bundle's digest, then the import: two imports of the same bytes
  // (the same kit dropped under two names) never share, clobber or clean up
  // each other's staged members.
  return `${STAGING_PREFIX}${digest}/${importId}/`;
}

/** The object that says an import's members are all staged. */
export function stagedMarker(digest: string, importId: string): string {
  return `${stagedPrefix(digest, importId)}.complete`;
}

/** The staged prefix (`staged/<digest>/<import id>/`) an object key lies under, with its import, or null. */
export function parseStagedKey(key: string): { prefix: string; digest: string; importId: string } | null {
  const m = /^staged\/([0-9a-f]{64})\/([0-9a-f]{24})\//.exec(key);
  return m ? { prefix: `${STAGING_PREFIX}${m[1]}/${m[2]}/`, digest: m[1]!, importId: m[2]! } : null;
}

// --- BullMQ job ids ---

/** BullMQ job id of an import's stage. */
export function jobIdFor(importId: string, stage: StageName): string {
  return `${importId}-${stage}`;
}

/** The import of a stage's job id, or null when the id is not `<import id>-<stage>`. */
export function importIdOfJobId(jobId: string, stage: string): string | null {
  const suffix = `-${stage}`;
  return jobId.endsWith(suffix) ? jobId.slice(0, -suffix.length) : null;
}
