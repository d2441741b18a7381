/**
 * Which of a kit's optional tables (bundle/extra-tables.ts) a DB schema
 * holds, in one round trip: a scan asks once, then reads only those, rather
 * than asking before each read.
 */
import type { PoolClient } from 'pg';
import { ident } from '../infra/db.ts';

export const OPTIONAL_TABLES = ['vex', 'kev', 'euvd_kev', 'epss'] as const;
export type OptionalTables = Record<(typeof OPTIONAL_TABLES)[number], boolean>;

export async function optionalTables(client: Pick<PoolClient, 'query'>, schema: string): Promise<OptionalTables> {
  const r = await client.query<Record<string, string | null>>(
    `SELECT ${OPTIONAL_TABLES.map((t, i) => `to_regclass($${i + 1}) AS ${t}`).join(', ')}`,
    OPTIONAL_TABLES.map((t) => `${ident(schema)}.${ident(t)}`),
  );
  const row = r.rows[0] ?? {};
  return Object.fromEntries(OPTIONAL_TABLES.map((t) => [t, Boolean(row[t])])) as OptionalTables;
}

/**
 * Which optional tables the schema holds with at least one row: a table a
 * kit carried empty (a kit built without that feed) is never read. For the
 * per-DB cache (active-db-cache.ts): asked once a DB, so two round trips.
 */
export async function optionalTablesWithRows(client: Pick<PoolClient, 'query'>, schema: string): Promise<OptionalTables> {
  const has = await optionalTables(client, schema);
  const present = OPTIONAL_TABLES.filter((t) => has[t]);
  if (present.length === 0) return has;
  const r = await client.query<Record<string, boolean>>(`SELECT ${present.map((t) => `EXISTS (SELECT 1 FROM ${ident(schema)}.${ident(t)}) AS ${t}`).join(', ')}`);
  const row = r.rows[0] ?? {};
  return Object.fromEntries(OPTIONAL_TABLES.map((t) => [t, has[t] && row[t] === true])) as OptionalTables;
}
