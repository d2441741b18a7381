/**
 * The import's named moves between states (states.ts draws the machine). The
 * strict ones — activation, supersession, rollback, re-activation — refuse a
 * move the machine does not have (IMPORT_FAILED: a concurrent change or a bug,
 * inside the caller's transaction, so nothing is half-written); a retry leaves
 * a finished import as it is.
 */
import { OukError } from '../../lib/errors.ts';
import type { Queryable } from '../db.ts';
import { FINISHED_STATES, MOVES_TO, type ImportState } from './states.ts';

async function move(q: Queryable, id: string, to: ImportState, sets: string, params: unknown[] = []): Promise<void> {
  const r = await q.query(`UPDATE ouk_meta.imports SET state = $2, ${sets}updated_at = now() WHERE id = $1 AND state = ANY($3::text[])`, [id, to, MOVES_TO[to], ...params]);
  if ((r.rowCount ?? 0) > 0) return;
  const found = await q.query<{ state: ImportState }>('SELECT state FROM ouk_meta.imports WHERE id = $1', [id]);
  const from = found.rows[0]?.state;
  if (!from) throw new OukError('IMPORT_NOT_FOUND', `no import ${id}: list imports with \`stella ouk status\``);
  throw new OukError('IMPORT_FAILED', `import ${id} is ${from} and cannot become ${to} (changed meanwhile?): see \`stella ouk status\`, then try again`, { retryable: true });
}

/** A retry: the import is queued again with its error cleared — unless it is finished (active, superseded, rolled back), which keeps its state. */
export async function requeue(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE ouk_meta.imports SET state = 'queued', error_code = NULL, error = NULL, updated_at = now() WHERE id = $1 AND NOT state = ANY($2::text[])`, [id, FINISHED_STATES]);
}

/** A superseded or rolled-back full kit is queued to be activated again, at the operator's request (a downgrade, so allowed). */
export async function requeueForReactivation(q: Queryable, id: string): Promise<void> {
  await move(q, id, 'queued', 'allow_downgrade = true, error_code = NULL, error = NULL, ');
}

/** The activate stage's commit: the import is the active DB from `at` on. */
export async function markActive(q: Queryable, id: string, at: Date): Promise<void> {
  await move(q, id, 'active', 'activated_at = $4, error_code = NULL, error = NULL, ', [at]);
}

/** The active import is replaced by a newer one (kept as the previous DB, for rollback). */
export async function supersede(q: Queryable, id: string): Promise<void> {
  await move(q, id, 'superseded', '');
}

/** A rollback: the active import is rolled back and the previous one is active again. */
export async function rollBack(q: Queryable, activeId: string, previousId: string): Promise<void> {
  await move(q, activeId, 'rolled-back', '');
  await move(q, previousId, 'active', '');
}
