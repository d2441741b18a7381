/**
 * The Prometheus registry (prom-client) and every meter of the product; the
 * API serves it at GET /metrics (api/metrics.ts).
 *
 * The pipeline and the scan code call the small functions below; the active-DB
 * gauges and the queue depths are read at scrape time from sources the API
 * sets (PostgreSQL and BullMQ), so they are right whichever process activated
 * the DB.
 *
 *   ouk_import_stage_duration_seconds{stage}         histogram, one sample per successful stage run
 *   ouk_import_stage_failures_total{stage,reason}    a stage failed for good (retries exhausted, or unrecoverable)
 *   ouk_import_stage_retries_total{stage,reason}     a stage attempt failed and will be retried
 *   ouk_import_stage_stalls_total{stage}             a stage job whose worker died (lock lost) was taken back
 *   ouk_imports_activated_total                      imports that reached the active state
 *   ouk_active_db_info{version}                      1 for the active DB version
 *   ouk_active_db_age_seconds{version}               age of the active DB since activation (absent when none), counted
 *                                                    from the later of the host clock and the newest signed time
 *   ouk_active_db_activated_timestamp_seconds{version} when it was activated (unix time)
 *   ouk_active_db_stale                              1 when a feed is over its OUK_MAX_AGE budget, or none is active
 *   ouk_feed_age_seconds{feed}                       age of each feed's snapshot in the active DB (lib/freshness.ts)
 *   ouk_feed_budget_seconds{feed}                    its OUK_MAX_AGE budget (feeds with one)
 *   ouk_feed_stale{feed}                             1 when the feed is over its budget, else 0
 *   ouk_clock_behind_seconds                         how far this host's clock is behind the newest signed time (0: not)
 *   ouk_signed_time_timestamp_seconds                the newest signed time this site has seen (absent before one)
 *   ouk_trust_root_expires_timestamp_seconds{version} when the site's root of trust expires (absent with bare keys);
 *                                                    alert 30 days before (lib/root-expiry.ts)
 *   ouk_queue_jobs{queue,state}                      BullMQ job counts per queue and state
 *   ouk_quarantined_total{code}                      kits ever quarantined, per refusal code (read from PostgreSQL at
 *                                                    scrape time: right whichever worker quarantined them; a release
 *                                                    or rm does not lower it)
 *   ouk_scans_total{mode,over_quota}                 scans by mode (anonymous|token) and whether over quota
 *   ouk_mirror_pulls_total{result}                   scheduled mirror rounds: ok (up to date), pending (a kit still
 *                                                    importing), failed, ahead-of-mirror / nothing-applies (it can pull
 *                                                    nothing although the site is not up to date with it)
 *   ouk_mirror_failures_total{reason}                failed mirror rounds by error code
 *   ouk_mirror_kits_pulled_total                     kits the mirror rounds put into the bucket and saw active
 *   ouk_mirror_last_success_timestamp_seconds        end of the last round that was ok or pending (0 before one)
 *   ouk_reconcile_step_errors_total{step}            a step of a reconciler pass that failed (the pass went on)
 *   ouk_maintenance_failures_total{job}              reconcile / gc passes that failed, a pass cut at its deadline included
 *   ouk_rescans_total{outcome}                       re-scans of stored SBOMs (scanned|partial|carried|already|superseded|gone)
 *   ouk_rescan_new_findings_total{severity}          findings a re-scan found new (CRITICAL and HIGH)
 *   ouk_rescan_duration_seconds                      duration of a re-scan job that scanned
 *   ouk_api_request_body_bytes                       bytes of scan and stored-SBOM request bodies the API holds now
 *                                                    (api/body-budget.ts; at most STELLA_API_BODY_BUDGET_BYTES)
 *   ouk_api_body_budget_refused_total                requests answered 503 SCAN_BUSY, unread, because the budget was spent
 *   process_* / nodejs_*                             prom-client default process metrics
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { EXIT_CODES, isOukError } from './errors.ts';
import type { Freshness } from './freshness.ts';
import type { RootSummary } from './root-expiry.ts';
import type { Logger } from './logger.ts';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export type ScanMode = 'anonymous' | 'token';

/** What ouk_queue_jobs counts: a BullMQ queue (only the two members used). */
export interface CountedQueue {
  name: string;
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
}

