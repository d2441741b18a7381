/**
 * The publisher's nightly job: `stella feeds sync` into the feeds directory,
 * then `stella publish` into the mirror — the same functions the commands
 * run. A sync with a failed source still publishes (the other sources are
 * current, the failed one's records are as they were, and its state keeps
 * the old watermark); the job then fails with the sync's error, so the
 * failure is seen, after the kit is out.
 */
import { OukError } from '../lib/errors.ts';
import { publish, type PublishOptions, type PublishResult } from './publish/index.ts';
import { failureOf, syncFeeds, type SyncOptions, type SyncResult } from './sync/index.ts';

export interface NightlyOptions {
  /** The sync (out = the feeds directory); null: no sync, publish what the directory holds. */
  sync: Omit<SyncOptions, 'now'> | null;
  publish: Omit<PublishOptions, 'now'>;
  now?: () => Date;
}

export interface NightlyResult {
  sync: SyncResult | null;
  publish: PublishResult;
}

export async function runNightly(o: NightlyOptions): Promise<NightlyResult> {
  const now = o.now ?? (() => new Date());
  const sync = o.sync ? await syncFeeds({ ...o.sync, now }) : null;
  const published = await publish({ ...o.publish, now: now() });
  const failure = sync ? failureOf(sync) : null;
  if (failure) throw new OukError(failure.code, `${failure.message} (the publish ran on the feeds as they are: ${published.status} ${published.version})`, { cause: failure });
  return { sync, publish: published };
}
