/**
 * A counted scan, as the CLI and the HTTP API run it: who is asking (a
 * verified token, or an anonymous client), the scan itself, then the quota:
 * the scan is counted once it succeeded (one atomic INCR in Redis), and a
 * scan over the day's limit waits out its delay before it answers (anonymous:
 * 10 % of its own time; token: a growing delay). Nothing is ever refused for
 * quota.
 *
 * Every scan carries the freshness of the DB it ran on (lib/freshness.ts):
 * each feed's age and budget (`feeds`), the clock check and the warnings
 * (`freshness`). Under OUK_STALE_POLICY=refuse-scans a scan of a DB with a
 * feed over its budget is refused with DB_STALE before it runs (and is not
 * counted); should an activation land while it runs, the freshness of the DB
 * it ran on is read again and decides.
 */
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';
import { staleRefusal, type FeedAge, type Freshness } from '../lib/freshness.ts';
import { readFreshnessSnapshot } from '../infra/freshness.ts';
import { Quota, type QuotaClient, type QuotaOptions, type QuotaUsage } from './quota.ts';
import { loadPublicTokenKey, type PublicTokenKey, verifyToken, type VerifiedToken } from '../lib/tokens.ts';
import type { Sbom } from './sbom.ts';
import { scanSbom, type ScanOptions, type ScanResult } from './scan.ts';

export interface ScanServiceDeps {
  pool: Pool;
  redis: Redis;
  config: Config;
  /** overrides of the quota options (tests: keyPrefix, clock, throttle) */
  quota?: Partial<QuotaOptions>;
  /** how a delay is waited out (tests may record it instead) */
  sleep?: (ms: number) => Promise<void>;
  /** this host's clock (tests inject one) */
  now?: () => Date;
}

export interface QuotaReport extends QuotaUsage {
  /** how long this scan was held back for the quota */
  delayMs: number;
}

/** The freshness of a scan's DB beside its findings: the clock, the policy, the stale feeds and the warnings. */
export type ScanFreshness = Pick<Freshness, 'policy' | 'clock' | 'stale' | 'warnings'>;

export interface CountedScan extends ScanResult {
  client: { kind: QuotaClient['kind']; subject: string | null };
  quota: QuotaReport;
  /** each feed of the DB scanned: snapshot time, age (from the later of the host clock and the newest signed time), budget, stale */
  feeds: FeedAge[];
  freshness: ScanFreshness;
}

export function quotaOptions(config: Config, over: Partial<QuotaOptions> = {}): QuotaOptions {
  return {
    anonLimit: config.quotaAnon,
    tokenLimit: config.quotaToken,
    bannerAt: config.quotaBannerAt,
    keyPrefix: config.quotaPrefix,
    // Sentinel: an answered scan's increment is on a replica (or 100 ms went by), so a failover keeps it
    ...(config.redis?.kind === 'sentinel' ? { replicaAck: { replicas: 1, timeoutMs: 100 } } : {}),
    ...over,
  };
}

const keyCache = new Map<string, PublicTokenKey>();

/** The verification key of STELLA_JWT_PUBLIC_KEY, read once per process. */
export function publicKeyFor(config: Config): PublicTokenKey | null {
  if (!config.jwtPublicKey) return null;
  let k = keyCache.get(config.jwtPublicKey);
  if (!k) keyCache.set(config.jwtPublicKey, (k = loadPublicTokenKey(config.jwtPublicKey)));
  return k;
}

/**
 * The quota client for a request: a token (verified, or TOKEN_INVALID) when
 * one is given, else the anonymous client `anonymousId`.
 */
export async function resolveClient(config: Config, token: string | undefined, anonymousId: string): Promise<{ client: QuotaClient; token: VerifiedToken | null }> {
  const t = token?.trim();
  if (!t) return { client: { kind: 'anonymous', id: anonymousId }, token: null };
  const key = publicKeyFor(config);
  if (!key) {
    throw new OukError('TOKEN_INVALID', 'a token was given but this host has no STELLA_JWT_PUBLIC_KEY to verify it with: set it (the PEM public key of the token issuer), or scan without a token');
  }
  const v = await verifyToken(t, key, { issuer: config.jwtIssuer, maxDays: config.jwtMaxDays, policy: config.cryptoPolicy });
  return { client: { kind: 'token', id: v.id, ...(v.claims.tier !== undefined ? { tier: v.claims.tier } : {}) }, token: v };
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Scans, counts the scan, waits out any quota delay, and reports all of it. */
export async function countedScan(deps: ScanServiceDeps, sbom: Sbom, who: { client: QuotaClient; token: VerifiedToken | null }, opts: ScanOptions = {}): Promise<CountedScan> {
  const now = deps.now ?? (() => new Date());
  let fresh = await readFreshnessSnapshot(deps.pool, deps.config.freshness, now());
  const refused = staleRefusal(fresh);
  if (refused) throw refused;
  const started = performance.now();
  const result = await scanSbom(deps.pool, sbom, opts);
  const scanMs = performance.now() - started;
  if (fresh.activeDb?.version !== result.dbVersion) {
    // an activation landed between the two reads: the DB the scan ran on decides
    fresh = await readFreshnessSnapshot(deps.pool, deps.config.freshness, now());
    const late = staleRefusal(fresh);
    if (late) throw late;
  }
  const quota = new Quota(deps.redis, quotaOptions(deps.config, deps.quota));
  const usage = await quota.count(who.client);
  const delayMs = quota.delayMs(usage, scanMs);
  if (delayMs > 0) await (deps.sleep ?? realSleep)(delayMs);
  return {
    ...result,
    client: { kind: who.client.kind, subject: who.token?.claims.sub ?? null },
    quota: { ...usage, delayMs },
    feeds: fresh.feeds,
    freshness: { policy: fresh.policy, clock: fresh.clock, stale: fresh.stale, warnings: fresh.warnings },
  };
}
