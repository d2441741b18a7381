/**
 * The reconciler: lists the bucket at start-up and every N seconds
 * (OUK_RECONCILE_SECONDS, default 60) and ingests every bundle object that has
 * no import record, or a record without its flow. A notification MinIO lost (a
 * webhook target down without a queue dir, an API restart) therefore loses
 * nothing; it only arrives later. Each pass also retries dropping old DB
 * schemas a long reader kept busy at activation time.
 *
 * Any number of worker processes may run it: ingestObject is idempotent.
 */
import type { ObjectStore } from '../infra/store.ts';
import { storeUnavailable } from '../infra/store.ts';
import { cleanupOldDbs } from '../functions/common/cleanup.ts';
import { normaliseEtag } from '../infra/store.ts';
import { importIdFor, isBundleKey } from './identity.ts';
import { ingestObject, type IngestDeps } from './ingest.ts';

export interface ReconcilerDeps extends IngestDeps {
  store: ObjectStore;
  bucket: string;
}

export interface ReconcileResult {
  bundles: number;
  ingested: string[];
}

interface Listed {
  name?: string;
  etag?: string;
  size?: number;
}

export async function reconcileOnce(deps: ReconcilerDeps): Promise<ReconcileResult> {
  const found: Array<{ key: string; etag: string; size: number | null; id: string }> = [];
  try {
    for await (const o of deps.store.listObjectsV2(deps.bucket, '', true) as AsyncIterable<Listed>) {
      if (!o.name || !o.etag || !isBundleKey(o.name)) continue;
      const etag = normaliseEtag(o.etag);
      found.push({ key: o.name, etag, size: o.size ?? null, id: importIdFor(deps.bucket, o.name, etag) });
    }
  } catch (e) {
    throw storeUnavailable(e);
  }
  const known = new Set(
    (
      await deps.pool.query<{ id: string }>('SELECT id FROM ouk_meta.imports WHERE id = ANY($1::text[]) AND flow_added_at IS NOT NULL', [found.map((f) => f.id)])
    ).rows.map((r) => r.id),
  );
  const ingested: string[] = [];
  for (const f of found) {
    if (known.has(f.id)) continue;
    const r = await ingestObject(deps, { bucket: deps.bucket, key: f.key, etag: f.etag, size: f.size });
    if (r.flowAdded) {
      ingested.push(r.importId);
      deps.logger?.info({ importId: r.importId, key: f.key }, 'reconciler: bundle without an import found in the bucket; import started');
    }
  }
  return { bundles: found.length, ingested };
}

export interface Reconciler {
  /** The first pass (at start-up). */
  readonly first: Promise<ReconcileResult | null>;
  stop(): Promise<void>;
}

export function startReconciler(deps: ReconcilerDeps, everySeconds: number): Reconciler {
  let running: Promise<ReconcileResult | null> = Promise.resolve(null);
  const pass = (): Promise<ReconcileResult | null> => {
    running = (async () => {
      try {
        const r = await reconcileOnce(deps);
        await cleanupOldDbs(deps.pool, deps.logger ?? silent).catch(() => undefined);
        return r;
      } catch (err) {
        deps.logger?.warn({ err }, 'reconciler pass failed; will try again');
        return null;
      }
    })();
    return running;
  };
  const first = pass();
  const timer = setInterval(() => {
    void running.then(() => pass());
  }, everySeconds * 1000);
  timer.unref();
  return {
    first,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

const silent = { info: () => undefined, warn: () => undefined } as unknown as NonNullable<IngestDeps['logger']>;
