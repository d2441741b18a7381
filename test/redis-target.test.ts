/**
 * Where Redis is (lib/redis-target.ts) and how every connection reaches it
 * (queue/connection.ts): REDIS_URL alone, or REDIS_SENTINELS with
 * REDIS_SENTINEL_NAME; hostile values refused with USAGE and a message that
 * names the variable; air-gap mode allows the sentinels named, nothing they
 * might announce. (The failover itself: test/scale-out.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowedEndpoints } from '../lib/airgap.ts';
import { loadConfig } from '../lib/config.ts';
import { describeRedisTarget, parseRedisTarget } from '../lib/redis-target.ts';
import { createCommandRedis, redisOptions, redisTargetOf } from '../queue/connection.ts';
import { Quota } from '../scan/quota.ts';

function refused(env: Record<string, string>, pattern: RegExp): void {
  assert.throws(() => parseRedisTarget(env), (e: Error & { code?: string }) => e.code === 'USAGE' && pattern.test(e.message));
}

describe('REDIS_SENTINELS and REDIS_SENTINEL_NAME', () => {
  test('without sentinels: the one server of REDIS_URL (or the local default)', () => {
    assert.deepEqual(parseRedisTarget({}), { kind: 'server', url: 'redis://127.0.0.1:6379' });
    assert.deepEqual(parseRedisTarget({ REDIS_URL: 'redis://r:6380/2' }), { kind: 'server', url: 'redis://r:6380/2' });
  });

  test("with sentinels: their addresses, the name, and REDIS_URL's password and db for the nodes", () => {
    const t = parseRedisTarget({ REDIS_SENTINELS: ' 10.0.0.1:26379, redis-s2:26380,[::1]:26381 ', REDIS_SENTINEL_NAME: 'mymaster', REDIS_URL: 'redis://:s%40cret@ignored/3' });
    assert.deepEqual(t, {
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'redis-s2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      password: 's@cret',
      username: undefined,
      db: 3,
      sentinelPassword: undefined,
    });
    assert.equal(describeRedisTarget(t), 'sentinel mymaster via 10.0.0.1:26379,redis-s2:26380,[::1]:26381');
    const o = redisOptions(t, { maxRetriesPerRequest: 1 });
    assert.deepEqual(o.sentinels, [{ host: '10.0.0.1', port: 26379 }, { host: 'redis-s2', port: 26380 }, { host: '::1', port: 26381 }]);
    assert.equal(o.name, 'mymaster');
    assert.equal(o.role, 'master');
    assert.equal(o.password, 's@cret');
    assert.equal(o.db, 3);
    assert.equal(o.updateSentinels, false, 'only the sentinels the operator named are asked');
    assert.equal(o.maxRetriesPerRequest, 1);
    assert.equal(o.url, undefined);
  });

  test('hostile or incomplete values are refused, naming the variable', () => {
    refused({ REDIS_SENTINELS: '10.0.0.1:26379' }, /REDIS_SENTINEL_NAME must name/);
    refused({ REDIS_SENTINELS: '10.0.0.1:26379', REDIS_SENTINEL_NAME: 'a b' }, /REDIS_SENTINEL_NAME/);
    refused({ REDIS_SENTINELS: '10.0.0.1', REDIS_SENTINEL_NAME: 'm' }, /REDIS_SENTINELS: "10.0.0.1" is not host:port/);
    refused({ REDIS_SENTINELS: '10.0.0.1:0', REDIS_SENTINEL_NAME: 'm' }, /is not host:port/);
    refused({ REDIS_SENTINELS: '10.0.0.1:70000', REDIS_SENTINEL_NAME: 'm' }, /is not host:port/);
    refused({ REDIS_SENTINELS: 'http://x:1', REDIS_SENTINEL_NAME: 'm' }, /is not host:port/);
    refused({ REDIS_SENTINELS: Array.from({ length: 17 }, (_, i) => `h${i}:26379`).join(','), REDIS_SENTINEL_NAME: 'm' }, /at most 16/);
    refused({ REDIS_SENTINELS: 'h:26379', REDIS_SENTINEL_NAME: 'm', REDIS_URL: 'redis://h/999' }, /database number/);
  });

  test("the configuration's target: the sentinels when set, else redisUrl (which tests override alone)", () => {
    const c = loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'm' });
    assert.equal(redisTargetOf(c).kind, 'sentinel');
    assert.deepEqual(redisTargetOf({ ...loadConfig({}), redisUrl: 'redis://127.0.0.1:7000' }), { kind: 'server', url: 'redis://127.0.0.1:7000' });
    assert.equal(redisOptions('redis://127.0.0.1:7000').url, 'redis://127.0.0.1:7000');
  });

  test('no sentinel answers: a count fails with QUOTA_UNAVAILABLE instead of waiting for them', async () => {
    // port 1 on loopback: nothing listens, every connection is refused at once
    const redis = createCommandRedis(parseRedisTarget({ REDIS_SENTINELS: '127.0.0.1:1,127.0.0.1:1', REDIS_SENTINEL_NAME: 'm' }));
    try {
      const quota = new Quota(redis, { anonLimit: 10, tokenLimit: 10, bannerAt: 5, keyPrefix: 'never-written' });
      await assert.rejects(quota.count({ kind: 'anonymous', id: 'x' }), (e: Error & { code?: string }) => e.code === 'QUOTA_UNAVAILABLE');
    } finally {
      redis.disconnect();
    }
  });

  test('air-gap mode allows the named sentinels; the nodes they announce only through STELLA_AIRGAP_ALLOW', () => {
    const c = loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2:26379', REDIS_SENTINEL_NAME: 'm', STELLA_AIRGAP_ALLOW: '10.0.0.5:6379' });
    const allowed = allowedEndpoints(c).map((e) => `${e.host}:${e.port}`);
    assert.ok(allowed.includes('10.0.0.1:26379') && allowed.includes('10.0.0.2:26379'));
    assert.ok(allowed.includes('10.0.0.5:6379'));
    assert.ok(!allowed.includes('10.0.0.6:6379'));
  });
});
