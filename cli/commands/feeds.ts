/**
 * `stella feeds sync --out DIR [--source nvd,osv,ghsa,kev,epss,csaf,euvd] [--json]`:
 * the publisher's incremental fetch of the upstreams into the feeds
 * directory `stella ouk build --feeds DIR` reads (publisher/sync/). On a
 * terminal each source shows a progress bar; retries and notes go to stderr;
 * the summary (or, with --json, per source: requests made, fetched, added,
 * modified, withdrawn, skipped with reasons, watermark) to stdout. Exits 0
 * when every source synced, else with the code of the first that failed
 * (the others still ran). Refuses to run with STELLA_AIRGAP=true.
 */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { childProcessEnv } from '../../infra/env.ts';
import { syncSettings } from '../../lib/config.ts';
import { airgapRefusal, failureOf, parseSources, SOURCE_NAMES, syncFeeds, type SyncEvent } from '../../publisher/sync/index.ts';
import { summaryLine } from '../../publisher/sync/report.ts';
import type { CliContext } from '../context.ts';

interface SyncCliOptions {
  out: string;
  source?: string;
  json: boolean;
}

/** Progress on a terminal: one bar per source. */
function terminalProgress(): { onEvent(e: SyncEvent): void; stop(): void } {
  const multi = new cliProgress.MultiBar(
    { format: '{source} [{bar}] {value}/{total} {what}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  const bar = (source: string): cliProgress.SingleBar => {
    let b = bars.get(source);
    if (!b) bars.set(source, (b = multi.create(1, 0, { source: source.padEnd(4), what: '' })));
    return b;
  };
  return {
    onEvent(e) {
      if (e.kind === 'start') bar(e.source);
      else if (e.kind === 'progress') {
        const b = bar(e.source);
        b.setTotal(e.total ?? Math.max(e.done, 1));
        b.update(e.done, { what: e.what });
      } else if (e.kind === 'retry') multi.log(`${retryLine(e)}\n`);
      else if (e.kind === 'note') multi.log(`${e.source}: ${e.text}\n`);
      else if (e.kind === 'end') {
        const b = bar(e.report.source);
        if (e.report.status === 'ok') b.update(b.getTotal(), { what: 'done' });
        else b.update({ what: `FAILED: ${e.report.error?.code}` });
      }
    },
    stop: () => multi.stop(),
  };
}

function retryLine(e: Extract<SyncEvent, { kind: 'retry' }>): string {
  const n = e.notice;
  const why = n.status ? `HTTP ${n.status}` : n.error;
  return `${n.source}: ${why}${n.message ? ` (message: ${n.message})` : ''} from ${n.url}; try ${n.attempt + 1} of ${n.attempts} in ${(n.delayMs / 1000).toFixed(1)} s`;
}

/** Progress without a terminal: retries and notes as lines on stderr. */
function plainProgress(): { onEvent(e: SyncEvent): void; stop(): void } {
  return {
    onEvent(e) {
      if (e.kind === 'retry') process.stderr.write(`${retryLine(e)}\n`);
      else if (e.kind === 'note') process.stderr.write(`${e.source}: ${e.text}\n`);
    },
    stop: () => undefined,
  };
}

export function registerFeedsSync(feeds: Command, cli: CliContext): void {
  feeds
    .command('sync')
    .description('fetch what changed upstream (NVD, OSV, GHSA, CISA KEV, FIRST EPSS, ENISA EUVD) into the feeds directory the builder reads; resumable')
    .requiredOption('--out <dir>', 'the feeds directory (created when missing; DIR/.sync/ holds the state)')
    .option('--source <list>', `sources to sync, comma-separated (default: ${SOURCE_NAMES.join(',')})`)
    .option('--json', 'per source: requests, fetched, added, modified, withdrawn, skipped with reasons, watermark', false)
    .action(async (opts: SyncCliOptions) => {
      const config = cli.config;
      if (config.airgap) throw airgapRefusal();
      const sources = opts.source ? parseSources(opts.source) : [...SOURCE_NAMES];
      const settings = syncSettings(cli.env);
      const progress = !opts.json && process.stderr.isTTY ? terminalProgress() : plainProgress();
      let result;
      try {
        result = await syncFeeds({ out: opts.out, sources, settings, airgap: config.airgap, childEnv: childProcessEnv({}), onEvent: (e) => progress.onEvent(e) });
      } finally {
        progress.stop();
      }
      if (opts.json) process.stdout.write(`${JSON.stringify({ out: result.out, ok: result.ok, sources: result.reports }, null, 2)}\n`);
      else process.stdout.write(`synced ${result.out}\n${result.reports.map((r) => `  ${summaryLine(r).replace(/\n/g, '\n  ')}`).join('\n')}\n`);
      const failure = failureOf(result);
      if (failure) throw failure;
    });
}
