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
}

/** The table a delta's removed-id list is loaded into (one column, advisory_id). */
export const REMOVED_TABLE = 'removed';
/** The table a delta's db/cleared.tsv is loaded into (table_name, advisory_id). */
export const CLEARED_TABLE = 'cleared';
