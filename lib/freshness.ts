/**
 * How fresh the data behind a scan is, on a clock that may be wrong: the one
 * model `stella ouk status`, `/readyz`, `/metrics` and every scan use.
 *
 *  - The clock. PostgreSQL keeps the newest signed time this site has seen
 *    (infra/signed-time.ts: the `created` of a verified kit; it never goes
 *    back). Every age is computed from the later of this host's clock and that
 *    time, so a clock set back (a dead CMOS battery, a restored VM snapshot)
 *    can make data look older, never younger. When the host clock is behind the
 *    signed time by more than the tolerance (OUK_MAX_CLOCK_SKEW_SECONDS, the
 *    same allowance a kit's `created` gets), it is said everywhere.
 *  - The budgets. OUK_MAX_AGE=nvd:3d,osv:2d,… gives a feed the longest age its
 *    snapshot (the manifest's per-feed `snapshot` of the active DB) may have;
 *    a feed over its budget is stale. OUK_STALE_POLICY says what that does:
 *    `warn` (a banner on scans and in status, the metrics) or `refuse-scans`
 *    (scans answer DB_STALE, naming the feeds and their ages).
 *
 * Pure: the inputs (the host time, the signed time, the active DB's feeds) come
 * in, so tests and every caller decide the clock.
 */
import { OukError } from './errors.ts';

/**
 * Every feed a kit may carry (builder/model.ts FEEDS and the enrichment feeds
 * of builder/enrichment.ts; test/freshness.test.ts keeps the lists equal): an
 * OUK_MAX_AGE naming anything else is a configuration error.
 */
export const KNOWN_FEEDS = ['nvd', 'osv', 'ghsa', 'csaf', 'kev', 'epss'] as const;

/** The budgets when OUK_MAX_AGE is not set (and OUK_WARN_AGE_HOURS neither): the documented example. */
export const DEFAULT_MAX_AGE = 'nvd:3d,osv:2d,ghsa:2d,kev:7d,epss:7d';

export type StalePolicy = 'warn' | 'refuse-scans';
export const STALE_POLICIES: readonly StalePolicy[] = ['warn', 'refuse-scans'];

/** The configured rule (lib/config.ts builds it from OUK_MAX_AGE, OUK_STALE_POLICY, OUK_MAX_CLOCK_SKEW_SECONDS). */
export interface FreshnessRule {
  /** feed name -> its budget in seconds; a feed not named has none */
  budgets: Readonly<Record<string, number>>;
  policy: StalePolicy;
  /** how far the host clock may be behind the newest signed time before it is called behind */
  toleranceSeconds: number;
  /** where the budgets came from: shown by `stella ouk status` */
  source: 'OUK_MAX_AGE' | 'OUK_WARN_AGE_HOURS' | 'default';
  /** configuration notes an operator should see (a deprecated variable in use) */
  notes: string[];
}

/** One feed of the active DB: its snapshot time, its age from `ageFrom`, its budget. */
export interface FeedAge {
  name: string;
  /** the manifest's snapshot time of the feed (ISO 8601), null when the kit gives none */
  snapshot: string | null;
  /** seconds from the snapshot to `ageFrom`; null without a snapshot */
  ageSeconds: number | null;
  /** OUK_MAX_AGE's budget for this feed in seconds, null when it has none */
  budgetSeconds: number | null;
  /** over its budget (a budgeted feed without a snapshot time counts as stale: its age cannot be shown to be within it) */
  stale: boolean;
}

export interface ClockCheck {
  /** this host's clock when assessed */
  hostTime: string;
  /** the newest signed time this site has seen, null before the first verified kit */
  signedTime: string | null;
  /** the later of the two: every age is computed from it */
  ageFrom: string;
  /** how far the host clock is behind the signed time (0 when it is not) */
  behindSeconds: number;
  /** behind by more than the tolerance */
  behind: boolean;
  toleranceSeconds: number;
}

export interface Freshness {
  policy: StalePolicy;
  clock: ClockCheck;
  /** the active DB, its age since activation counted from `clock.ageFrom`; null when none is active */
  activeDb: { version: string; activatedAt: string | null; ageSeconds: number | null } | null;
  /** each feed the active DB carries, in its manifest's order */
  feeds: FeedAge[];
  /** the names of the stale feeds */
  stale: string[];
  /** one line each: the clock behind, every stale feed, no DB active; empty when all is well */
  warnings: string[];
}

