/**
 * The daily quota against the real Redis (own key prefix): exact concurrent
 * counting, limits and banner from configuration, UTC-midnight reset with an
 * injected clock, TTL past midnight, slow-down and throttle amounts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../lib/config.ts';
import { clientHash, counterTtlMs, Quota, type QuotaOptions, quotaKey } from '../scan/quota.ts';
import { testRedisPrefix } from './helpers/services.ts';

describe('quota', () => {
  const t = testRedisPrefix('quota');
  let redis: Redis;
  let clock = new Date('2026-11-29T12:00:00Z');
  const opts = (over: Partial<QuotaOptions> = {}): QuotaOptions => ({
    anonLimit: 3,
    tokenLimit: 5,
    bannerAt: 4,
    keyPrefix: `${t.prefix}:quota`,
    now: () => clock,
    ...over,
  });

  before(() => {
    redis = new Redis(t.redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis.disconnect();
    await t.cleanup();
  });

  it('keys are quota:<sha256 of the client>:<UTC date>', () => {
    const k = quotaKey({ kind: 'token', id: 'jti-1' }, new Date('2026-11-29T23:59:59Z'));
    assert.match(k, /^quota:[0-9a-f]{64}:2026-11-29$/);
    assert.notEqual(clientHash({ kind: 'token', id: 'x' }), clientHash({ kind: 'anonymous', id: 'x' }));
    assert.ok(!k.includes('jti-1'), 'the client id never appears in clear');
  });

  it('limits come from the environment (QUOTA_ANON, QUOTA_TOKEN, QUOTA_BANNER_AT)', () => {
    const c = loadConfig({ QUOTA_ANON: '2', QUOTA_TOKEN: '7', QUOTA_BANNER_AT: '5' });
    assert.deepEqual([c.quotaAnon, c.quotaToken, c.quotaBannerAt], [2, 7, 5]);
    const d = loadConfig({});
    assert.deepEqual([d.quotaAnon, d.quotaToken, d.quotaBannerAt], [33, 333, 200]);
  });

  it('200 concurrent scans count exactly 200, each seeing its own number', async () => {
    const q = new Quota(redis, opts({ anonLimit: 1000 }));
    const client = { kind: 'anonymous' as const, id: 'concurrent' };
    const clients = Array.from({ length: 4 }, () => new Redis(t.redisUrl, { maxRetriesPerRequest: 1 }));
    try {
      const quotas = clients.map((r) => new Quota(r, opts({ anonLimit: 1000 })));
      const usages = await Promise.all(Array.from({ length: 200 }, (_, i) => quotas[i % quotas.length]!.count(client)));
      assert.deepEqual(usages.map((u) => u.count).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
      assert.equal(await q.peek(client), 200);
    } finally {
      for (const r of clients) r.disconnect();
    }
  });

  it('anonymous: over the limit is slowed by 10 % of the scan time, never refused', async () => {
    const q = new Quota(redis, opts());
    const c = { kind: 'anonymous' as const, id: '10.0.0.7' };
    const seen = [];
    for (let i = 0; i < 5; i++) seen.push(await q.count(c));
    assert.deepEqual(seen.map((u) => u.overLimit), [false, false, false, true, true]);
    assert.deepEqual(seen.map((u) => u.remaining), [2, 1, 0, 0, 0]);
    assert.equal(q.delayMs(seen[2]!, 1000), 0);
    assert.equal(q.delayMs(seen[3]!, 1000), 100);
    assert.equal(q.delayMs(seen[4]!, 2500), 250);
    assert.match(seen[3]!.banner ?? '', /over the daily limit of 3 — anonymous scans are now slowed by 10 %/);
  });

  it('token: limit QUOTA_TOKEN or a higher tier; over it a growing delay', async () => {
    const q = new Quota(redis, opts({ throttleStepMs: 100, throttleMaxMs: 250 }));
    const c = { kind: 'token' as const, id: 'jti-abc' };
    const seen = [];
    for (let i = 0; i < 9; i++) seen.push(await q.count(c));
    assert.equal(seen[0]!.limit, 5);
    assert.deepEqual(seen.map((u) => q.delayMs(u, 1000)), [0, 0, 0, 0, 0, 100, 200, 250, 250]);
    assert.match(seen[5]!.banner ?? '', /throttled with a growing delay \(never refused\)/);
    const tiered = await q.count({ kind: 'token', id: 'jti-tier', tier: 50 });
    assert.equal(tiered.limit, 50);
    const low = await q.count({ kind: 'token', id: 'jti-low', tier: 2 });
    assert.equal(low.limit, 5, 'a tier never lowers QUOTA_TOKEN');
  });

  it('banner from QUOTA_BANNER_AT scans a day', async () => {
    const q = new Quota(redis, opts({ tokenLimit: 100 }));
    const c = { kind: 'token' as const, id: 'banner' };
    const banners = [];
    for (let i = 0; i < 5; i++) banners.push((await q.count(c)).banner);
    assert.deepEqual(banners.map((b) => b !== null), [false, false, false, true, true]);
    assert.match(banners[3]!, /Reminder: 4 of 100 scans used today \(96 left\)/);
  });

  it('resets at 00:00 UTC and expires past the next midnight', async () => {
    const q = new Quota(redis, opts());
    const c = { kind: 'anonymous' as const, id: 'midnight' };
    clock = new Date('2026-11-29T23:59:59.500Z');
    await q.count(c);
    const last = await q.count(c);
    assert.equal(last.count, 2);
    assert.equal(last.date, '2026-11-29');
    assert.equal(last.resetsAt, '2026-11-30T00:00:00.000Z');
    // the TTL is measured on the injected clock: 0.5 s to midnight + 1 h, whatever Redis's own clock says
    const ttl = await redis.pttl(last.key);
    assert.ok(ttl > 3_600_500 - 5_000 && ttl <= 3_600_500, `PTTL one hour past the injected midnight, got ${ttl} ms`);
    assert.equal(counterTtlMs(new Date('2026-11-29T23:59:59.500Z')), 3_600_500);
    assert.equal(counterTtlMs(new Date('2028-02-29T00:00:00Z'), 0), 86_400_000, 'a leap day is a whole day');
    clock = new Date('2026-11-30T00:00:00.000Z');
    const next = await q.count(c);
    assert.equal(next.count, 1, 'a new UTC day starts a new counter');
    assert.notEqual(next.key, last.key);
    clock = new Date('2026-11-29T12:00:00Z');
  });

  it('an unreachable Redis is a clear, retryable QUOTA_UNAVAILABLE', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    dead.on('error', () => undefined);
    const q = new Quota(dead, opts());
    await assert.rejects(q.count({ kind: 'anonymous', id: 'x' }), (e: Error & { code?: string; retryable?: boolean }) => e.code === 'QUOTA_UNAVAILABLE' && e.retryable === true && /REDIS_URL/.test(e.message));
    dead.disconnect();
  });
});
