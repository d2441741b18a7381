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
  | 'rolled-back'
  // refused for integrity or policy, its kit moved under quarantine/ (lib/quarantine.ts): never retried
  | 'quarantined'
  // a quarantined kit deleted by `stella ouk quarantine rm`
  | 'removed';

/** States no stage job moves the record out of (a stray or replayed job changes nothing). */
export const SETTLED_STATES = ['active', 'superseded', 'rolled-back', 'quarantined', 'removed'] as const;

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
      WHERE id = $1 AND state <> ALL($3::text[])`,
    [id, RUNNING_STATE[stage], SETTLED_STATES],
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
        WHERE id = $1 AND state <> ALL($4::text[])`,
      [id, code, message, SETTLED_STATES],
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

// ---- quarantine (functions/quarantine.ts moves the objects; these are its record's steps) ----

/**
 * Where a failed import's kit goes: the key already chosen (a replay moves to
 * the same place), else `key` (set now, before the first copy). Null when the
 * record is no longer failed (retried, or quarantined meanwhile).
 */
export async function claimQuarantineKey(q: Queryable, id: string, key: string): Promise<string | null> {
  const r = await q.query<{ quarantine_key: string }>(
    `UPDATE ouk_meta.imports SET quarantine_key = COALESCE(quarantine_key, $2), updated_at = now()
      WHERE id = $1 AND state = 'failed' RETURNING quarantine_key`,
    [id, key],
  );
  return r.rows[0]?.quarantine_key ?? null;
}

/** Whether another import holds `key` under quarantine/. */
export async function quarantineKeyTaken(q: Queryable, key: string, exceptId: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM ouk_meta.imports WHERE quarantine_key = $1 AND id <> $2 LIMIT 1', [key, exceptId]);
  return (r.rowCount ?? 0) > 0;
}

/** The kit is copied under quarantine/: the import is quarantined (from failed only; false when it was not failed). */
export async function markQuarantined(q: Queryable, id: string, code: string, at: Date): Promise<boolean> {
  const r = await q.query(
    `UPDATE ouk_meta.imports SET state = 'quarantined', quarantined_at = $3, quarantine_code = $2, updated_at = now()
      WHERE id = $1 AND state = 'failed' AND quarantine_key IS NOT NULL`,
    [id, code, at],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * Released (its kit is back at its key): the import is failed again, with no
 * code (so no reconciler pass quarantines it again), and the quarantine place
 * is forgotten; the caller retries it from its failed stage (`retryImport`),
 * which checks it again: a refused verify runs again against today's trust.
 * quarantined_at and quarantine_code stay (the count never goes back).
 */
export async function markReleased(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query(
    `UPDATE ouk_meta.imports SET state = 'failed', quarantine_key = NULL, error_code = NULL, updated_at = now()
      WHERE id = $1 AND state = 'quarantined'`,
    [id],
  );
  return (r.rowCount ?? 0) > 0;
}

/** `stella ouk quarantine rm`: the import's kit is deleted (the record stays, as 'removed'). */
export async function markRemoved(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query(`UPDATE ouk_meta.imports SET state = 'removed', updated_at = now() WHERE id = $1 AND state IN ('quarantined', 'removed')`, [id]);
  return (r.rowCount ?? 0) > 0;
}

/** Quarantined imports, newest first. */
export async function quarantinedImports(q: Queryable, limit = 500): Promise<ImportRecord[]> {
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE state = 'quarantined' ORDER BY quarantined_at DESC, id LIMIT $1`, [limit]);
  return r.rows.map(fromRow);
}

/** Failed imports with one of `codes` in `bucket`, oldest first: what a reconciler pass may still have to quarantine. */
export async function failedWithCodes(q: Queryable, bucket: string, codes: readonly string[], limit: number): Promise<ImportRecord[]> {
  const r = await q.query<Row>(
    `SELECT * FROM ouk_meta.imports WHERE state = 'failed' AND bucket = $1 AND error_code = ANY($2::text[]) ORDER BY updated_at, id LIMIT $3`,
    [bucket, codes, limit],
  );
  return r.rows.map(fromRow);
}

/** Of these ids, the imports that are quarantined (their kit must not stay at its old key). */
export async function settledOutOfBucket(q: Queryable, ids: readonly string[]): Promise<ImportRecord[]> {
  if (ids.length === 0) return [];
  const r = await q.query<Row>(`SELECT * FROM ouk_meta.imports WHERE id = ANY($1::text[]) AND state = 'quarantined'`, [ids]);
  return r.rows.map(fromRow);
}

/** Every kit ever quarantined, per code (ouk_quarantined_total). */
export async function countQuarantinedByCode(q: Queryable): Promise<Record<string, number>> {
  const r = await q.query<{ code: string; n: string }>(
    `SELECT quarantine_code AS code, count(*) AS n FROM ouk_meta.imports WHERE quarantined_at IS NOT NULL AND quarantine_code IS NOT NULL GROUP BY quarantine_code`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.code, Number(x.n)]));
}