export interface FreshnessInput {
  hostNow: Date;
  signedTime: Date | null;
  /** null: no DB is active */
  active: { version: string; activatedAt: Date | null; feeds: ReadonlyArray<{ name: string; snapshot: string | null }> } | null;
  rule: FreshnessRule;
}

/** A malformed setting, as the builder's SOURCE_DATE_EPOCH is: USAGE (exit 2), naming the variable. */
function usage(message: string): OukError {
  return new OukError('USAGE', message);
}

const UNIT_SECONDS: Record<string, number> = { w: 604_800, d: 86_400, h: 3_600, m: 60, s: 1 };
/** Longest budget accepted: ten years, far past any kit's life. */
const MAX_BUDGET_SECONDS = 10 * 365 * 86_400;

/**
 * A budget: one or more number-unit pairs, units w d h m s (`3d`, `36h`,
 * `1d12h`, `90m`); more than 0 and at most ten years. Anything else throws
 * with the variable's name and what to write instead.
 */
export function parseBudget(raw: string, where: string): number {
  const text = raw.trim();
  if (!/^(\d{1,6}[wdhms])+$/i.test(text)) {
    throw usage(`${where}: "${raw}" is not a duration: give a number and a unit (w, d, h, m, s), e.g. 3d, 36h, 1d12h, 90m`);
  }
  let seconds = 0;
  for (const m of text.matchAll(/(\d+)([wdhms])/gi)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]!.toLowerCase()]!;
  if (seconds <= 0) throw usage(`${where}: "${raw}" is zero: a budget must be more than 0 (leave the feed out for no budget)`);
  if (seconds > MAX_BUDGET_SECONDS) throw usage(`${where}: "${raw}" is longer than ten years`);
  return seconds;
}

/**
 * OUK_MAX_AGE: `feed:duration` pairs, comma-separated, each feed once and one
 * of KNOWN_FEEDS; `none` for no budgets at all. Strict: an empty item, an
 * unknown feed, a repeated feed or a bad duration throws naming it.
 */
export function parseMaxAge(raw: string, name = 'OUK_MAX_AGE'): Record<string, number> {
  const text = raw.trim();
  if (text.toLowerCase() === 'none') return {};
  const budgets: Record<string, number> = {};
  const items = text.split(',');
  for (const [i, item] of items.entries()) {
    const entry = item.trim();
    if (entry === '') throw usage(`${name}=${raw}: item ${i + 1} is empty: give feed:duration pairs separated by commas, e.g. ${DEFAULT_MAX_AGE} (or none)`);
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.+)$/.exec(entry);
    if (!m) throw usage(`${name}=${raw}: "${entry}" is not feed:duration (e.g. nvd:3d)`);
    const feed = m[1]!.toLowerCase();
    if (!(KNOWN_FEEDS as readonly string[]).includes(feed)) throw usage(`${name}=${raw}: unknown feed "${m[1]}": the feeds are ${KNOWN_FEEDS.join(', ')}`);
    if (feed in budgets) throw usage(`${name}=${raw}: feed ${feed} is given twice`);
    budgets[feed] = parseBudget(m[2]!, `${name}=${raw}: feed ${feed}`);
  }
  return budgets;
}

export function parseStalePolicy(raw: string | undefined, name = 'OUK_STALE_POLICY'): StalePolicy {
  const text = (raw ?? '').trim();
  if (text === '') return 'warn';
  if ((STALE_POLICIES as readonly string[]).includes(text)) return text as StalePolicy;
  throw usage(`${name}=${raw} is not a policy: give warn (a banner, scans go on) or refuse-scans (scans answer DB_STALE while a feed is over its OUK_MAX_AGE budget)`);
}

/** `3d 4h`, `5h 12m`, `42m`, `12s`. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

/** A budget as it would be written in OUK_MAX_AGE: `3d`, `7d`, `36h` (1d12h), `90m`. */
export function formatBudget(seconds: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    const n = UNIT_SECONDS[unit]!;
    if (seconds >= n && seconds % n === 0) return `${seconds / n}${unit}`;
  }
  return `${seconds}s`;
}

/** The warning when no DB is active. */
export const NO_ACTIVE_DB = 'no vulnerability DB is active: import an OUK bundle (stella ouk import FILE) before scanning';

