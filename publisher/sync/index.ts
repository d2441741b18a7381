/**
 * `stella feeds sync`: the publisher's incremental fetch of every upstream
 * into the layout the builder reads (`stella ouk build --feeds DIR`):
 *
 *   nvd/<year>/<N>xxx/CVE-….json        NVD CVE API 2.0, one record a file   (nvd.ts)
 *   osv/<Ecosystem>/<ID>.json           OSV's bucket                          (osv.ts)
 *   ghsa/<xx>/GHSA-….json               GitHub's advisory database (git)      (ghsa.ts)
 *   kev/known_exploited_vulnerabilities.json   CISA KEV                       (kev.ts)
 *   epss/epss_scores-YYYY-MM-DD.csv.gz  FIRST EPSS, the newest day            (epss.ts)
 *   euvd/exploited.json, aliases.json   ENISA EUVD                            (euvd.ts)
 *   csaf/<provider>/….json              CSAF 2.0 providers (CSAF_PROVIDERS)   (csaf.ts)
 *   .sync/state.json                    per source: watermark, cursor, last success, counts
 *   .sync/lock, .sync/<source>/         one sync at a time; downloads, the GHSA clone
 *
 * Sources run one after another; each starts from its saved watermark (or
 * its cursor, where a killed run stopped) and checkpoints the state after
 * every step, so a sync killed at any moment resumes without fetching again
 * what it holds. One source failing (its upstream down, an answer refused)
 * does not stop the others: its report says why, its state keeps the old
 * watermark, and the result is not ok. Every file is written whole
 * (files.ts); every answer is bounded and checked before anything is written.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { SyncSettings } from '../../lib/config.ts';
import { isOukError, OukError } from '../../lib/errors.ts';
import type { SourceContext, SyncEvent, SyncSource, SyncTuning } from './context.ts';
import { csafSource } from './csaf.ts';
import { epssSource } from './epss.ts';
import { euvdSource } from './euvd.ts';
import { ghsaSource } from './ghsa.ts';
import { type FetchFn, UpstreamClient } from './http.ts';
import { kevSource } from './kev.ts';
import { nvdSource } from './nvd.ts';
import { osvSource } from './osv.ts';
import { realClock, type Clock } from './pacing.ts';
import { addSkip, emptyReport, type SourceName, type SourceReport, SOURCE_NAMES } from './report.ts';
import { acquireLock, SyncState } from './state.ts';

export { SOURCE_NAMES, type SourceName, type SourceReport } from './report.ts';
export type { SyncEvent, SyncTuning } from './context.ts';

const SOURCES: Record<SourceName, SyncSource> = { nvd: nvdSource, osv: osvSource, ghsa: ghsaSource, kev: kevSource, epss: epssSource, csaf: csafSource, euvd: euvdSource };

export interface SyncOptions {
  /** The feeds directory to fill (created when missing). */
  out: string;
  /** Which sources, in this order (default: all of SOURCE_NAMES). */
  sources?: readonly SourceName[];
  settings: SyncSettings;
  /** STELLA_AIRGAP: a sync refuses to start air-gapped. */
  airgap?: boolean;
  now?: () => Date;
  /** The clock pacing and backoff sleep on. */
  clock?: Clock;
  fetch?: FetchFn;
  random?: () => number;
  tuning?: SyncTuning;
  /** The environment git runs in (the sync's child processes): the caller's, resolved once at its entry point. */
  childEnv: NodeJS.ProcessEnv;
  onEvent?: (e: SyncEvent) => void;
}

export interface SyncResult {
  out: string;
  ok: boolean;
  reports: SourceReport[];
}

/** `nvd,osv` → the source names, in the order given; unknown names refused. */
export function parseSources(list: string): SourceName[] {
  const names = list.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = names.filter((n) => !(SOURCE_NAMES as readonly string[]).includes(n));
  if (bad.length || names.length === 0) throw new OukError('USAGE', `--source ${list}: give one or more of ${SOURCE_NAMES.join(', ')}, comma-separated`);
  return [...new Set(names)] as SourceName[];
}

