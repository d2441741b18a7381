/**
 * The desk's limits: at most `perAddress` tokens to one address (its
 * sub-address-free key) and `perDomain` to one sender domain (or the domain's
 * own limit from TOKEN_DESK_DOMAIN_LIMITS) in any window of `periodSeconds`,
 * counted from the record (infra/token-desk-record.ts), never from memory.
 *
 * Over a limit, the desk sends nothing: a reply ("you have had your token")
 * to a forged sender is exactly the mail a spam reflector sends, and anyone
 * can forge the sender. The refusal is given inside the SMTP session
 * instead — `550` with the date the next token can be asked for — so the
 * sender's own mail server tells a real person, and a forger learns only
 * what it already knew. Within the limits the desk answers any sender once
 * per period, which bounds what a forger can make it send to one victim.
 */

export interface LimitSettings {
  periodSeconds: number;
  perAddress: number;
  perDomain: number;
  /** lower-case domain -> its own limit */
  domainLimits: Record<string, number>;
}

export type LimitDecision =
  | { issue: true }
  | { issue: false; scope: 'address' | 'domain'; limit: number; freeAt: Date; message: string };

export function domainLimit(s: LimitSettings, domain: string): number {
  return s.domainLimits[domain] ?? s.perDomain;
}

/** The start of the window that ends at `now`: issues after it count. */
export function windowStart(s: LimitSettings, now: Date): Date {
  return new Date(now.getTime() - s.periodSeconds * 1000);
}

/** "30 days", "12 hours", "90 minutes", "45 seconds" */
export function describePeriod(seconds: number): string {
  const units: Array<[number, string]> = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}

/**
 * Whether one more token may go to `key` at `domain`, given the issue times
 * in the window (newest first, as many as the limit, from recentIssues).
 * When not, `freeAt` is when the oldest of the counted issues leaves the
 * window.
 */
export function decideLimits(s: LimitSettings, input: { key: string; domain: string; addressIssues: Date[]; domainIssues: Date[] }): LimitDecision {
  const period = describePeriod(s.periodSeconds);
  const freeAt = (issues: Date[], limit: number): Date => new Date(issues[limit - 1]!.getTime() + s.periodSeconds * 1000);
  if (input.addressIssues.length >= s.perAddress) {
    const at = freeAt(input.addressIssues, s.perAddress);
    const last = input.addressIssues[0]!.toISOString();
    return {
      issue: false,
      scope: 'address',
      limit: s.perAddress,
      freeAt: at,
      message: `a token was already sent to ${input.key} (${last}); the desk sends ${s.perAddress === 1 ? 'one token' : `${s.perAddress} tokens`} per address every ${period}: write again after ${at.toISOString()}`,
    };
  }
  const dl = domainLimit(s, input.domain);
  if (input.domainIssues.length >= dl) {
    const at = freeAt(input.domainIssues, dl);
    return {
      issue: false,
      scope: 'domain',
      limit: dl,
      freeAt: at,
      message: `the desk has sent ${dl} tokens to addresses at ${input.domain} in the last ${period}, its limit for one domain: write again after ${at.toISOString()}, or ask the publisher for a token`,
    };
  }
  return { issue: true };
}