/** The clock, each feed's age from the later of the two clocks, and what deserves a warning. */
export function assessFreshness(input: FreshnessInput): Freshness {
  const { rule } = input;
  const host = input.hostNow.getTime();
  const signed = input.signedTime?.getTime() ?? null;
  const from = signed !== null && signed > host ? signed : host;
  const behindSeconds = signed !== null && signed > host ? Math.round((signed - host) / 1000) : 0;
  const clock: ClockCheck = {
    hostTime: new Date(host).toISOString(),
    signedTime: signed === null ? null : new Date(signed).toISOString(),
    ageFrom: new Date(from).toISOString(),
    behindSeconds,
    behind: behindSeconds > rule.toleranceSeconds,
    toleranceSeconds: rule.toleranceSeconds,
  };
  const warnings: string[] = [];
  if (clock.behind) {
    warnings.push(
      `this host's clock (${clock.hostTime}) is ${formatAge(behindSeconds)} behind the newest signed time this site has seen (${clock.signedTime}, the created time of a verified kit): ages are counted from the signed time; set the clock right (NTP, date -u)`,
    );
  }
  if (!input.active) {
    warnings.push(NO_ACTIVE_DB);
    return { policy: rule.policy, clock, activeDb: null, feeds: [], stale: [], warnings };
  }
  const feeds = input.active.feeds.map((f): FeedAge => {
    const at = f.snapshot === null ? NaN : Date.parse(f.snapshot);
    const ageSeconds = Number.isNaN(at) ? null : Math.max(0, Math.round((from - at) / 1000));
    const budgetSeconds = rule.budgets[f.name] ?? null;
    const stale = budgetSeconds !== null && (ageSeconds === null || ageSeconds > budgetSeconds);
    return { name: f.name, snapshot: Number.isNaN(at) ? null : new Date(at).toISOString(), ageSeconds, budgetSeconds, stale };
  });
  for (const f of feeds.filter((x) => x.stale)) warnings.push(staleLine(f));
  const activatedAt = input.active.activatedAt;
  return {
    policy: rule.policy,
    clock,
    activeDb: {
      version: input.active.version,
      activatedAt: activatedAt ? activatedAt.toISOString() : null,
      ageSeconds: activatedAt ? Math.max(0, Math.round((from - activatedAt.getTime()) / 1000)) : null,
    },
    feeds,
    stale: feeds.filter((f) => f.stale).map((f) => f.name),
    warnings,
  };
}

function staleLine(f: FeedAge): string {
  const budget = formatBudget(f.budgetSeconds!);
  if (f.ageSeconds === null) return `feed ${f.name} of the active DB has no snapshot time, so it cannot be shown to be within its budget of ${budget} (OUK_MAX_AGE): import a kit that carries it`;
  return `feed ${f.name} is ${formatAge(f.ageSeconds)} old (snapshot ${f.snapshot}), over its budget of ${budget} (OUK_MAX_AGE): findings may miss its recent advisories; import a newer OUK kit`;
}

/** `osv 3d 2h old (budget 2d)`, for a one-line list of stale feeds. */
function shortStale(f: FeedAge): string {
  return `${f.name} ${f.ageSeconds === null ? 'of unknown age' : `${formatAge(f.ageSeconds)} old`} (budget ${formatBudget(f.budgetSeconds!)})`;
}

/**
 * The refusal of a scan under OUK_STALE_POLICY=refuse-scans while a feed is
 * over its budget (DB_STALE, HTTP 503), naming each stale feed and its age;
 * null when the scan may run.
 */
export function staleRefusal(f: Freshness): OukError | null {
  if (f.policy !== 'refuse-scans' || f.stale.length === 0) return null;
  const list = f.feeds.filter((x) => x.stale).map(shortStale).join(', ');
  const clock = f.clock.behind ? ` (ages counted from the newest signed time ${f.clock.signedTime}: this host's clock is ${formatAge(f.clock.behindSeconds)} behind it)` : '';
  return new OukError(
    'DB_STALE',
    `the active DB${f.activeDb ? ` ${f.activeDb.version}` : ''} is older than its budgets allow: ${list}${clock}; OUK_STALE_POLICY=refuse-scans refuses scans until a newer OUK kit is active (stella ouk import FILE); OUK_STALE_POLICY=warn scans with a warning instead`,
  );
}
