/**
 * The settings of one `stella publish` run, checked before anything is read:
 * the roll-up period (`--full-every 7d`), how long deltas are kept
 * (`--keep-days 30`) and a kit's validity (`--expires-days`), which must
 * outlast both together — a site that has the oldest kept full kit must
 * still be able to import it and every delta on top of it.
 */
import { OukError } from '../../lib/errors.ts';

export const DEFAULT_FULL_EVERY_DAYS = 7;
export const DEFAULT_KEEP_DAYS = 30;
/** Longer than DEFAULT_KEEP_DAYS + DEFAULT_FULL_EVERY_DAYS (37): the oldest kept full kit is still valid. */
export const DEFAULT_PUBLISH_EXPIRES_DAYS = 45;
/** Advisory ids listed per change kind in the release notes; counts are always whole. */
export const DEFAULT_NOTES_ID_LIMIT = 1000;

export interface PublishSettings {
  fullEveryDays: number;
  keepDays: number;
  expiresDays: number;
}

/** `7d`, `7`, `2w` → days (1–365). */
export function parseDays(raw: string, name: string): number {
  const m = /^\s*(\d{1,4})\s*([dw]?)\s*$/i.exec(raw);
  const days = m ? Number(m[1]) * (m[2]?.toLowerCase() === 'w' ? 7 : 1) : NaN;
  if (!Number.isInteger(days) || days < 1 || days > 365) {
    throw new OukError('USAGE', `${name} ${raw} is not a number of days between 1 and 365 (e.g. 7d, 2w, 30)`);
  }
  return days;
}

export function checkSettings(s: PublishSettings): PublishSettings {
  for (const [name, v] of [['--full-every', s.fullEveryDays], ['--keep-days', s.keepDays], ['--expires-days', s.expiresDays]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 3650) throw new OukError('USAGE', `${name} ${v} is not a whole number of days between 1 and 3650`);
  }
  if (s.expiresDays <= s.keepDays + s.fullEveryDays) {
    throw new OukError(
      'USAGE',
      `--expires-days ${s.expiresDays} is not longer than --keep-days ${s.keepDays} + --full-every ${s.fullEveryDays}: the oldest full kit the mirror keeps would expire while deltas still chain on it — ` +
        `give --expires-days ${s.keepDays + s.fullEveryDays + 1} or more (default ${DEFAULT_PUBLISH_EXPIRES_DAYS}), or keep fewer days`,
    );
  }
  return s;
}
