/**
 * Preflight for `stella ouk import`: is there room for this bundle before any
 * byte is uploaded? From the manifest (read from the start of the tarball):
 *
 *  - the object store keeps the tarball and, while importing, every member
 *    staged unpacked: tarball size + the members' sizes;
 *  - PostgreSQL holds the DB members as tables plus their indexes: about twice
 *    the DB members' size (DB_FACTOR), while the previous DB is kept too.
 *
 * Free space is known when the store or the database keeps its files on this
 * machine (the local s3rver's directory; PostgreSQL's data_directory when the
 * server is local and the directory readable); otherwise that check is skipped
 * and the report says so.
 */
import fs from 'node:fs/promises';
import type { Manifest } from '../../bundle/manifest.ts';
import { OukError } from '../../lib/errors.ts';
import { isLoopback } from '../../lib/loopback.ts';
import type { Pool } from '../../infra/db.ts';

/** Table bytes + index bytes per byte of COPY text, measured on the synthetic bundles with margin. */
export const DB_FACTOR = 2;

export interface SpaceNeed {
  store: number;
  database: number;
}

export function spaceNeeded(manifest: Manifest, tarballSize: number): SpaceNeed {
  const members = manifest.members.reduce((n, m) => n + m.size, 0);
  const db = manifest.members.filter((m) => m.role === 'db' || m.role === 'removed').reduce((n, m) => n + m.size, 0);
  return { store: tarballSize + members, database: Math.ceil(db * DB_FACTOR) };
}

export async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await fs.statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/** PostgreSQL's data directory when it is on this machine and readable, else null. */
export async function localDataDirectory(pool: Pool, databaseUrl: string): Promise<string | null> {
  let host: string;
  try {
    host = new URL(databaseUrl).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return null;
  }
  if (host && !isLoopback(host)) return null;
  try {
    const r = await pool.query<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'data_directory'`);
    const dir = r.rows[0]?.setting;
    if (!dir) return null;
    await fs.access(dir);
    return dir;
  } catch {
    return null;
  }
}

export interface SpaceCheck {
  need: SpaceNeed;
  storeFree: number | null;
  databaseFree: number | null;
  notes: string[];
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Throws INSUFFICIENT_SPACE when a known free space is short; reports what could not be checked. */
export function checkSpace(need: SpaceNeed, where: { storeDir: string | null; storeFree: number | null; dataDir: string | null; databaseFree: number | null }): SpaceCheck {
  const notes: string[] = [];
  if (where.storeFree === null) notes.push('free space of the object store is not known here (remote store): not checked');
  else if (need.store > where.storeFree) {
    throw new OukError(
      'INSUFFICIENT_SPACE',
      `the object store (${where.storeDir}) has ${formatBytes(where.storeFree)} free, this bundle needs ${formatBytes(need.store)} (the tarball and its members staged unpacked): free space there, or remove old bundles from the bucket`,
    );
  }
  if (where.databaseFree === null) notes.push('free space of the PostgreSQL data directory is not known here (remote server or unreadable): not checked');
  else if (need.database > where.databaseFree) {
    throw new OukError(
      'INSUFFICIENT_SPACE',
      `PostgreSQL's data directory (${where.dataDir}) has ${formatBytes(where.databaseFree)} free, loading this bundle needs about ${formatBytes(need.database)} (tables and indexes, beside the active DB): free space there first`,
    );
  }
  return { need, storeFree: where.storeFree, databaseFree: where.databaseFree, notes };
}
