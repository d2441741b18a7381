/**
 * GET /healthz: the process is up (no dependency checked), and whether it runs
 *               air-gapped with the guard installed.
 * GET /readyz:  Redis, PostgreSQL and the object store answer, and a DB is
 *               active; 503 with the reasons otherwise. Freshness
 *               (lib/freshness.ts) is a warning, never a reason to leave
 *               rotation: a feed over its OUK_MAX_AGE budget, and a host clock
 *               behind the newest signed time, each add a `warnings` line, and
 *               `checks.freshness` carries the clock and each feed's age. Every
 *               replica sees the same DB and the same signed time, so taking
 *               one out would not help; the warning, the metrics and the scans'
 *               banners (or DB_STALE under OUK_STALE_POLICY=refuse-scans) say it.
 *               /healthz stays free of dependencies (a PostgreSQL outage must
 *               not restart the API), so it does not carry them.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from '../infra/db.ts';
import type { ObjectStore } from '../infra/store.ts';
import { airgapGuardInstalled } from '../lib/airgap.ts';
import { NO_ACTIVE_DB, type FreshnessRule, type Freshness } from '../lib/freshness.ts';
import { readFreshness } from '../infra/freshness.ts';
import { rootExpiry, type RootExpiry, type RootSummary } from '../lib/root-expiry.ts';

export interface HealthRoutesOptions {
  pool: Pool;
  redis: Redis;
  store: ObjectStore;
  bucket: string;
  /** OUK_MAX_AGE, OUK_STALE_POLICY and the clock tolerance (config.freshness) */
  freshness: FreshnessRule;
  /** this host's clock (tests inject one) */
  now?: () => Date;
  /** STELLA_AIRGAP: whether this host is configured air-gapped. */
  airgap: boolean;
  /** Per-check timeout (default 2 s). */
  timeoutMs?: number;
  /** The site's current root of trust (null: bare keys): a warning 30 days before it expires (lib/root-expiry.ts). */
  trustRoot?: () => Promise<RootSummary | null>;
}

interface Check {
  ok: boolean;
  detail?: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

async function check(fn: () => Promise<string | undefined>, ms: number, what: string): Promise<Check> {
  try {
    const detail = await withTimeout(fn(), ms, what);
    return detail ? { ok: true, detail } : { ok: true };
  } catch (e) {
    return { ok: false, detail: e instanceof Error ? e.message : String(e) };
  }
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app: FastifyInstance, opts: HealthRoutesOptions) => {
  const ms = opts.timeoutMs ?? 2000;
  app.get('/healthz', async () => ({
    status: 'ok',
    airgap: { mode: opts.airgap ? 'air-gapped' : 'connected', guard: airgapGuardInstalled() },
  }));
  app.get('/readyz', async (_req, reply) => {
    const warnings: string[] = [];
    const [redis, postgres, store] = await Promise.all([
      check(async () => {
        await opts.redis.ping();
        return undefined;
      }, ms, 'Redis'),
      check(async () => {
        await opts.pool.query('SELECT 1');
        return undefined;
      }, ms, 'PostgreSQL'),
      check(async () => {
        if (!(await opts.store.bucketExists(opts.bucket))) throw new Error(`bucket ${opts.bucket} does not exist`);
        return undefined;
      }, ms, 'the object store'),
    ]);
    let activeDb: Check & { version?: string; activatedAt?: string | null; ageSeconds?: number | null; stale?: boolean } = { ok: false, detail: 'PostgreSQL is unreachable' };
    let freshness: (Check & Pick<Freshness, 'policy' | 'clock' | 'feeds' | 'stale'>) | undefined;
    if (postgres.ok) {
      try {
        const f = await withTimeout(readFreshness(opts.pool, opts.freshness, (opts.now ?? (() => new Date()))()), ms, 'PostgreSQL');
        freshness = { ok: true, policy: f.policy, clock: f.clock, feeds: f.feeds, stale: f.stale };
        activeDb = f.activeDb
          ? { ok: true, version: f.activeDb.version, activatedAt: f.activeDb.activatedAt, ageSeconds: f.activeDb.ageSeconds, stale: f.stale.length > 0 }
          : { ok: false, detail: NO_ACTIVE_DB };
        // "no DB is active" is the reason above, not also a warning
        for (const w of f.warnings) if (w !== NO_ACTIVE_DB) warnings.push(w);
        for (const n of opts.freshness.notes) warnings.push(n);
      } catch (e) {
        activeDb = { ok: false, detail: e instanceof Error ? e.message : String(e) };
      }
    }
    let trust: RootExpiry | null | undefined;
    if (postgres.ok && opts.trustRoot) {
      try {
        const root = await withTimeout(opts.trustRoot(), ms, 'PostgreSQL');
        trust = root ? rootExpiry(root, (opts.now ?? (() => new Date()))()) : null;
        if (trust?.warning) warnings.push(trust.warning);
      } catch (e) {
        // Not a readiness condition: the verify stage refuses what it must; say why the root is unknown.
        warnings.push(`the root of trust could not be read: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const checks = { redis, postgres, store, activeDb, ...(freshness ? { freshness } : {}) };
    const ready = Object.values(checks).every((c) => c.ok);
    const reasons = Object.entries(checks)
      .filter(([, c]) => !c.ok)
      .map(([name, c]) => `${name}: ${c.detail ?? 'not ok'}`);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', reasons, warnings, checks, ...(trust !== undefined ? { trust } : {}) });
  });
};
