/**
 * What the load stage leaves for activate: its result (the schema it filled)
 * and the names of a delta's id-list tables in that schema. Beside both
 * stages, so neither imports the other.
 */
export interface LoadResult {
  schema: string;
  /** Rows per table (for a delta: rows staged, plus `removed` ids). */
  counts: Record<string, number>;
  bytes: number;
  /**
   * How a full kit was loaded, as the stage's progress showed it:
   * "full: loaded whole" or "full: N changed of M, applied onto V"
   * (functions/common/onto-load.ts). Absent for a delta and in records
   * written before it existed.
   */
  mode?: string;
  /** Why a full kit was loaded whole (functions/common/lineage.ts), when it was. */
  wholeBecause?: string;
  /** A full kit loaded as its difference: the active DB it applies onto, and what differs. */
  onto?: OntoResult;
}

/** The active DB a full kit's difference was computed against, and the advisories that differ. */
export interface OntoResult {
  importId: string;
  version: string;
  schema: string;
  /** advisories whose content_hash differs */
  changed: number;
  /** advisories the active DB does not have */
  added: number;
  /** advisories of the active DB the kit does not have */
  removed: number;
  /** advisories of the kit */
  advisories: number;
}

/** The table a delta's removed-id list is loaded into (one column, advisory_id). */
export const REMOVED_TABLE = 'removed';
/** The table a delta's db/cleared.tsv is loaded into (table_name, advisory_id). */
export const CLEARED_TABLE = 'cleared';
