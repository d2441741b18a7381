/**
 * Garbage collection: what no import needs any more goes — staged members in
 * the object store and `ouk_db_*` / `ouk_delta_*` / `ouk_undo_*` schemas in
 * PostgreSQL. It runs as the `gc` job of the maintenance queue (once per
 * cluster, every OUK_GC_SECONDS) and by hand as `stella ouk gc [--dry-run]`.
 *
 * Kept, always: the live schemas (the active DB, its undo data, the previous
 * DB kept for rollback — infra/active-db.ts liveSchemas) and everything of an
 * import still in flight (queued … activating), and the staged members of the
 * active import while its images stage has not pushed them. Removed:
 *
 *   staged members   of a finished import (its load is done) at once; of a
 *                    failed import, or with no import record at all, once
 *                    older than the grace period (a retry may still use them);
 *   schemas          of a superseded or rolled-back import, a delta's staged
 *                    rows once it is finished, at once; of a failed import
 *                    whose load is not done (a half-filled schema no retry
 *                    can use: a full disk keeps it full) at once; of a failed
 *                    import that was loaded, or with no record, once older
 *                    than the grace period.
 *
 * `planGc` decides from the facts alone (pure, tested on its own); `collectGarbage`
 * reads the facts, and unless `dryRun`, carries the plan out.
 */
import { liveSchemas } from '../infra/active-db.ts';
import type { Pool } from '../infra/db.ts';
import { listAllObjects, removeObjectsUnder, storeUnavailable, type ObjectStore } from '../infra/store.ts';
import type { Logger } from '../lib/logger.ts';
import { dropSchemasQuietly } from './common/cleanup.ts';

export interface GcFacts {
  /** schemas that are never touched */
  live: Set<string>;
  /** every import record: state, when it last changed, whether its load is done, and whether its images are still to be pushed */
  imports: Map<string, { state: string; updatedAt: Date; loadDone?: boolean; imagesPending?: boolean }>;
  /** `ouk_(db|delta|undo)_<id>` schemas present */
  schemas: string[];
  /** staged member prefixes present (`staged/<digest>/<import id>/`), with their newest object's time */
  staged: Array<{ prefix: string; importId: string; lastModified: Date; bytes: number }>;
}

export interface GcItem {
  name: string;
  why: string;
  bytes?: number;
}

export interface GcPlan {
  schemas: GcItem[];
  staged: GcItem[];
}

const IN_FLIGHT = new Set(['queued', 'verifying', 'unpacking', 'loading', 'activating']);
const FINISHED = new Set(['active', 'superseded', 'rolled-back']);
const SCHEMA = /^ouk_(db|delta|undo)_([0-9a-f]{24})$/;

export function planGc(facts: GcFacts, now: Date, graceHours: number): GcPlan {
  const graceMs = graceHours * 3_600_000;
  const old = (t: Date): boolean => now.getTime() - t.getTime() >= graceMs;
  const plan: GcPlan = { schemas: [], staged: [] };
  for (const name of facts.schemas) {
    const m = SCHEMA.exec(name);
    if (!m || facts.live.has(name)) continue;
    const [, kind, id] = m;
    const rec = facts.imports.get(id!);
    if (!rec) plan.schemas.push({ name, why: 'no import record' });
    else if (IN_FLIGHT.has(rec.state) || rec.state === 'active') {
      // an import in flight needs its schemas; the active import's schema is live (kept above), its delta rows are applied
      if (rec.state === 'active' && kind === 'delta') plan.schemas.push({ name, why: 'delta rows already applied' });
    } else if (rec.state === 'failed') {
      if (kind !== 'undo' && rec.loadDone === false) plan.schemas.push({ name, why: 'import failed before its load was done: the schema is incomplete' });
      else if (old(rec.updatedAt)) plan.schemas.push({ name, why: `import failed more than ${graceHours} h ago` });
    } else plan.schemas.push({ name, why: `import ${rec.state}` });
  }
  for (const s of facts.staged) {
    const rec = facts.imports.get(s.importId);
    const item = { name: s.prefix, bytes: s.bytes };
    if (!rec) {
      if (old(s.lastModified)) plan.staged.push({ ...item, why: 'no import record' });
    } else if (rec.state === 'active' && rec.imagesPending) {
      // the images stage (after activation) still needs the staged image blobs
    } else if (FINISHED.has(rec.state)) plan.staged.push({ ...item, why: `import ${rec.state}: its load is done` });
    else if (rec.state === 'failed' && old(rec.updatedAt)) plan.staged.push({ ...item, why: `import failed more than ${graceHours} h ago` });
    // a quarantined kit is never retried: what it staged is needed by nothing (a release re-runs its failed stage, which stages afresh)
    else if (rec.state === 'quarantined' || rec.state === 'removed') plan.staged.push({ ...item, why: `import ${rec.state}: never retried` });
  }
  return plan;
}

