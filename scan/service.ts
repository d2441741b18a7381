/**
 * A counted scan, as the CLI and the HTTP API run it: who is asking (a
 * verified token, or an anonymous client), the scan itself, then the quota:
 * the scan is counted once it succeeded (one atomic INCR in Redis), and a
 * scan over the day's limit waits out its delay before it answers (anonymous:
 * 10 % of its own time; token: a growing delay). Nothing is ever refused for
 * quota.
 */
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Config } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';
import { Quota, type QuotaClient, type QuotaOptions, type QuotaUsage } from '../lib/quota.ts';
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
}

export interface QuotaReport extends QuotaUsage {
  /** how long this scan was held back for the quota */
  delayMs: number;
}

export interface CountedScan extends ScanResult {
  client: { kind: QuotaClient['kind']; subject: string | null };
  quota: QuotaReport;
}

export function quotaOptions(config: Config, over: Partial<QuotaOptions> = {}): QuotaOptions {
  return {
    anonLimit: config.quotaAnon,
    tokenLimit: config.quotaToken,
    bannerAt: config.quotaBannerAt,
    keyPrefix: config.quotaPrefix,
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
  const v = await verifyToken(t, key, { issuer: config.jwtIssuer, maxDays: config.jwtMaxDays });
  return { client: { kind: 'token', id: v.id, ...(v.claims.tier !== undefined ? { tier: v.claims.tier } : {}) }, token: v };
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Scans, counts the scan, waits out any quota delay, and reports all of it. */
export async function countedScan(deps: ScanServiceDeps, sbom: Sbom, who: { client: QuotaClient; token: VerifiedToken | null }, opts: ScanOptions = {}): Promise<CountedScan> {
  const started = performance.now();
  const result = await scanSbom(deps.pool, sbom, opts);
  const scanMs = performance.now() - started;
  const quota = new Quota(deps.redis, quotaOptions(deps.config, deps.quota));
  const usage = await quota.count(who.client);
  const delayMs = quota.delayMs(usage, scanMs);
  if (delayMs > 0) await (deps.sleep ?? realSleep)(delayMs);
  return {
    ...result,
    client: { kind: who.client.kind, subject: who.token?.claims.sub ?? null },
    quota: { ...usage, delayMs },
  };
}
