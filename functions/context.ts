/**
 * What every pipeline stage is given. A stage is a plain async function
 * `(payload, ctx) => result`: its inputs are read from the object store and
 * PostgreSQL, its outputs written there, and all I/O comes in through `ctx`, so
 * the same function runs under a BullMQ worker (queue/workers.ts), in a test, or
 * from the CLI. No stage depends on local disk left by an earlier one.
 */
import { Transform, type Readable } from 'node:stream';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pool } from '../infra/db.ts';
import type { ObjectStore } from '../infra/store.ts';
import type { RegistryClient } from '../infra/registry.ts';
import type { TrustedKey } from '../signing/index.ts';

export { STAGES, type StageName } from '../lib/stages.ts';

/** The job payload of every stage: the bundle object's identity. */
export interface StagePayload {
  importId: string;
  bucket: string;
  key: string;
  etag: string;
}

/** Progress a stage reports (BullMQ job progress; the CLI draws bars from it). */
export interface StageProgress {
  /** What `done` and `total` count: bytes, rows, members. */
  unit: 'bytes' | 'rows' | 'members';
  done: number;
  total: number | null;
  /** What is being worked on right now, e.g. a member path. */
  current?: string;
}

export interface AttemptInfo {
  /** 1 for the first run of this job. */
  number: number;
  /** Attempts BullMQ will make in all. */
  max: number;
}

export interface StageContext {
  store: ObjectStore;
  pool: Pool;
  config: Pick<Config, 'bucket' | 'trustedKeys'> & Partial<Pick<Config, 'maxClockSkewSeconds' | 'trustRoot' | 'requireAttestation'>>;
  /**
   * The host's trusted keys (OUK_TRUSTED_KEYS), loaded when a verify runs, never from a bundle;
   * not used when a root of trust is pinned (config.trustRoot, OUK_TRUST_ROOT: functions/common/site-trust.ts).
   */
  trustedKeys(): Promise<TrustedKey[]>;
  logger: Logger;
  progress(p: StageProgress): void;
  attempt: AttemptInfo;
  /** The site's OCI registry (OUK_REGISTRY_URL) and repository prefix; absent or null: images are not pushed. */
  registry?: { client: RegistryClient; prefix: string } | null;
  /** Current time (tests move it to check expiry). */
  now(): Date;
}

/** The DB schema a full import's tables are loaded into. */
export function schemaFor(importId: string): string {
  if (!/^[0-9a-f]{24}$/.test(importId)) throw new Error(`not an import id: ${importId}`);
  return `ouk_db_${importId}`;
}

/** The schema a delta's rows are loaded into before activate applies them to the active DB. */
export function deltaSchemaFor(importId: string): string {
  return schemaFor(importId).replace(/^ouk_db_/, 'ouk_delta_');
}

/** Where a delta's activation saves the rows it replaced (what its rollback restores). */
export function undoSchemaFor(importId: string): string {
  return schemaFor(importId).replace(/^ouk_db_/, 'ouk_undo_');
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

/** Object-store prefix under which unpack stages a bundle's members. */
export function stagedPrefix(digest: string, importId: string): string {
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  if (!/^[0-9a-z-]+$/i.test(importId)) throw new Error(`not an import id: ${importId}`);
  // Under the bundle's digest, then the import: two imports of the same bytes
  // (the same kit dropped under two names) never share, clobber or clean up
  // each other's staged members.
  return `staged/${digest}/${importId}/`;
}

export function stagedMarker(digest: string, importId: string): string {
  return `${stagedPrefix(digest, importId)}.complete`;
}

/** Throttles progress reports to one every `everyMs` (the last one always goes out via flush). */
export function throttledProgress(report: (p: StageProgress) => void, everyMs = 500): { update(p: StageProgress): void; flush(): void } {
  let last = 0;
  let pending: StageProgress | null = null;
  return {
    update(p) {
      pending = p;
      const now = Date.now();
      if (now - last >= everyMs) {
        last = now;
        pending = null;
        report(p);
      }
    },
    flush() {
      if (pending) report(pending);
      pending = null;
    },
  };
}

/** A pass-through of `source` that reports each chunk's length; errors of `source` propagate. */
export function countBytes(source: Readable, onBytes: (n: number) => void): Readable {
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  source.on('error', (e) => out.destroy(e));
  return source.pipe(out);
}
