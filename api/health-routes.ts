/**
 * GET /healthz: the process is up (no dependency checked), and whether it runs
 *               air-gapped with the guard installed.
 * GET /readyz:  Redis, PostgreSQL and the object store answer, and a DB is
 *               active; 503 with the reasons otherwise. An active DB older than
 *               OUK_WARN_AGE_HOURS is a warning (still ready), like the scanners
 *               operators know.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from '../infra/db.ts';
import type { ObjectStore } from '../infra/store.ts';
import { airgapGuardInstalled } from '../lib/airgap.ts';
import { staleness } from '../lib/staleness.ts';
import { readActivePointer } from '../infra/active-db.ts';

export interface HealthRoutesOptions {
  pool: Pool;
  redis: Redis;
  store: ObjectStore;
  bucket: string;
  warnAgeHours: number;
  /** STELLA_AIRGAP: whether this host is configured air-gapped. */
  airgap: boolean;
  /** Per-check timeout (default 2 s). */
  timeoutMs?: number;
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
    if (postgres.ok) {
      try {
        const pointer = await withTimeout(readActivePointer(opts.pool), ms, 'PostgreSQL');
        const s = staleness(pointer.activatedAt, opts.warnAgeHours);
        if (s.warning && !s.missing) warnings.push(s.warning);
        activeDb = pointer.activeImport
          ? { ok: true, version: pointer.activeVersion ?? undefined, activatedAt: s.activatedAt, ageSeconds: s.ageSeconds, stale: s.stale }
          : { ok: false, detail: s.warning ?? 'no DB is active' };
      } catch (e) {
        activeDb = { ok: false, detail: e instanceof Error ? e.message : String(e) };
      }
    }
    const checks = { redis, postgres, store, activeDb };
    const ready = Object.values(checks).every((c) => c.ok);
    const reasons = Object.entries(checks)
      .filter(([, c]) => !c.ok)
      .map(([name, c]) => `${name}: ${c.detail ?? 'not ok'}`);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', reasons, warnings, checks });
  });
};
