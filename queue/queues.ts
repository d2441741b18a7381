/**
 * The four stage queues (`verify`, `unpack`, `load`, `activate`) under the
 * configured key prefix, and the FlowProducer that chains them. Used by the
 * API (ingest, dashboard, readiness), the CLI and the reconciler.
 */
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { STAGES, type StageName } from '../functions/context.ts';

export interface PipelineQueues {
  prefix: string;
  connection: Redis;
  queues: Record<StageName, Queue>;
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
  return {
    prefix,
    connection,
    queues,
    flows,
    async close() {
      await Promise.all([...STAGES.map((s) => queues[s].close().catch(() => undefined)), flows.close().catch(() => undefined)]);
    },
  };
}
