/**
 * The stage queues (`verify`, `unpack`, `load`, `activate`, `images`) under
 * the configured key prefix, the FlowProducer that chains them, the queues of
 * the cluster's periodic jobs — `reconcile`, `maintenance` (gc) and `mirror`,
 * one queue each so that none waits behind another (queue/maintenance.ts) —
 * and the re-scan queue of stored SBOMs (queue/rescan.ts). Used by the API
 * (ingest, dashboard, readiness), the CLI and the workers.
 */
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { STAGES, type StageName } from '../functions/context.ts';

/** The cluster's periodic jobs, one queue each (queue/maintenance.ts): the reconciler, gc, the mirror round. */
export const RECONCILE_QUEUE = 'reconcile';
export const MAINTENANCE_QUEUE = 'maintenance';
export const MIRROR_QUEUE = 'mirror';

/** The queue of stored-SBOM re-scans after each activation (queue/rescan.ts). */
export const RESCAN_QUEUE = 'rescan';

export interface PipelineQueues {
  prefix: string;
  connection: Redis;
  queues: Record<StageName, Queue>;
  /** The reconciler's passes (queue/reconciler.ts). */
  reconcile: Queue;
  /** gc (functions/maintenance/gc.ts). */
  maintenance: Queue;
  /** The mirror rounds (functions/mirror/pull.ts), when OUK_MIRROR_URL is set. */
  mirror: Queue;
  rescan: Queue;
  flows: FlowProducer;
  close(): Promise<void>;
}

export function openPipelineQueues(connection: Redis, prefix: string): PipelineQueues {
  const open = (name: string): Queue => {
    const q = new Queue(name, { connection, prefix });
    q.on('error', () => undefined);
    return q;
  };
  const queues = Object.fromEntries(STAGES.map((s) => [s, open(s)])) as Record<StageName, Queue>;
  const flows = new FlowProducer({ connection, prefix });
  flows.on('error', () => undefined);
  const reconcile = open(RECONCILE_QUEUE);
  const maintenance = open(MAINTENANCE_QUEUE);
  const mirror = open(MIRROR_QUEUE);
  const rescan = open(RESCAN_QUEUE);
  return {
    prefix,
    connection,
    queues,
    reconcile,
    maintenance,
    mirror,
    rescan,
    flows,
    async close() {
      await Promise.all([
        ...STAGES.map((s) => queues[s].close().catch(() => undefined)),
        ...[reconcile, maintenance, mirror, rescan].map((q) => q.close().catch(() => undefined)),
        flows.close().catch(() => undefined),
      ]);
    },
  };
}
