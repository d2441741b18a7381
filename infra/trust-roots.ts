/**
 * The site's root of trust in PostgreSQL (ouk_meta.trust_roots,
 * infra/sql/008_trust_root.sql): the pinned root and each root a verified kit
 * carried, as raw documents, one chain per pinned file. The only module that
 * touches the table. It stores bytes and versions only: checking a root is
 * signing/'s work (functions/common/site-trust.ts rebuilds the trust from
 * these rows by the same chain walk a kit's roots go through).
 *
 * Insert-only: `storeTrustRoots` adds versions with ON CONFLICT DO NOTHING
 * (two verifies storing the same step agree), the table's trigger refuses
 * UPDATE and DELETE, and the current root is the highest version stored.
 */
import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface StoredRoot {
  pinnedSha256: string;
  version: number;
  document: Buffer;
  sha256: string;
  expires: Date;
  source: string;
  importId: string | null;
  kitVersion: string | null;
  storedAt: Date;
}

export interface RootToStore {
  version: number;
  document: Buffer;
  sha256: string;
  expires: Date;
  source: string;
}

interface Row {
  pinned_sha256: string;
  version: number;
  document: Buffer;
  sha256: string;
  expires: Date;
  source: string;
  import_id: string | null;
  kit_version: string | null;
  stored_at: Date;
}

const COLUMNS = 'pinned_sha256, version, document, sha256, expires, source, import_id, kit_version, stored_at';

function fromRow(r: Row): StoredRoot {
  return {
    pinnedSha256: r.pinned_sha256,
    version: r.version,
    document: r.document,
    sha256: r.sha256,
    expires: r.expires,
    source: r.source,
    importId: r.import_id,
    kitVersion: r.kit_version,
    storedAt: r.stored_at,
  };
}

/** The chain stored for the pinned root with this sha256, oldest first (empty before the first verified kit). */
export async function readTrustChain(q: Queryable, pinnedSha256: string): Promise<StoredRoot[]> {
  const r = await q.query<Row>(`SELECT ${COLUMNS} FROM ouk_meta.trust_roots WHERE pinned_sha256 = $1 ORDER BY version`, [pinnedSha256]);
  return r.rows.map(fromRow);
}

/**
 * The newest root of the chain for `pinnedSha256`, or — without one — of the
 * chain stored last (what `stella trust show` prints when it does not know
 * the pinned file); null when nothing is stored or the table does not exist
 * yet (read-only callers do not migrate).
 */
export async function readCurrentRoot(q: Queryable, pinnedSha256?: string): Promise<StoredRoot | null> {
  const present = (await q.query<{ present: boolean }>("SELECT to_regclass('ouk_meta.trust_roots') IS NOT NULL AS present")).rows[0]?.present;
  if (!present) return null;
  const r = pinnedSha256
    ? await q.query<Row>(`SELECT ${COLUMNS} FROM ouk_meta.trust_roots WHERE pinned_sha256 = $1 ORDER BY version DESC LIMIT 1`, [pinnedSha256])
    : await q.query<Row>(
        `SELECT ${COLUMNS} FROM ouk_meta.trust_roots
          WHERE pinned_sha256 = (SELECT pinned_sha256 FROM ouk_meta.trust_roots ORDER BY stored_at DESC, version DESC LIMIT 1)
          ORDER BY version DESC LIMIT 1`,
      );
  return r.rows[0] ? fromRow(r.rows[0]) : null;
}

/**
 * Adds `roots` to the chain of `pinnedSha256`, oldest first. A version
 * already there is left as it is when it holds the same document; when it
 * holds ANOTHER document (two different roots of one version, both signed:
 * the publisher's root keys signed twice), nothing more is added and
 * `conflict` names the version — the caller refuses the kit. `hostNow` is this
 * host's clock, kept for the record.
 */
export async function storeTrustRoots(
  q: Queryable,
  pinnedSha256: string,
  roots: readonly RootToStore[],
  from: { importId: string | null; kitVersion: string | null },
  hostNow: Date,
): Promise<{ added: number[]; conflict: { version: number; stored: string; offered: string } | null }> {
  const added: number[] = [];
  for (const root of [...roots].sort((a, b) => a.version - b.version)) {
    const r = await q.query(
      `INSERT INTO ouk_meta.trust_roots (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (pinned_sha256, version) DO NOTHING`,
      [pinnedSha256, root.version, root.document, root.sha256, root.expires, root.source, from.importId, from.kitVersion, hostNow],
    );
    if ((r.rowCount ?? 0) > 0) {
      added.push(root.version);
      continue;
    }
    const held = await q.query<{ sha256: string }>('SELECT sha256 FROM ouk_meta.trust_roots WHERE pinned_sha256 = $1 AND version = $2', [pinnedSha256, root.version]);
    const stored = held.rows[0]?.sha256;
    if (stored && stored !== root.sha256) return { added, conflict: { version: root.version, stored, offered: root.sha256 } };
  }
  return { added, conflict: null };
}
