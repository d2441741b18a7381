/**
 * Every Redis connection of every process is built here, from one
 * `RedisTarget` (lib/redis-target.ts: REDIS_URL, or REDIS_SENTINELS with
 * REDIS_SENTINEL_NAME): BullMQ's queues and workers, the queue-metrics
 * listeners, the scan quota's counters, the CLI's probes.
 *
 * Two kinds of connection:
 * - BullMQ's (`createRedis`, `bullConnection`): `maxRetriesPerRequest: null`,
 *   since BullMQ's blocking commands must not time out; commands wait through
 *   an outage or a failover and run once Redis (the new primary) answers.
 * - a failing-fast one (`createCommandRedis`, for the quota): a command that
 *   cannot reach a primary fails after one reconnect, so a scan answers 503
 *   QUOTA_UNAVAILABLE while no primary is elected instead of hanging.
 *
 * With sentinels, each (re)connect asks the configured sentinels (and only
 * those: `updateSentinels: false`, so air-gap mode's allow list stays what the
 * operator wrote) for the current primary, checks that the node it reaches is
 * a primary, and `failoverDetector` reconnects as soon as the sentinels
 * announce a switch.
 */
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { OukError } from '../lib/errors.ts';
import { describeRedisTarget, type RedisTarget } from '../lib/redis-target.ts';

/** A target, or a plain URL (a single server), as tests and tools hand it. */
export type RedisWhere = RedisTarget | string;

/** The target a process's configuration names: `redis` with sentinels, else `redisUrl` (which tests override alone). */
export function redisTargetOf(c: { redis?: RedisTarget; redisUrl: string }): RedisTarget {
  return c.redis?.kind === 'sentinel' ? c.redis : { kind: 'server', url: c.redisUrl };
}

function targetOf(where: RedisWhere): RedisTarget {
  return typeof where === 'string' ? { kind: 'server', url: where } : where;
}

/** The ioredis options reaching `where`, merged with `extra`; a URL target keeps its URL in `url` (BullMQ's ConnectionOptions takes it). */
export function redisOptions(where: RedisWhere, extra: RedisOptions = {}): RedisOptions & { url?: string } {
  const t = targetOf(where);
  if (t.kind === 'server') return { url: t.url, ...extra };
  return {
    sentinels: t.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: t.name,
    role: 'master',
    db: t.db,
    ...(t.password ? { password: t.password } : {}),
    ...(t.username ? { username: t.username } : {}),
    ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
    updateSentinels: false,
    failoverDetector: true,
    // keep asking the sentinels while none answers (a sentinel restart), a second apart at most
    sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
    ...extra,
  };
}

function open(where: RedisWhere, extra: RedisOptions): Redis {
  const { url, ...opts } = redisOptions(where, extra);
  const redis = url ? new Redis(url, opts) : new Redis(opts);
  // Errors surface through the commands that fail; an idle reconnect must not crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/** BullMQ's connection options for what creates its own connections (QueueEvents, a publisher's Queue). */
export function bullConnection(where: RedisWhere): ConnectionOptions {
  // ioredis' own options (sentinels included); BullMQ's type spells out only a subset of them
  return redisOptions(where, { maxRetriesPerRequest: null, enableReadyCheck: true }) as ConnectionOptions;
}

/** A connection for BullMQ queues and workers. */
export function createRedis(where: RedisWhere): Redis {
  return open(where, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

/** Longest a quota command waits for Redis (queued while reconnecting, or sent). */
export const COMMAND_TIMEOUT_MS = 3000;

/** A connection whose commands fail fast while no primary answers (the quota: 503, never a hang). */
export function createCommandRedis(where: RedisWhere): Redis {
  // A command waits at most 3 s, queued or sent: also while no sentinel answers (ioredis keeps
  // asking them without a reconnect, so maxRetriesPerRequest alone would not end the wait). The
  // sentinels are asked again and again: a connection that gave up on them would stay closed.
  return open(where, { maxRetriesPerRequest: 1, connectTimeout: 3000, commandTimeout: COMMAND_TIMEOUT_MS });
}

export function queueUnavailable(where: RedisWhere, e: unknown): OukError {
  const msg = e instanceof Error ? e.message : String(e);
  const t = targetOf(where);
  const check = t.kind === 'server' ? 'check REDIS_URL and that redis-server is running' : 'check REDIS_SENTINELS/REDIS_SENTINEL_NAME, that the sentinels run and that they have elected a primary';
  return new OukError('QUEUE_UNAVAILABLE', `Redis at ${describeRedisTarget(t)} is unreachable (${msg}): ${check}`, { cause: e, retryable: true });
}

/** A connection known to answer now (a probe that does not retry), or QUEUE_UNAVAILABLE within about `timeoutMs`. */
export async function probeRedis(where: RedisWhere, timeoutMs = 3000): Promise<Redis> {
  const probe = open(where, { maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, sentinelRetryStrategy: () => null, lazyConnect: true });
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    probe.disconnect();
    throw queueUnavailable(where, e);
  }
  return probe;
}

/** A BullMQ connection that is known to answer, or QUEUE_UNAVAILABLE within `timeoutMs`. */
export async function connectRedis(where: RedisWhere, timeoutMs = 3000): Promise<Redis> {
  (await probeRedis(where, timeoutMs)).disconnect();
  return createRedis(where);
}
