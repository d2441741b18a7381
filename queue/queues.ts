/**
 * The four stage queues (`verify`, `unpack`, `load`, `activate`) under the
 * configured key prefix, the FlowProducer that chains them, the maintenance
 * queue (reconcile, gc: queue/maintenance.ts) and the re-scan queue of stored
 * SBOMs (queue/rescan.ts). Used by the API (ingest, dashboard, readiness),
 * the CLI and the workers.
 */
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { STAGES, type StageName } from '../functions/context.ts';

/** The queue of the cluster's periodic jobs (queue/maintenance.ts). */
export const MAINTENANCE_QUEUE = 'maintenance';

/** The queue of stored-SBOM re-scans after each activation (queue/rescan.ts). */
export const RESCAN_QUEUE = 'rescan';

export interface PipelineQueues {
  prefix: string;
  connection: Redis;
  queues: Record<StageName, Queue>;
  maintenance: Queue;
  rescan: Queue;
  flows: FlowProducer;
  close(): Promise<void>;
}

export function openPipelineQueues(connection: Redis, prefix: string): PipelineQueues {
  const queues = Object.fromEntries(
    STAGES.map((s) => {
      const q = new Queue(s, { connection, prefix });
      q.on('error', () => undefined);
      return [s, q];
    }),
  ) as Record<StageName, Queue>;
  const flows = new FlowProducer({ connection, prefix });
  flows.on('error', () => undefined);
  const maintenance = new Queue(MAINTENANCE_QUEUE, { connection, prefix });
  maintenance.on('error', () => undefined);
  const rescan = new Queue(RESCAN_QUEUE, { connection, prefix });
  rescan.on('error', () => undefined);
  return {
    prefix,
    connection,
    queues,
    maintenance,
    rescan,
    flows,
    async close() {
      await Promise.all([
        ...STAGES.map((s) => queues[s].close().catch(() => undefined)),
        maintenance.close().catch(() => undefined),
        rescan.close().catch(() => undefined),
        flows.close().catch(() => undefined),
      ]);
    },
  };
}
