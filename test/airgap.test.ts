/**
 * Air-gap guard: with it installed, HTTP (http module and fetch), raw TCP and
 * DNS to anything but the configured services are refused in-process (a
 * listening loopback server proves no connection arrived), while the real
 * Redis and PostgreSQL keep working.
 */
import assert from 'node:assert/strict';
import dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Redis } from 'ioredis';
import { airgapStatus, allowedEndpoints, enforceAirgap, installAirgapGuard, uninstallAirgapGuard } from '../lib/airgap.ts';
import { isOukError } from '../lib/errors.ts';
import { createTestDatabase, testConfig, testRedisPrefix, type TestDatabase } from './helpers/services.ts';

function isViolation(e: unknown, host: string): boolean {
  const err = e as { cause?: unknown };
  const x = isOukError(e) ? e : isOukError(err?.cause) ? err.cause : null;
  return x !== null && x.code === 'AIRGAP_VIOLATION' && x.message.includes(host);
}

describe('air-gap guard', () => {
  let db: TestDatabase;
  let server: net.Server;
  let serverPort: number;
  let connections = 0;
  const redisPrefix = testRedisPrefix('airgap');

  before(async () => {
    db = await createTestDatabase('airgap');
    server = http.createServer((_req, res) => res.end('reached'));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as net.AddressInfo).port;
  });

  after(async () => {
    uninstallAirgapGuard();
    await new Promise((r) => server.close(r));
    await redisPrefix.cleanup();
    await db.drop();
  });

  it('is off unless STELLA_AIRGAP=true', () => {
    const cfg = testConfig({ airgap: false });
    assert.equal(enforceAirgap(cfg), false);
    assert.equal(airgapStatus(cfg).mode, 'connected');
    assert.match(airgapStatus(cfg).line, /air-gap: off/);
  });

  it('refuses other hosts and ports, lets Redis and PostgreSQL through', async () => {
    const cfg = testConfig({ airgap: true, databaseUrl: db.url, redisUrl: redisPrefix.redisUrl });
    assert.equal(enforceAirgap(cfg), true);
    const status = airgapStatus(cfg);
    assert.equal(status.mode, 'air-gapped');
    assert.equal(status.guard, true);
    assert.match(status.line, /air-gap: ON/);
    assert.ok(status.allowed.some((a) => a.includes(':6379') && a.includes('Redis')));

    // 1. http to a loopback port that is no configured service: refused, and no connection reached it
    await assert.rejects(
      new Promise((resolve, reject) => http.get(`http://127.0.0.1:${serverPort}/`, resolve).on('error', reject)),
      (e) => isViolation(e, `127.0.0.1:${serverPort}`),
    );
    // 2. fetch (undici) likewise: the guard's error is the cause
    await assert.rejects(fetch(`http://127.0.0.1:${serverPort}/x`), (e) => isViolation(e, `127.0.0.1:${serverPort}`));
    // 3. another loopback address and a raw TCP socket
    await assert.rejects(
      new Promise((resolve, reject) => net.connect(9, '127.0.0.2', () => resolve(undefined)).on('error', reject)),
      (e) => isViolation(e, '127.0.0.2:9'),
    );
    assert.equal(connections, 0, 'the loopback server saw a connection: the guard let a packet out');

    // 4. DNS of a name that is not configured: refused before any query
    await assert.rejects(new Promise((resolve, reject) => dns.lookup('example.invalid', (err, a) => (err ? reject(err) : resolve(a)))), (e) => isViolation(e, 'example.invalid'));
    await assert.rejects(dns.promises.lookup('example.invalid'), (e) => isViolation(e, 'example.invalid'));
    await assert.rejects(dns.promises.resolve4('example.invalid'), (e) => isViolation(e, 'example.invalid'));
    // and a hostname URL fails at the guard, not at DNS
    await assert.rejects(fetch('https://osv.dev/'), (e) => isViolation(e, 'osv.dev'));

    // 5. the configured services still work, through their own clients
    const redis = new Redis(redisPrefix.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      await redis.set(`${redisPrefix.prefix}:k`, 'v');
      assert.equal(await redis.get(`${redisPrefix.prefix}:k`), 'v');
    } finally {
      redis.disconnect();
    }
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      assert.equal((await client.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n, 1);
    } finally {
      await client.end();
    }
  });

  it('listening is not egress: a server binds 0.0.0.0 and ::, while connections stay checked', async () => {
    // the guard from the previous test is still installed
    for (const host of ['0.0.0.0', '::']) {
      const srv = http.createServer((_req, res) => res.end('own'));
      await new Promise<void>((resolve, reject) => srv.listen(0, host, resolve).on('error', reject));
      const port = (srv.address() as net.AddressInfo).port;
      // but nobody in this process may connect to it: it is no configured service
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`), (e) => isViolation(e, `127.0.0.1:${port}`));
      await new Promise((r) => srv.close(r));
    }
    // a lookup of a literal or of localhost sends no query, so it passes; resolve* always asks a DNS server: refused
    assert.equal((await dns.promises.lookup('0.0.0.0')).address, '0.0.0.0');
    assert.equal((await dns.promises.lookup('localhost')).address, '127.0.0.1');
    await assert.rejects(dns.promises.resolve4('0.0.0.0'), (e) => isViolation(e, '0.0.0.0'));
    await assert.rejects(dns.promises.reverse('8.8.8.8'), (e) => isViolation(e, '8.8.8.8'));
  });

  it('allows listed extra endpoints and loopback spellings of a configured one', async () => {
    installAirgapGuard(allowedEndpoints(testConfig({ redisUrl: 'redis://localhost:6379', airgapAllow: [`127.0.0.1:${serverPort}`] })));
    const body = await (await fetch(`http://127.0.0.1:${serverPort}/`)).text();
    assert.equal(body, 'reached');
    const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    try {
      assert.equal(await redis.ping(), 'PONG');
    } finally {
      redis.disconnect();
    }
  });

  it('once uninstalled, the same request goes through (the test can fail)', async () => {
    uninstallAirgapGuard();
    const before = connections;
    const body = await new Promise<string>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port: serverPort, path: '/', agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        })
        .on('error', reject),
    );
    assert.equal(body, 'reached');
    assert.equal(connections, before + 1, 'a fresh connection reaches the server counter');
  });
});