export const stageDuration = new Histogram({
  name: 'ouk_import_stage_duration_seconds',
  help: 'Duration of a successful import stage run (verify, unpack, load, activate), in seconds',
  labelNames: ['stage'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [registry],
});

export const stageFailures = new Counter({
  name: 'ouk_import_stage_failures_total',
  help: 'Import stages that failed for good (retries exhausted or unrecoverable), by stage and reason (error code)',
  labelNames: ['stage', 'reason'] as const,
  registers: [registry],
});

export const stageRetries = new Counter({
  name: 'ouk_import_stage_retries_total',
  help: 'Import stage attempts that failed and will be retried, by stage and reason (error code)',
  labelNames: ['stage', 'reason'] as const,
  registers: [registry],
});

export const stageStalls = new Counter({
  name: 'ouk_import_stage_stalls_total',
  help: 'Stage jobs whose worker stopped renewing the lock (killed, hung) and that BullMQ took back to run again',
  labelNames: ['stage'] as const,
  registers: [registry],
});

export const importsActivated = new Counter({
  name: 'ouk_imports_activated_total',
  help: 'Imports that reached the active state',
  registers: [registry],
});

export const scans = new Counter({
  name: 'ouk_scans_total',
  help: 'Scans by mode (anonymous or token) and whether the client was over its daily quota',
  labelNames: ['mode', 'over_quota'] as const,
  registers: [registry],
});

export const mirrorPulls = new Counter({
  name: 'ouk_mirror_pulls_total',
  help: 'Scheduled intranet-mirror rounds by result: ok (nothing left to pull), pending (a kit still importing, the next round continues), failed, ahead-of-mirror (the site has a newer version than anything the mirror offers) or nothing-applies (newer kits, none applicable): the last two pull nothing',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const mirrorFailures = new Counter({
  name: 'ouk_mirror_failures_total',
  help: 'Failed intranet-mirror rounds by reason (error code: MIRROR_UNREACHABLE, MIRROR_DIGEST_MISMATCH, SIGNATURE_MISMATCH, ...)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const mirrorKitsPulled = new Counter({
  name: 'ouk_mirror_kits_pulled_total',
  help: 'Kits the intranet-mirror rounds verified, put into the bucket and saw become active',
  registers: [registry],
});

export const mirrorLastSuccess = new Gauge({
  name: 'ouk_mirror_last_success_timestamp_seconds',
  help: 'When the last intranet-mirror round that pulled what the mirror has, or found the site up to date with it, ended (unix time; 0 before one)',
  registers: [registry],
});

/** What a finished mirror round reports (functions/mirror.ts MirrorPullResult, the fields counted). */
export interface MirrorRoundSummary {
  done: boolean;
  applied: unknown[];
  /** ok, pending, or why a round pulled nothing (ahead-of-mirror, nothing-applies); absent: from `done`. */
  outcome?: string;
}

/**
 * One mirror round ended: with its result, or with the error that failed it. A
 * round that could pull nothing (ahead-of-mirror, nothing-applies) is counted
 * under its own result and is not a success: the last-success gauge stays, so
 * `time() - ouk_mirror_last_success_timestamp_seconds` alerts.
 */
export function countMirrorPull(result: MirrorRoundSummary | null, err?: unknown, at = new Date()): void {
  if (!result) {
    mirrorPulls.inc({ result: 'failed' });
    mirrorFailures.inc({ reason: failureReason(err) });
    return;
  }
  const outcome = result.outcome ?? (result.done ? 'ok' : 'pending');
  mirrorPulls.inc({ result: outcome });
  if (result.applied.length) mirrorKitsPulled.inc(result.applied.length);
  if (outcome === 'ok' || outcome === 'pending') mirrorLastSuccess.set(at.getTime() / 1000);
}

export const reconcileStepErrors = new Counter({
  name: 'ouk_reconcile_step_errors_total',
  help: 'Steps of a reconciler pass that failed (listing the bucket, ingesting, repairing imports, ...); the pass went on with the others',
  labelNames: ['step'] as const,
  registers: [registry],
});

export const maintenanceFailures = new Counter({
  name: 'ouk_maintenance_failures_total',
  help: 'Reconcile and gc passes that failed, passes cut at their deadline (OUK_RECONCILE_DEADLINE_SECONDS, OUK_GC_DEADLINE_SECONDS) included',
  labelNames: ['job'] as const,
  registers: [registry],
});

/** One reconciler pass ended: its step errors (queue/reconciler.ts ReconcileResult.errors). */
export function countReconcile(errors: Array<{ step: string }>): void {
  for (const e of errors) reconcileStepErrors.inc({ step: e.step });
}

export function countMaintenanceFailure(job: string): void {
  maintenanceFailures.inc({ job });
}

export const rescans = new Counter({
  name: 'ouk_rescans_total',
  help: 'Re-scans of stored SBOMs after an activation, by outcome (scanned whole, partial: the components a delta touched, carried forward untouched, already done, superseded, gone)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** The severities whose new findings are counted: what an alert is about. */
export const RESCAN_COUNTED_SEVERITIES = ['CRITICAL', 'HIGH'] as const;

export const rescanNewFindings = new Counter({
  name: 'ouk_rescan_new_findings_total',
  help: 'Findings a re-scan of a stored SBOM found that its previous result did not have, CRITICAL and HIGH',
  labelNames: ['severity'] as const,
  registers: [registry],
});

export const rescanDuration = new Histogram({
  name: 'ouk_rescan_duration_seconds',
  help: 'Duration of a re-scan job of a stored SBOM that scanned (not carried forward), in seconds',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

/** What the active-DB gauges report: read at scrape time. */
export interface ActiveDb {
  version: string;
  activatedAt: Date;
  /** the freshness of the active DB and the clock (absent: the feed and clock gauges stay empty) */
  freshness?: Freshness;
}
/** The active DB (null: none) and, with or without one, the freshness (the clock is known without a DB). */
export type ActiveDbSource = () => Promise<ActiveDb | null | { none: true; freshness?: Freshness }>;

let activeSource: ActiveDbSource | null = null;
/** The site's current root of trust (null: bare keys), read at scrape time. */
export type TrustRootSource = () => Promise<RootSummary | null>;
let trustSource: TrustRootSource | null = null;
let queueSource: CountedQueue[] = [];
/** Kits ever quarantined per code (null: not known to this process). */
export type QuarantineSource = () => Promise<Record<string, number>>;
let quarantineSource: QuarantineSource | null = null;
let scrapeLogger: Logger | undefined;
/** One read of the source per scrape: the gauges' collect() calls start together and share it. */
let pending: Promise<{ active: ActiveDb | null; freshness: Freshness | null }> | null = null;

function currentState(): Promise<{ active: ActiveDb | null; freshness: Freshness | null }> {
  if (!activeSource) return Promise.resolve({ active: null, freshness: null });
  if (pending) return pending;
  const source = activeSource;
  pending = (async () => {
    try {
      const a = await source();
      if (!a) return { active: null, freshness: null };
      if ('none' in a) return { active: null, freshness: a.freshness ?? null };
      return { active: a, freshness: a.freshness ?? null };
    } catch (e) {
      scrapeLogger?.warn({ err: e }, 'metrics: could not read the active DB');
      return { active: null, freshness: null };
    }
  })();
  void pending.finally(() => setImmediate(() => (pending = null)));
  return pending;
}

async function currentActive(): Promise<ActiveDb | null> {
  return (await currentState()).active;
}

export const activeDbInfo = new Gauge({
  name: 'ouk_active_db_info',
  help: 'The active vulnerability DB: 1 with its version as label',
  labelNames: ['version'] as const,
  registers: [registry],
  async collect() {
    const a = await currentActive();
    this.reset();
    if (a) this.set({ version: a.version }, 1);
  },
});

// Labelled with the version so that, with no DB active, there is no sample at all (rather than a 0).
export const activeDbAge = new Gauge({
  name: 'ouk_active_db_age_seconds',
  help: 'Age of the active vulnerability DB in seconds (since activation, counted from the later of the host clock and the newest signed time); absent when none is active',
  labelNames: ['version'] as const,
  registers: [registry],
  async collect() {
    const a = await currentActive();
    this.reset();
    const from = a?.freshness ? Date.parse(a.freshness.clock.ageFrom) : Date.now();
    if (a) this.set({ version: a.version }, Math.max(0, (from - a.activatedAt.getTime()) / 1000));
  },
});

export const activeDbActivatedAt = new Gauge({
  name: 'ouk_active_db_activated_timestamp_seconds',
  help: 'When the active vulnerability DB was activated, as a unix timestamp; absent when none is active',
  labelNames: ['version'] as const,
  registers: [registry],
  async collect() {
    const a = await currentActive();
    this.reset();
    if (a) this.set({ version: a.version }, a.activatedAt.getTime() / 1000);
  },
});

export const activeDbStale = new Gauge({
  name: 'ouk_active_db_stale',
  help: '1 when a feed of the active DB is over its OUK_MAX_AGE budget (or none is active), else 0',
  registers: [registry],
  async collect() {
    const a = await currentActive();
    this.set(!a || (a.freshness?.stale.length ?? 0) > 0 ? 1 : 0);
  },
});

export const feedAge = new Gauge({
  name: 'ouk_feed_age_seconds',
  help: "Age of each feed's snapshot in the active DB, in seconds, counted from the later of the host clock and the newest signed time",
  labelNames: ['feed'] as const,
  registers: [registry],
  async collect() {
    const f = (await currentState()).freshness;
    this.reset();
    for (const feed of f?.feeds ?? []) if (feed.ageSeconds !== null) this.set({ feed: feed.name }, feed.ageSeconds);
  },
});

export const feedBudget = new Gauge({
  name: 'ouk_feed_budget_seconds',
  help: "Each feed's OUK_MAX_AGE budget in seconds (feeds of the active DB with one)",
  labelNames: ['feed'] as const,
  registers: [registry],
  async collect() {
    const f = (await currentState()).freshness;
    this.reset();
    for (const feed of f?.feeds ?? []) if (feed.budgetSeconds !== null) this.set({ feed: feed.name }, feed.budgetSeconds);
  },
});

export const feedStale = new Gauge({
  name: 'ouk_feed_stale',
  help: '1 when the feed of the active DB is over its OUK_MAX_AGE budget, else 0',
  labelNames: ['feed'] as const,
  registers: [registry],
  async collect() {
    const f = (await currentState()).freshness;
    this.reset();
    for (const feed of f?.feeds ?? []) this.set({ feed: feed.name }, feed.stale ? 1 : 0);
  },
});

export const clockBehind = new Gauge({
  name: 'ouk_clock_behind_seconds',
  help: "How far this host's clock is behind the newest signed time the site has seen (a verified kit's created time), in seconds; 0 when it is not",
  registers: [registry],
  async collect() {
    const f = (await currentState()).freshness;
    this.reset();
    if (f) this.set(f.clock.behindSeconds);
  },
});

export const signedTime = new Gauge({
  name: 'ouk_signed_time_timestamp_seconds',
  help: 'The newest signed time this site has seen (the created time of a verified kit), as a unix timestamp; absent before the first',
  registers: [registry],
  async collect() {
    const f = (await currentState()).freshness;
    this.reset();
    if (f?.clock.signedTime) this.set(Date.parse(f.clock.signedTime) / 1000);
  },
});

export const trustRootExpires = new Gauge({
  name: 'ouk_trust_root_expires_timestamp_seconds',
  help: "When the site's current root of trust expires, as a unix timestamp, with its version as label; absent when the site trusts bare keys (OUK_TRUSTED_KEYS). Alert when it is less than 30 days away",
  labelNames: ['version'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    if (!trustSource) return;
    try {
      const root = await trustSource();
      if (root) this.set({ version: String(root.version) }, Date.parse(root.expires) / 1000);
    } catch (e) {
      scrapeLogger?.warn({ err: e }, 'metrics: could not read the root of trust');
    }
  },
});

export const queueJobs = new Gauge({
  name: 'ouk_queue_jobs',
  help: 'BullMQ jobs per import queue and state',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const q of queueSource) {
      try {
        const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'waiting-children', 'prioritized');
        for (const [state, n] of Object.entries(counts)) this.set({ queue: q.name, state }, n);
      } catch (e) {
        scrapeLogger?.warn({ err: e, queue: q.name }, 'metrics: could not count jobs');
      }
    }
  },
});

// A count kept in PostgreSQL, so a gauge read at scrape time (it only grows: quarantined_at is never cleared).
export const quarantined = new Gauge({
  name: 'ouk_quarantined_total',
  help: 'Kits quarantined for integrity or policy (never retried), per refusal code, since the site began',
  labelNames: ['code'] as const,
  registers: [registry],
  async collect() {
    if (!quarantineSource) return;
    try {
      const counts = await quarantineSource();
      this.reset();
      for (const [code, n] of Object.entries(counts)) this.set({ code }, n);
    } catch (e) {
      scrapeLogger?.warn({ err: e }, 'metrics: could not count quarantined kits');
    }
  },
});

// ---- what the pipeline and the scan code call ----

export function observeStage(stage: string, seconds: number): void {
  if (Number.isFinite(seconds) && seconds >= 0) stageDuration.observe({ stage }, seconds);
}

/** A stage failed for good (`final`, the default) or an attempt failed and will be retried. */
export function countFailure(stage: string, code: string, final = true): void {
  (final ? stageFailures : stageRetries).inc({ stage, reason: code });
}

export function countStall(stage: string): void {
  stageStalls.inc({ stage });
}

export function countActivated(): void {
  importsActivated.inc();
}

export function countScan(mode: ScanMode, overQuota = false): void {
  scans.inc({ mode, over_quota: overQuota ? 'true' : 'false' });
}

/** One finished re-scan job: its outcome, its new findings per severity, its duration when it scanned. */
export function countRescan(r: { outcome: string; newBySeverity: Record<string, number>; seconds: number }): void {
  rescans.inc({ outcome: r.outcome });
  for (const sev of RESCAN_COUNTED_SEVERITIES) rescanNewFindings.inc({ severity: sev }, r.newBySeverity[sev] ?? 0);
  if ((r.outcome === 'scanned' || r.outcome === 'partial') && Number.isFinite(r.seconds) && r.seconds >= 0) rescanDuration.observe(r.seconds);
}

/** Where the scrape-time meters read from; returns a function that undoes it (when still current). */
export function setScrapeSources(s: { activeDb?: ActiveDbSource | null; queues?: CountedQueue[]; quarantine?: QuarantineSource | null; logger?: Logger; trustRoot?: TrustRootSource | null }): () => void {
  if (s.activeDb) activeSource = s.activeDb;
  if (s.trustRoot) trustSource = s.trustRoot;
  if (s.queues) queueSource = s.queues;
  if (s.quarantine) quarantineSource = s.quarantine;
  scrapeLogger = s.logger;
  return () => {
    if (s.activeDb && activeSource === s.activeDb) activeSource = null;
    if (s.queues && queueSource === s.queues) queueSource = [];
    if (s.quarantine && quarantineSource === s.quarantine) quarantineSource = null;
    if (s.trustRoot && trustSource === s.trustRoot) trustSource = null;
  };
}

export const apiBodyBytes = new Gauge({
  name: 'ouk_api_request_body_bytes',
  help: 'Bytes of scan and stored-SBOM request bodies the API holds now, from arrival to answer (at most STELLA_API_BODY_BUDGET_BYTES)',
  registers: [registry],
});

export const apiBodyRefused = new Counter({
  name: 'ouk_api_body_budget_refused_total',
  help: 'Requests answered 503 SCAN_BUSY before their body was read, because the bodies held already would pass STELLA_API_BODY_BUDGET_BYTES',
  registers: [registry],
});

const KNOWN_CODES = new Set<string>(Object.keys(EXIT_CODES));

/**
 * A bounded label for a failure: the OukError code, a known code found on the
 * error or at the start of its message (`error[CODE]: …`, `CODE: …`), STALLED for
 * BullMQ's stalled-job failure, else INTERNAL.
 */
export function failureReason(err: unknown): string {
  if (isOukError(err)) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && KNOWN_CODES.has(code)) return code;
  const msg = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  const m = /^(?:error\[)?([A-Z][A-Z_]+)(?:\])?:/.exec(msg);
  if (m && KNOWN_CODES.has(m[1])) return m[1];
  if (/stalled/i.test(msg)) return 'STALLED';
  return 'INTERNAL';
}