export function airgapRefusal(): OukError {
  return new OukError(
    'AIRGAP_VIOLATION',
    'stella feeds sync fetches from NVD, OSV, GitHub, CISA, FIRST, ENISA and CSAF providers: it belongs on the connected (publishing) side and refuses to run with STELLA_AIRGAP=true — run it on the publisher host, then carry the kit across',
  );
}

export async function syncFeeds(o: SyncOptions): Promise<SyncResult> {
  if (o.airgap) throw airgapRefusal();
  const out = path.resolve(o.out);
  const now = o.now ?? (() => new Date());
  const clock = o.clock ?? realClock;
  const syncDir = path.join(out, '.sync');
  await mkdir(syncDir, { recursive: true });
  const lock = await acquireLock(syncDir, now);
  const reports: SourceReport[] = [];
  try {
    const state = await SyncState.open(syncDir);
    for (const name of o.sources ?? SOURCE_NAMES) {
      const report = emptyReport(name);
      const st = state.source(name);
      const clients: UpstreamClient[] = [];
      const started = process.hrtime.bigint();
      const emit = (e: SyncEvent): void => o.onEvent?.(e);
      const ctx: SourceContext = {
        name,
        out,
        work: path.join(syncDir, name),
        settings: o.settings,
        tuning: o.tuning ?? {},
        childEnv: o.childEnv,
        state: st,
        report,
        now,
        clock,
        client: (c) => {
          const client = new UpstreamClient({
            source: name,
            ...c,
            timeoutMs: o.settings.timeoutMs,
            attempts: o.settings.attempts,
            backoffMs: o.settings.backoffMs,
            clock,
            ...(o.fetch ? { fetch: o.fetch } : {}),
            ...(o.random ? { random: o.random } : {}),
            onRetry: (notice) => emit({ kind: 'retry', notice }),
          });
          clients.push(client);
          return client;
        },
        checkpoint: () => state.save(),
        land: (outcome) => {
          report[outcome]++;
        },
        skip: (id, reason) => addSkip(report, id, reason),
        progress: (done, total, what = 'records') => emit({ kind: 'progress', source: name, done, total, what }),
        note: (text) => {
          report.notes.push(text);
          emit({ kind: 'note', source: name, text });
        },
      };
      emit({ kind: 'start', source: name });
      st.lastAttempt = now().toISOString();
      try {
        await SOURCES[name].run(ctx);
        st.lastSuccess = now().toISOString();
        st.lastError = null;
      } catch (e) {
        report.status = 'failed';
        const errno = (e as NodeJS.ErrnoException).code;
        const code = isOukError(e) ? e.code : errno === 'ENOSPC' || errno === 'EDQUOT' ? 'INSUFFICIENT_SPACE' : 'INTERNAL';
        const message = e instanceof Error ? e.message : String(e);
        report.error = { code, message };
        st.lastError = { code, message, at: now().toISOString() };
        if (!isOukError(e) && !(e as NodeJS.ErrnoException).code) throw e; // a bug: not a source's failure
      } finally {
        report.requests += clients.reduce((n, c) => n + c.requests, 0);
        report.seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (report.watermark === null && st.watermark !== null && typeof st.watermark !== 'object') report.watermark = String(st.watermark);
        st.lastCounts = { requests: report.requests, fetched: report.fetched, added: report.added, modified: report.modified, withdrawn: report.withdrawn, removed: report.removed, skipped: report.skipped };
        await state.save();
        reports.push(report);
        emit({ kind: 'end', report });
      }
    }
  } finally {
    await lock.release();
  }
  return { out, ok: reports.every((r) => r.status === 'ok'), reports };
}

/** The exit status of a sync: 0, or the code of the first source that failed. */
export function failureOf(r: SyncResult): OukError | null {
  const failed = r.reports.find((x) => x.status === 'failed');
  if (!failed?.error) return null;
  const code = failed.error.code as OukError['code'];
  return new OukError(code, `${failed.source}: ${failed.error.message}`);
}
