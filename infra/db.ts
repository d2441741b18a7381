/**
 * PostgreSQL: the pool, the migrations under infra/sql, and the reader's view of
 * the active DB. Readers go through `withActiveSnapshot`, which opens a
 * REPEATABLE READ, READ ONLY transaction: the active-DB pointer and every row
 * they read come from one snapshot, so an activation that commits mid-scan is
 * invisible to that scan, and a half-loaded DB is never visible at all.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { OukError } from '../lib/errors.ts';

const SQL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sql');
/** Any constant: serialises concurrent migrations across processes. */
const MIGRATION_LOCK = 0x0_5e11a;

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** A pool or one of its clients (inside a transaction): what a query needs. */
export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export function createPool(databaseUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, application_name: 'stella-ouk' });
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

export function databaseUnavailable(e: unknown): OukError {
  const msg = e instanceof Error ? e.message : String(e);
  return new OukError('DATABASE_UNAVAILABLE', `PostgreSQL is unreachable (${msg}): check DATABASE_URL and that the server is running`, { cause: e, retryable: true });
}

const guarded = new WeakSet<pg.PoolClient>();

/**
 * A client from the pool, or DATABASE_UNAVAILABLE with the fix. A connection
 * lost while the client is checked out (server restart, terminated backend)
 * rejects the running query; the client's own 'error' event is absorbed here
 * so it cannot crash the process (the pool only guards idle clients).
 */
export async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw databaseUnavailable(e);
  }
  if (!guarded.has(client)) {
    guarded.add(client);
    client.on('error', () => undefined);
  }
  return client;
}

/** The migrations this code applies (infra/sql/*.sql), in order. */
async function migrationFiles(): Promise<string[]> {
  return (await fs.readdir(SQL_DIR)).filter((f) => f.endsWith('.sql')).sort();
}

/**
 * For a process that only reads (the CLI's `status`, `jobs`, `scan`, …):
 * checks, changing nothing, that the database holds this code's schema.
 * NOTHING_ACTIVE when it holds none at all (nothing was ever imported into it,
 * or DATABASE_URL names another database); SCHEMA_OUTDATED when migrations of
 * this version are not applied yet. What migrates: `migrate`, run by the API,
 * the workers and every command that writes.
 */
export async function checkSchema(pool: pg.Pool): Promise<void> {
  const client = await connect(pool);
  let applied: Set<string>;
  try {
    const present = (await client.query<{ present: boolean }>("SELECT to_regclass('ouk_meta.migrations') IS NOT NULL AS present")).rows[0]?.present;
    if (!present) {
      throw new OukError('NOTHING_ACTIVE', 'the database holds no Stella OUK schema: nothing was ever imported into it — run `stella ouk import FILE` first (or check that DATABASE_URL names the site\'s database)');
    }
    applied = new Set((await client.query<{ name: string }>('SELECT name FROM ouk_meta.migrations')).rows.map((r) => r.name));
  } finally {
    client.release();
  }
  const pending = (await migrationFiles()).filter((f) => !applied.has(f));
  if (pending.length) {
    throw new OukError('SCHEMA_OUTDATED', `the database's schema is older than this stella (not applied yet: ${pending.join(', ')}): start the API or a worker of this version, which apply them, or run \`stella ouk import\``);
  }
}

export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await connect(pool);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE SCHEMA IF NOT EXISTS ouk_meta');
    await client.query('CREATE TABLE IF NOT EXISTS ouk_meta.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM ouk_meta.migrations')).rows.map((r) => r.name));
    for (const file of await migrationFiles()) {
      if (done.has(file)) continue;
      const sql = await fs.readFile(path.join(SQL_DIR, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO ouk_meta.migrations (name) VALUES ($1)', [file]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}

export interface ActiveDb {
  importId: string;
  version: string;
  /** Schema holding the active tables (see bundle/tables.ts). */
  schema: string;
  digest: string | null;
  activatedAt: Date;
}

/** Quotes an identifier for SQL text (schema and table names are ours, but quote anyway). */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Runs `fn` in one transaction on its own connection: COMMIT when it returns, ROLLBACK when it throws. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await connect(pool);
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

/**
 * Runs `fn` inside one REPEATABLE READ, READ ONLY transaction on the active DB.
 * Throws NOTHING_ACTIVE when no DB has been activated yet.
 */
export async function withActiveSnapshot<T>(pool: pg.Pool, fn: (client: pg.PoolClient, active: ActiveDb) => Promise<T>): Promise<T> {
  const client = await connect(pool);
  try {
    // BEGIN and the pointer in one round trip (two statements in one simple query): a scan pays a round trip less
    const [, pointer] = (await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${ACTIVE_SQL}`)) as unknown as [pg.QueryResult, pg.QueryResult<ActiveRow>];
    const active = activeOf(pointer.rows[0]);
    if (!active) throw new OukError('NOTHING_ACTIVE', 'no vulnerability DB is active yet: import a full bundle first (stella ouk import FILE)');
    const result = await fn(client, active);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

type ActiveRow = { active_import: string | null; active_version: string; active_schema: string; active_digest: string | null; activated_at: Date };
const ACTIVE_SQL = 'SELECT active_import, active_version, active_schema, active_digest, activated_at FROM ouk_meta.active_db WHERE singleton';

function activeOf(row: ActiveRow | undefined): ActiveDb | null {
  if (!row || !row.active_schema || !row.active_import) return null;
  return { importId: row.active_import, version: row.active_version, schema: row.active_schema, digest: row.active_digest, activatedAt: row.activated_at };
}

export async function readActive(q: Pick<pg.PoolClient, 'query'>): Promise<ActiveDb | null> {
  return activeOf((await q.query<ActiveRow>(ACTIVE_SQL)).rows[0]);
}
