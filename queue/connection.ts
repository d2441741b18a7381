/**
 * Redis connections for BullMQ. Workers and queues need
 * `maxRetriesPerRequest: null` (BullMQ's blocking commands must not time out);
 * a CLI checks that Redis answers first, so an operator gets a clear error
 * instead of a hang.
 */
import { Redis } from 'ioredis';
import { OukError } from '../lib/errors.ts';
import { safeUrl } from '../lib/logger.ts';

export function createRedis(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
  // Errors surface through the commands that fail; an idle reconnect must not crash the process.
  redis.on('error', () => undefined);
  return redis;
}

export function queueUnavailable(url: string, e: unknown): OukError {
  const msg = e instanceof Error ? e.message : String(e);
  return new OukError('QUEUE_UNAVAILABLE', `Redis at ${safeUrl(url)} is unreachable (${msg}): check REDIS_URL and that redis-server is running`, { cause: e, retryable: true });
}

/** A connection that is known to answer, or QUEUE_UNAVAILABLE within `timeoutMs`. */
export async function connectRedis(url: string, timeoutMs = 3000): Promise<Redis> {
  const probe = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, lazyConnect: true });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    probe.disconnect();
    throw queueUnavailable(url, e);
  }
  probe.disconnect();
  return createRedis(url);
}
