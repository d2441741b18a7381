/**
 * The import record (ouk_meta.imports): one row per bundle object, the source of
 * truth for what a stage already did. Stages read it to stay idempotent and
 * write their state into `stages` (`{"verify": {"state", "attempts",
 * "startedAt", "finishedAt", "code", "error", "result"}, ...}`).
 */
import type pg from 'pg';
import type { Manifest } from '../bundle/manifest.ts';
import { OukError } from '../lib/errors.ts';
import type { StageName } from '../lib/stages.ts';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export type ImportState =
  | 'queued'
  | 'verifying'
  | 'unpacking'
  | 'loading'
  | 'activating'
  | 'active'
  | 'superseded'
  | 'failed'
  | 'rolled-back';

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
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
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
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function getImport(q: Queryable, id: string, forUpdate = false): Promise<ImportRecord | null> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return r.rows[0] ? fromRow(r.rows[0]) : null;
}

export async function requireImport(q: Queryable, id: string, forUpdate = false): Promise<ImportRecord> {
  const rec = await getImport(q, id, forUpdate);
  if (!rec) throw new OukError('IMPORT_NOT_FOUND', `no import ${id}: list imports with \`stella ouk status\``);
  return rec;
}

/** Imports whose id starts with `prefix` (the CLI accepts a unique prefix). */
export async function findImports(q: Queryable, prefix: string): Promise<ImportRecord[]> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE id LIKE $1 || '%' ORDER BY created_at DESC LIMIT 10`, [prefix.toLowerCase().replace(/[^0-9a-f]/g, '')]);
  return r.rows.map(fromRow);
}

export async function recentImports(q: Queryable, limit = 10): Promise<ImportRecord[]> {
  const r = await q.query<Row>('SELECT * FROM ouk_meta.imports ORDER BY created_at DESC LIMIT $1', [limit]);
  return r.rows.map(fromRow);
}

/** The import state a running stage puts the record in. */
export const RUNNING_STATE: Record<StageName, ImportState> = {
  verify: 'verifying',
  unpack: 'unpacking',
  load: 'loading',
  activate: 'activating',
  // images runs after activation: the import is (and stays) active.
  images: 'active',
};

/**
 * Merges `patch` into stages[stage]; optionally sets other columns (name ->
 * value). With `unlessDone`, a stage recorded done is left as it is (returns
 * false): a stage that is done stays done, whoever replays it.
 */
export async function patchStage(
  q: Queryable,
  id: string,
  stage: StageName,
  patch: StageRecord,
  columns: Record<string, unknown> = {},
  unlessDone = false,
): Promise<boolean> {
  const names = Object.keys(columns);
  const sets = names.map((n, i) => `${n} = $${i + 4}`);
  const r = await q.query(
    `UPDATE ouk_meta.imports
        SET stages = jsonb_set(stages, ARRAY[$2::text], COALESCE(stages -> $2::text, '{}'::jsonb) || $3::jsonb),
            updated_at = now()${sets.length ? ', ' + sets.join(', ') : ''}
      WHERE id = $1${unlessDone ? ` AND COALESCE(stages -> $2::text ->> 'state', '') <> 'done'` : ''}`,
    [id, stage, JSON.stringify(patch), ...names.map((n) => columns[n])],
  );
  return (r.rowCount ?? 0) > 0;
}

export type StageStart = { replay: true; result: unknown } | { replay: false };

/**
 * A stage attempt starts: record it running and move the import into that
 * stage's state — unless the record says the stage is done, in which case
 * nothing changes and the recorded result is returned (a replayed job, a
 * Retry on a completed job in the dashboard, a duplicate flow: all no-ops).
 */
export async function beginStage(q: Queryable, id: string, stage: StageName, attempt: number, now = new Date()): Promise<StageStart> {
  const started = await patchStage(
    q,
    id,
    stage,
    { state: 'running', attempts: attempt, startedAt: now.toISOString(), finishedAt: null, code: null, error: null },
    {},
    true,
  );
  if (!started) {
    const rec = await requireImport(q, id);
    return { replay: true, result: rec.stages[stage]?.result ?? null };
  }
  // A finished import (active, superseded, rolled back) keeps its state.
  await q.query(
    `UPDATE ouk_meta.imports SET state = $2, error_code = NULL, error = NULL
      WHERE id = $1 AND state NOT IN ('active', 'superseded', 'rolled-back')`,
    [id, RUNNING_STATE[stage]],
  );
  return { replay: false };
}

export async function stageDone(q: Queryable, id: string, stage: StageName, result: unknown, columns: Record<string, unknown> = {}): Promise<void> {
  await patchStage(q, id, stage, { state: 'done', finishedAt: new Date().toISOString(), code: null, error: null, result }, columns);
}

/** An attempt failed: `final` marks the import failed with the error's code and message. */
export async function stageFailed(q: Queryable, id: string, stage: StageName, code: string, message: string, final: boolean): Promise<void> {
  // A failure reported for a stage already done (a late duplicate) changes nothing.
  if (!(await patchStage(q, id, stage, { state: final ? 'failed' : 'retrying', finishedAt: new Date().toISOString(), code, error: message }, {}, true))) return;
  if (final) {
    await q.query(
      `UPDATE ouk_meta.imports SET state = 'failed', error_code = $2, error = $3, updated_at = now()
        WHERE id = $1 AND state NOT IN ('active', 'superseded', 'rolled-back')`,
      [id, code, message],
    );
  }
}

/**
 * What a stage produced is gone (its schema dropped by hand, say): the stage
 * is marked failed so a retry runs it again. The only way a done stage stops
 * being done, and only the system's own check makes it.
 */
export async function stageLost(q: Queryable, id: string, stage: StageName, why: string, now = new Date()): Promise<void> {
  await patchStage(q, id, stage, { state: 'failed', finishedAt: now.toISOString(), code: 'IMPORT_FAILED', error: why });
}

export function stageIsDone(rec: ImportRecord, stage: StageName): boolean {
  return rec.stages[stage]?.state === 'done';
}
