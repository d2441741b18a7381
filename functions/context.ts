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
  /** How the stage goes about it, when it chooses (the load of a full kit: "full: loaded whole", "full: N changed of M, applied onto V"). */
  mode?: string;
}

/** A stage job's progress as its readers show it: counts in their unit, and the percentage when it is known. */
export interface ProgressReading {
  done: number | null;
  total: number | null;
  unit: string;
  percent: number | null;
}

/**
 * Reads a stage job's progress as BullMQ keeps it — a StageProgress, a bare
 * percentage or `{progress}` — one way for the dashboard, `stella ouk jobs`
 * and the import's progress bars. Null for anything else.
 */
export function readStageProgress(x: unknown): ProgressReading | null {
  if (typeof x === 'number') return { done: null, total: null, unit: '', percent: x };
  if (!x || typeof x !== 'object' || Array.isArray(x)) return null;
  const o = x as Record<string, unknown>;
  const done = [o.done, o.bytes, o.rows, o.members, o.processed].find((v): v is number => typeof v === 'number') ?? null;
  const total = typeof o.total === 'number' && o.total > 0 ? o.total : null;
  const percent = typeof o.progress === 'number' ? o.progress : done !== null && total !== null ? Math.min(100, Math.round((done / total) * 100)) : null;
  return { done, total, unit: typeof o.unit === 'string' ? o.unit : '', percent };
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
  config: Pick<Config, 'bucket' | 'trustedKeys'> & Partial<Pick<Config, 'maxClockSkewSeconds' | 'trustRoot' | 'requireAttestation' | 'cryptoPolicy'>>;
  /**
   * The host's trusted keys (OUK_TRUSTED_KEYS), loaded when a verify runs, never from a bundle;
   * not used when a root of trust is pinned (config.trustRoot, OUK_TRUST_ROOT: functions/common/site-trust.ts).
   */
  trustedKeys(): Promise<TrustedKey[]>;
  logger: Logger;
  progress(progress: StageProgress): void;
  attempt: AttemptInfo;
  /** The site's OCI registry (OUK_REGISTRY_URL) and repository prefix; absent or null: images are not pushed. */
  registry?: { client: RegistryClient; prefix: string } | null;
  /** Current time (tests move it to check expiry). */
  now(): Date;
}

// The stages name their schemas and staged members by one rule (lib/storage-names.ts).
export { deltaSchemaFor, schemaFor, stagedMarker, stagedPrefix, touchedTableName, undoSchemaFor } from '../lib/storage-names.ts';

/** Throttles progress reports to one every `everyMs` (the last one always goes out via flush). */
export function throttledProgress(report: (progress: StageProgress) => void, everyMs = 500): { update(progress: StageProgress): void; flush(): void } {
  let last = 0;
  let pending: StageProgress | null = null;
  return {
    update(progress) {
      pending = progress;
      const now = Date.now();
      if (now - last >= everyMs) {
        last = now;
        pending = null;
        report(progress);
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
