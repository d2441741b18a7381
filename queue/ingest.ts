/**
 * queue/ingest: a bundle object in the bucket becomes ONE import flow.
 *
 *   ingestObject({bucket, key, etag, size})
 *
 * inserts the import record (id from the object's identity, queue/identity.ts)
 * with ON CONFLICT DO NOTHING and, only when the record has no flow yet, adds
 * the flow verify → unpack → load → activate (a BullMQ flow runs the deepest
 * child first: activate{load{unpack{verify}}}) with job ids `<id>-<stage>`.
 * The webhook, the reconciler and the CLI all call it; a repeated or duplicated
 * event starts nothing new, and since dedupe rests on the record, not on jobs
 * kept in Redis, it holds however long ago the first event came.
 *
 * Flags (--allow-downgrade, --force) are stored on the record; flags given for
 * an import that a policy check already refused retry that stage.
 */
import type { Pool } from '../infra/db.ts';
import { normaliseEtag } from '../infra/store.ts';
import { fromRow, getImport, type ImportRecord } from '../infra/import-records.ts';
import { addImportFlow, LIFTED_BY, type FlowDeps, type ImportFlags } from './flow.ts';
import { importIdFor, isBundleKey } from './identity.ts';
import { resumeImport } from './resume.ts';
import { retryImport } from './retry.ts';

export type IngestDeps = FlowDeps;
export type IngestFlags = ImportFlags;

export interface BundleObject {
  bucket: string;
  key: string;
  etag: string;
  size?: number | null;
}

export interface IngestResult {
  importId: string;
  /** A new import record was created. */
  created: boolean;
  /** This call added the flow. */
  flowAdded: boolean;
  /** This call retried a refused stage because new flags lift the refusal. */
  retried?: boolean;
  /** Why the object was not ingested (not a bundle). */
  ignored?: string;
}

/** Inserts the record if new (ON CONFLICT DO NOTHING); raises flags on an existing one. */
export async function recordImport(
  pool: Pool,
  obj: BundleObject,
  flags: IngestFlags = {},
  source: IngestSource = 'cli',
): Promise<{ record: ImportRecord; created: boolean; flagsRaised: (keyof IngestFlags)[] }> {
  const etag = normaliseEtag(obj.etag);
  const id = importIdFor(obj.bucket, obj.key, etag);
  const inserted = await pool.query(
    `INSERT INTO ouk_meta.imports (id, bucket, object_key, etag, size, allow_downgrade, force, started_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO NOTHING
     RETURNING *`,
    [id, obj.bucket, obj.key, etag, obj.size ?? null, Boolean(flags.allowDowngrade), Boolean(flags.force), source],
  );
  if (inserted.rows[0]) return { record: fromRow(inserted.rows[0]), created: true, flagsRaised: [] };
  const existing = (await getImport(pool, id))!;
  const raised: (keyof IngestFlags)[] = [];
  if (flags.allowDowngrade && !existing.allowDowngrade) raised.push('allowDowngrade');
  if (flags.force && !existing.force) raised.push('force');
  if (raised.length) {
    await pool.query(
      'UPDATE ouk_meta.imports SET allow_downgrade = allow_downgrade OR $2, force = force OR $3, updated_at = now() WHERE id = $1',
      [id, Boolean(flags.allowDowngrade), Boolean(flags.force)],
    );
    existing.allowDowngrade ||= Boolean(flags.allowDowngrade);
    existing.force ||= Boolean(flags.force);
  }
  return { record: existing, created: false, flagsRaised: raised };
}

/** Which path reported the object: the bucket notification, `stella ouk import`, a bucket listing, or the mirror pull. */
export type IngestSource = 'webhook' | 'cli' | 'reconciler' | 'mirror';

export async function ingestObject(deps: IngestDeps, obj: BundleObject, flags: IngestFlags = {}, source: IngestSource = 'cli'): Promise<IngestResult> {
  const etag = normaliseEtag(obj.etag);
  const importId = importIdFor(obj.bucket, obj.key, etag);
  if (!isBundleKey(obj.key)) return { importId, created: false, flowAdded: false, ignored: `${obj.key} is not a bundle (*.tar.gz outside staged/ and quarantine/)` };
  const { record, created, flagsRaised } = await recordImport(deps.pool, { ...obj, etag }, flags, source);
  const log = deps.logger?.child({ importId, key: obj.key });
  if (!record.flowAddedAt) {
    await addImportFlow(deps, record);
    log?.info({ created }, 'import flow added');
    return { importId, created, flowAdded: true };
  }
  if (flagsRaised.length && record.state === 'failed' && record.errorCode && flagsRaised.includes(LIFTED_BY[record.errorCode])) {
    await retryImport(deps, importId);
    log?.info({ flags: flagsRaised }, 'refused import retried with the new flags');
    return { importId, created, flowAdded: false, retried: true };
  }
  if (record.state !== 'failed') {
    // Known and unfinished, but perhaps stranded (Redis lost its jobs): the record says where it stopped.
    const out = await resumeImport(deps, record);
    if (out.resumed) {
      log?.warn({ from: out.from }, 'import had no live job (Redis lost it?): flow re-created from its first stage not done');
      return { importId, created, flowAdded: true };
    }
  }
  log?.debug('import already known; nothing new started');
  return { importId, created, flowAdded: false };
}
