/** Facts an import gathers on its way that are not a stage's state: its flow is queued, its signed manifest is known. */
import type { Queryable } from '../db.ts';
import type { RecordColumns } from './record.ts';

export type VerifiedFacts = Required<Pick<RecordColumns, 'digest' | 'size' | 'version' | 'kind' | 'base_version' | 'manifest' | 'manifest_sha256'>>;

/** The import's flow was added to the queue (first time only). */
export async function markFlowAdded(q: Queryable, id: string): Promise<void> {
  await q.query('UPDATE ouk_meta.imports SET flow_added_at = COALESCE(flow_added_at, now()), updated_at = now() WHERE id = $1', [id]);
}

/** What the signed manifest says, on the record as soon as the signature holds (before the policy: a refused kit is named by its version too). */
export async function recordVerifiedFacts(q: Queryable, id: string, facts: VerifiedFacts): Promise<void> {
  await q.query(
    `UPDATE ouk_meta.imports SET digest = $2, size = $3, version = $4, kind = $5, base_version = $6, manifest = $7, manifest_sha256 = $8, updated_at = now() WHERE id = $1`,
    [id, facts.digest, facts.size, facts.version, facts.kind, facts.base_version, facts.manifest, facts.manifest_sha256],
  );
}
