/**
 * The site's root of trust against the clock: it expires (`expires`, signed),
 * and a site whose root has expired accepts only a kit that carries the next
 * one. Thirty days before, `stella ouk status`, /readyz and the metric
 * `ouk_trust_root_expires_timestamp_seconds` say so. Pure: the clock is
 * passed in.
 */

/** Days before the root expires from which it is warned about. */
export const ROOT_EXPIRY_WARNING_DAYS = 30;

/** What is known of the site's current root (functions/common/site-trust.ts currentRootSummary). */
export interface RootSummary {
  version: number;
  /** ISO time */
  expires: string;
  /** where it came from: `OUK_TRUST_ROOT=…`, or the kit member that carried it */
  source: string;
}

export interface RootExpiry extends RootSummary {
  secondsLeft: number;
  expired: boolean;
  expiresSoon: boolean;
  /** one line for status and /readyz, null when nothing is due */
  warning: string | null;
}

export function rootExpiry(root: RootSummary, now: Date): RootExpiry {
  const secondsLeft = Math.floor((Date.parse(root.expires) - now.getTime()) / 1000);
  const expired = secondsLeft <= 0;
  const expiresSoon = !expired && secondsLeft < ROOT_EXPIRY_WARNING_DAYS * 86_400;
  const warning = expired
    ? `the root of trust v${root.version} expired at ${root.expires}: no kit is accepted except one that carries root v${root.version + 1} — get it from the publisher`
    : expiresSoon
      ? `the root of trust v${root.version} expires at ${root.expires} (in ${Math.floor(secondsLeft / 86_400)} days): get the next root from the publisher (a kit that carries trust/root.${root.version + 1}.json)`
      : null;
  return { ...root, secondsLeft, expired, expiresSoon, warning };
}