export interface GcDeps {
  pool: Pool;
  store: ObjectStore;
  bucket: string;
  logger: Logger;
  now: Date;
  graceHours: number;
  dryRun?: boolean;
}

export interface GcResult extends GcPlan {
  dryRun: boolean;
  /** schemas a reader still held (left for the next pass) */
  busy: string[];
}

async function readFacts(deps: GcDeps): Promise<GcFacts> {
  const live = await liveSchemas(deps.pool);
  const imports = new Map(
    (
      await deps.pool.query<{ id: string; state: string; updated_at: Date; load_done: boolean; images_pending: boolean }>(
        `SELECT id, state, updated_at,
                COALESCE(stages -> 'load' ->> 'state', '') = 'done' AS load_done,
                COALESCE(jsonb_array_length(manifest -> 'images'), 0) > 0 AND COALESCE(stages -> 'images' ->> 'state', '') <> 'done' AS images_pending
           FROM ouk_meta.imports`,
      )
    ).rows.map((r) => [r.id, { state: r.state, updatedAt: r.updated_at, loadDone: r.load_done, imagesPending: r.images_pending }]),
  );
  const schemas = (await deps.pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname ~ '^ouk_(db|delta|undo)_[0-9a-f]{24}$'`)).rows.map((r) => r.nspname);
  const prefixes = new Map<string, GcFacts['staged'][number]>();
  try {
    for await (const o of listAllObjects(deps.store, deps.bucket, 'staged/')) {
      const m = o.name ? /^(staged\/[0-9a-f]{64}\/([0-9a-f]{24})\/)/.exec(o.name) : null;
      if (!m) continue;
      const p = prefixes.get(m[1]!) ?? { prefix: m[1]!, importId: m[2]!, lastModified: new Date(0), bytes: 0 };
      if (o.lastModified && o.lastModified > p.lastModified) p.lastModified = o.lastModified;
      p.bytes += o.size ?? 0;
      prefixes.set(m[1]!, p);
    }
  } catch (e) {
    throw storeUnavailable(e);
  }
  return { live, imports, schemas, staged: [...prefixes.values()] };
}

export async function collectGarbage(deps: GcDeps): Promise<GcResult> {
  const plan = planGc(await readFacts(deps), deps.now, deps.graceHours);
  const result: GcResult = { ...plan, dryRun: Boolean(deps.dryRun), busy: [] };
  if (deps.dryRun) return result;
  for (const s of plan.staged) await removeObjectsUnder(deps.store, deps.bucket, s.name);
  const dropped = await dropSchemasQuietly(deps.pool, plan.schemas.map((s) => s.name), deps.logger);
  result.busy = dropped.busy;
  result.schemas = plan.schemas.filter((s) => dropped.dropped.includes(s.name));
  if (plan.staged.length || result.schemas.length) {
    deps.logger.info({ staged: plan.staged.map((s) => s.name), schemas: result.schemas.map((s) => s.name), busy: result.busy }, 'garbage collected');
  }
  return result;
}
