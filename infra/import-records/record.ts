/**
 * The import record's shape (one row of ouk_meta.imports per bundle object) and
 * the mapping from its row. Stages write their state into `stages`
 * (`{"verify": {"state", "attempts", "startedAt", "finishedAt", "code", "error",
 * "result"}, ...}`).
 */
import type { Manifest } from '../../bundle/manifest.ts';
import type { StageName } from '../../lib/stages.ts';
import type { ImportState } from './states.ts';

export interface StageRecord {
  /** waiting: not a failure, the stage runs again once what it needs arrives (a delta's base) */
  state?: 'running' | 'done' | 'failed' | 'retrying' | 'waiting';
  attempts?: number;
  startedAt?: string;
  finishedAt?: string | null;
  code?: string | null;
  error?: string | null;
  result?: unknown;
}

export interface ImportRecord {
  id: string;
  bucket: string;
  objectKey: string;
  etag: string;
  size: number | null;
  digest: string | null;
  version: string | null;
  kind: 'full' | 'delta' | null;
  baseVersion: string | null;
  manifest: Manifest | null;
  manifestSha256: string | null;
  schemaName: string | null;
  state: ImportState;
  stages: Partial<Record<StageName, StageRecord>>;
  errorCode: string | null;
  error: string | null;
  allowDowngrade: boolean;
  force: boolean;
  flowAddedAt: Date | null;
  activatedAt: Date | null;
  counts: Record<string, number> | null;
  /** who created the record: 'webhook', 'cli', 'reconciler' or 'mirror' (null for records from before 003) */
  startedBy: string | null;
  /** where its kit is under quarantine/ (set just before the first copy), when and for what code it was quarantined */
  quarantineKey: string | null;
  quarantinedAt: Date | null;
  quarantineCode: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * The columns a stage fills in as it learns about the bundle (verify: what the
 * signed manifest says; load: the schema and its counts), JSON ones as text.
 */
export interface RecordColumns {
  digest?: string;
  size?: number;
  version?: string;
  kind?: 'full' | 'delta';
  base_version?: string | null;
  manifest?: string;
  manifest_sha256?: string;
  schema_name?: string;
  counts?: string;
}

/** A row of ouk_meta.imports as PostgreSQL returns it. */
export interface Row {
  id: string;
  bucket: string;
  object_key: string;
  etag: string;
  size: string | null;
  digest: string | null;
  version: string | null;
  kind: 'full' | 'delta' | null;
  base_version: string | null;
  manifest: Manifest | null;
  manifest_sha256: string | null;
  schema_name: string | null;
  state: ImportState;
  stages: Partial<Record<StageName, StageRecord>> | null;
  error_code: string | null;
  error: string | null;
  allow_downgrade: boolean;
  force: boolean;
  flow_added_at: Date | null;
  activated_at: Date | null;
  counts: Record<string, number> | null;
  started_by: string | null;
  quarantine_key?: string | null;
  quarantined_at?: Date | null;
  quarantine_code?: string | null;
  created_at: Date;
  updated_at: Date;
}

export function fromRow(r: Row): ImportRecord {
  return {
    id: r.id,
    bucket: r.bucket,
    objectKey: r.object_key,
    etag: r.etag,
    size: r.size === null ? null : Number(r.size),
    digest: r.digest,
    version: r.version,
    kind: r.kind,
    baseVersion: r.base_version,
    manifest: r.manifest,
    manifestSha256: r.manifest_sha256,
    schemaName: r.schema_name,
    state: r.state,
    stages: r.stages ?? {},
    errorCode: r.error_code,
    error: r.error,
    allowDowngrade: r.allow_downgrade,
    force: r.force,
    flowAddedAt: r.flow_added_at,
    activatedAt: r.activated_at,
    counts: r.counts,
    startedBy: r.started_by ?? null,
    quarantineKey: r.quarantine_key ?? null,
    quarantinedAt: r.quarantined_at ?? null,
    quarantineCode: r.quarantine_code ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

