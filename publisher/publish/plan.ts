/**
 * What tonight's publish builds, as a pure function of the mirror's index,
 * the full kits the publisher holds and the clock (no I/O):
 *
 *  - the version: today's date (UTC); when the mirror already has today's
 *    date, the next `.N` (a second run the same day) — an explicit
 *    `--version` the mirror already has, or one older than its newest, is
 *    refused (PUBLISH_VERSION_TAKEN);
 *  - a host clock whose date is before the mirror's newest kit is refused
 *    (PUBLISH_CLOCK_BEHIND): a kit dated yesterday would not be newer;
 *  - a delta on the full DB of the mirror's newest version (its full kit:
 *    published, or kept in .publish/bases/), so a site that has the newest
 *    version applies it directly and a site further back walks the chain of
 *    deltas, as the site's mirror pull does (functions/mirror-plan.ts: base
 *    version AND DB digest);
 *  - a full kit as well when the mirror has none, when its newest full kit
 *    is `fullEveryDays` old or older (the roll-up), or when the newest
 *    version's full DB is gone (a delta on an older one would break the
 *    chain for sites that have the newest): then only a full kit.
 */
import type { MirrorIndex, MirrorIndexEntry } from '../../bundle/mirror-index.ts';
import { compareVersions, parseVersion, todayVersion, versionEpoch } from '../../bundle/version.ts';
import { OukError } from '../../lib/errors.ts';

/** A full kit the publisher holds: listed in the index, or a private base. */
export interface HeldFull {
  version: string;
  dbDigest: string;
  /** Absolute path. */
  path: string;
}

export interface PlanInput {
  index: MirrorIndex | null;
  fulls: HeldFull[];
  now: Date;
  fullEveryDays: number;
  /** --version, when given. */
  version?: string;
}

export interface PublishPlan {
  version: string;
  /** The mirror's newest kit before tonight (null: an empty mirror). */
  previous: MirrorIndexEntry | null;
  /** The full kit the delta is built on; null: no delta tonight. */
  base: HeldFull | null;
  /** Whether a full kit is published tonight (listed in the index). */
  publishFull: boolean;
  /** Why, in words, for the summary and the notes. */
  reasons: string[];
}

const DAY = 86_400_000;

function newest(entries: MirrorIndexEntry[]): MirrorIndexEntry | null {
  return entries.reduce<MirrorIndexEntry | null>((a, e) => (a === null || compareVersions(e.version, a.version) > 0 || (compareVersions(e.version, a.version) === 0 && e.kind === 'delta') ? e : a), null);
}

export function planPublish(input: PlanInput): PublishPlan {
  const kits = input.index?.kits ?? [];
  const previous = newest(kits);
  const today = todayVersion(input.now);
  const reasons: string[] = [];
  if (previous && parseVersion(previous.version).date > today) {
    throw new OukError(
      'PUBLISH_CLOCK_BEHIND',
      `this host's clock says ${input.now.toISOString()}, but the mirror's newest kit is ${previous.version}: a kit built now would not be newer — fix the clock (NTP) and publish again`,
    );
  }
  let version: string;
  if (input.version !== undefined) {
    version = input.version;
    if (previous && compareVersions(version, previous.version) <= 0) {
      throw new OukError(
        'PUBLISH_VERSION_TAKEN',
        `--version ${version}: the mirror already has ${previous.version}${version === previous.version ? '' : ', which is newer'}; versions only go forward — leave --version out (the next free one is chosen) or give a later one`,
      );
    }
  } else if (previous && parseVersion(previous.version).date === today) {
    version = `${today}.${parseVersion(previous.version).serial + 1}`;
    reasons.push(`the mirror already has ${previous.version} today: this is ${version}`);
  } else {
    version = today;
  }

  const fullKits = kits.filter((k) => k.kind === 'full');
  const newestFull = newest(fullKits);
  const base = previous ? (input.fulls.find((f) => f.version === previous.version && f.dbDigest === previous.dbDigest) ?? null) : null;
  let publishFull = false;
  if (!previous) {
    publishFull = true;
    reasons.push('the mirror has no kit yet: a full kit');
  } else if (!base) {
    publishFull = true;
    reasons.push(`the full DB of the newest version ${previous.version} is not held (neither published nor in .publish/bases/): a full kit only, as a delta on an older DB would not apply to sites that have ${previous.version}`);
  } else if (!newestFull) {
    publishFull = true;
    reasons.push('the mirror lists no full kit: a full kit beside the delta');
  } else if (input.now.getTime() - versionEpoch(newestFull.version).getTime() >= input.fullEveryDays * DAY) {
    publishFull = true;
    reasons.push(`the newest full kit ${newestFull.version} is ${input.fullEveryDays} days old or older: the roll-up, a full kit beside the delta`);
  }
  if (base) reasons.push(`a delta on ${base.version}`);
  return { version, previous, base: publishFull && !base ? null : base, publishFull, reasons };
}
