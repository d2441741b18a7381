/**
 * What the orchestrator (index.ts) gives every source: where to write, its
 * saved state and the means to checkpoint it, HTTP clients that count their
 * requests into the source's report, and the report itself.
 */
import type { SyncSettings } from '../../lib/config.ts';
import type { ClientOptions, RetryNotice, UpstreamClient } from './http.ts';
import type { Clock } from './pacing.ts';
import type { Outcome, SourceName, SourceReport } from './report.ts';
import type { SourceState } from './state.ts';

/** Knobs a test or a benchmark turns; production leaves them unset. */
export interface SyncTuning {
  /** NVD's rolling window (30 s: 5 requests in it without a key, 50 with one). */
  nvdWindowMs?: number;
  /** NVD resultsPerPage (2,000, the API's maximum). */
  nvdPageSize?: number;
  /** OSV records fetched at once in an incremental run (8). */
  osvConcurrency?: number;
  /** EUVD search page size (100, the API's maximum). */
  euvdPageSize?: number;
  /** EUVD: a date window holding more results than this is split in two (10,000). */
  euvdWindowCap?: number;
  /** CSAF documents fetched at once per provider (4). */
  csafConcurrency?: number;
  /** The git binary (`git`). */
  git?: string;
}

export type SyncEvent =
  | { kind: 'start'; source: SourceName }
  | { kind: 'progress'; source: SourceName; done: number; total: number | null; what: string }
  | { kind: 'retry'; notice: RetryNotice }
  | { kind: 'note'; source: SourceName; text: string }
  | { kind: 'end'; report: SourceReport };

export interface SourceContext {
  readonly name: SourceName;
  /** The feeds directory (absolute). */
  readonly out: string;
  /** This source's scratch directory under DIR/.sync/ (downloads, the GHSA clone). */
  readonly work: string;
  readonly settings: SyncSettings;
  readonly tuning: SyncTuning;
  /** The environment of the sync's child processes (git). */
  readonly childEnv: NodeJS.ProcessEnv;
  readonly state: SourceState;
  readonly report: SourceReport;
  now(): Date;
  readonly clock: Clock;
  /** An HTTP client whose requests count into this source's report. */
  client(o: Pick<ClientOptions, 'service' | 'urlVariable' | 'pacing' | 'headers'>): UpstreamClient;
  /** Saves the state file (after a step a killed run must not repeat). */
  checkpoint(): Promise<void>;
  land(o: Outcome): void;
  skip(id: string, reason: string): void;
  progress(done: number, total: number | null, what?: string): void;
  note(text: string): void;
}

export interface SyncSource {
  readonly name: SourceName;
  run(ctx: SourceContext): Promise<void>;
}
