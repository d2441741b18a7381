/**
 * The free-token e-mail desk against real sockets: the desk listens on a
 * loopback port (in-process via startTokenDesk with an injected clock, and
 * through the real CLI as a process), a local SMTP sink (smtp-server) plays
 * the relay and catches the replies, nodemailer is the sending client (and a
 * raw socket where the exact SMTP reply codes matter), the record is in a
 * real PostgreSQL database of this file's own.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { migrate } from '../infra/db.ts';
import { listDeskTokens, withDomainLock } from '../infra/token-desk-record.ts';
import { tokenDeskSettings } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { loadPublicTokenKey, verifyToken } from '../lib/tokens.ts';
import { startTokenDesk, type TokenDesk } from '../publisher/token-desk/index.ts';
import { childBaseEnv, createTestDatabase, freePort, repoRoot, runStella, tmpDir, type TestDatabase } from './helpers/services.ts';
import { dialog, startSmtpSink, type SmtpSink, type SunkMessage } from './helpers/smtp-sink.ts';

const DESK = 'token@desk.example.org';
const DAY = 86400;
const dir = tmpDir('token-desk');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyFile = path.join(dir, 'token.key');
const pubFile = path.join(dir, 'token.pub');
fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
fs.writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }));
const passwordFile = path.join(dir, 'relay-password');
fs.writeFileSync(passwordFile, 'relay-secret\n');

/** The desk's environment: the sink as the relay (plain text on loopback, with an account). */
function deskEnv(sink: SmtpSink, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TOKEN_DESK_ADDRESS: DESK,
    TOKEN_DESK_HOST: '127.0.0.1',
    TOKEN_DESK_PORT: '0',
    TOKEN_DESK_KEY: keyFile,
    TOKEN_DESK_TIER: '500',
    TOKEN_DESK_TTL: '14d',
    TOKEN_DESK_PERIOD: '30d',
    TOKEN_DESK_PER_ADDRESS: '1',
    TOKEN_DESK_PER_DOMAIN: '2',
    TOKEN_DESK_MAX_BYTES: '16384',
    TOKEN_DESK_RELAY_HOST: '127.0.0.1',
    TOKEN_DESK_RELAY_PORT: String(sink.port),
    TOKEN_DESK_RELAY_TLS: 'none',
    TOKEN_DESK_RELAY_USER: 'desk',
    TOKEN_DESK_RELAY_PASSWORD_FILE: passwordFile,
    TOKEN_DESK_RELAY_TIMEOUT_SECONDS: '10',
    ...extra,
  };
}

/** A mail to the desk from nodemailer; resolves with the desk's final SMTP reply, rejects with its refusal. */
async function send(port: number, from: string, opts: { headers?: Record<string, string>; text?: string; to?: string[]; envelopeFrom?: string; raw?: string } = {}): Promise<string> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, logger: false });
  try {
    const envelope = { from: opts.envelopeFrom ?? from, to: opts.to ?? [DESK] };
    const info = opts.raw
      ? await client.sendMail({ envelope, raw: opts.raw })
      : await client.sendMail({ envelope, from, to: DESK, subject: '', text: opts.text ?? '', headers: opts.headers ?? {}, messageId: `<req-${Math.random().toString(36).slice(2)}@example.com>` });
    return info.response;
  } finally {
    client.close();
  }
}

async function refusal(p: Promise<string>): Promise<{ code: number; message: string }> {
  try {
    const r = await p;
    assert.fail(`the desk accepted: ${r}`);
  } catch (e) {
    const err = e as { responseCode?: number; response?: string; message: string };
    if (err.responseCode === undefined) throw e;
    return { code: err.responseCode, message: err.response ?? err.message };
  }
}

const TOKEN_LINE = /^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/m;

function tokenOf(m: SunkMessage): string {
  const t = TOKEN_LINE.exec(m.parsed.text ?? '')?.[1];
  assert.ok(t, `no token in the reply:\n${m.parsed.text}`);
  return t;
}

describe('the token desk, in-process (injected clock)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let sink: SmtpSink;
  let desk: TokenDesk;
  let now = new Date('2031-05-04T10:00:00.000Z');
  const clock = (): Date => now;
  const logger = createLogger('token-desk-test', { level: 'silent' });

  const start = async (extra: Record<string, string> = {}): Promise<TokenDesk> =>
    startTokenDesk(tokenDeskSettings(deskEnv(sink, extra)), { pool, logger, issuer: 'stella-ouk', airgap: false, now: clock });

  before(async () => {
    db = await createTestDatabase('token-desk');
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    await migrate(pool);
    sink = await startSmtpSink({ auth: { user: 'desk', pass: 'relay-secret' } });
    desk = await start();
  });

  after(async () => {
    await desk?.close();
    await sink?.close();
    await pool?.end();
    await db?.drop();
  });

  it('answers a blank mail with a token that verifies with the public key, of the tier and lifetime configured', async () => {
    const response = await send(desk.port, 'Alice@Example.com', { headers: { 'Reply-To': 'victim@elsewhere.example.net' } });
    assert.match(response, /^250 OK: a token was sent to alice@example\.com/);
    const [m] = await sink.waitFor(1);
    // RFC 3834: from the null sender, to the envelope sender (never Reply-To), marked auto-replied, threaded
    assert.equal(m!.from, '');
    assert.deepEqual(m!.to, ['alice@example.com']);
    assert.equal(m!.user, 'desk', 'the relay account (password from the file) was used');
    assert.equal(m!.parsed.headers.get('auto-submitted'), 'auto-replied');
    assert.equal(m!.parsed.from?.value[0]?.address, DESK);
    assert.match(m!.parsed.inReplyTo ?? '', /^<req-\w+@example\.com>$/);

    const token = tokenOf(m!);
    // jose directly, with the public key alone
    const { payload, protectedHeader } = await jose.jwtVerify(token, publicKey, { algorithms: ['ES256'], issuer: 'stella-ouk', currentDate: now });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, 'alice@example.com');
    assert.equal(payload.tier, 500);
    assert.equal(payload.iat, now.getTime() / 1000);
    assert.equal(payload.exp! - payload.iat!, 14 * DAY);
    // and the way a site verifies it (lib/tokens.ts, STELLA_JWT_PUBLIC_KEY)
    const v = await verifyToken(token, loadPublicTokenKey(pubFile), { now });
    assert.equal(v.claims.tier, 500);

    const rows = await listDeskTokens(pool, { address: 'alice@example.com' });
    assert.equal(rows.length, 1);
    assert.deepEqual(
      { jti: rows[0]!.jti, state: rows[0]!.state, domain: rows[0]!.domain, sentTo: rows[0]!.sentTo, tier: rows[0]!.tier, issued: rows[0]!.issuedAt.toISOString(), expires: rows[0]!.expiresAt.toISOString() },
      { jti: payload.jti, state: 'sent', domain: 'example.com', sentTo: 'alice@example.com', tier: 500, issued: now.toISOString(), expires: new Date((payload.exp as number) * 1000).toISOString() },
    );
  });

  it('a second mail from the same address in the period gets no second token, across a restart, until the period has passed', async () => {
    const before = sink.messages.length;
    const again = await refusal(send(desk.port, 'alice@example.com'));
    assert.equal(again.code, 550);
    assert.match(again.message, /already sent to alice@example\.com .*write again after 2031-06-03T10:00:00\.000Z/);
    // a +tag is the same mailbox; a restarted desk reads the same record
    await desk.close();
    desk = await start();
    now = new Date(now.getTime() + 29 * DAY * 1000);
    assert.equal((await refusal(send(desk.port, 'alice+again@example.com'))).code, 550);
    assert.equal(sink.messages.length, before, 'no reply was sent for a refused request');
    assert.equal((await listDeskTokens(pool, { address: 'alice@example.com' })).length, 1);

    now = new Date(now.getTime() + 1 * DAY * 1000 + 1000);
    assert.match(await send(desk.port, 'alice@example.com'), /^250 OK: a token was sent/);
    await sink.waitFor(before + 1);
    assert.equal((await listDeskTokens(pool, { address: 'alice@example.com' })).filter((r) => r.state === 'sent').length, 2);
  });

  it('limits one domain to TOKEN_DESK_PER_DOMAIN tokens per period', async () => {
    const before = sink.messages.length;
    await send(desk.port, 'bob@corp.example.net');
    await send(desk.port, 'carol@corp.example.net');
    const third = await refusal(send(desk.port, 'dave@corp.example.net'));
    assert.equal(third.code, 550);
    assert.match(third.message, /sent 2 tokens to addresses at corp\.example\.net in the last 30 days/);
    await sink.waitFor(before + 2);
    assert.deepEqual(sink.messages.slice(before).map((m) => m.to[0]).sort(), ['bob@corp.example.net', 'carol@corp.example.net']);
    assert.deepEqual((await listDeskTokens(pool, { domain: 'corp.example.net' })).map((r) => r.address).sort(), ['bob@corp.example.net', 'carol@corp.example.net']);
  });

  it('bounces, auto-replies and list mail are taken and get nothing', async () => {
    const before = sink.messages.length;
    const dsn = [
      'From: Mail Delivery System <mailer-daemon@mx.bounce.example>',
      `To: ${DESK}`,
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'delivery failed',
      '--b1--',
      '',
    ].join('\r\n');
    // one at a time: the desk takes TOKEN_DESK_MAX_PER_IP (5) connections from one address
    const quiet: Array<[string, () => Promise<string>]> = [
      ['null sender', () => send(desk.port, 'x@bounce1.example', { envelopeFrom: '', raw: dsn })],
      ['mailer-daemon', () => send(desk.port, 'MAILER-DAEMON@bounce2.example', { raw: dsn })],
      ['postmaster', () => send(desk.port, 'postmaster@bounce3.example')],
      ['Auto-Submitted: auto-replied', () => send(desk.port, 'ooo@auto1.example', { headers: { 'Auto-Submitted': 'auto-replied' } })],
      ['Auto-Submitted: auto-generated', () => send(desk.port, 'cron@auto2.example', { headers: { 'Auto-Submitted': 'auto-generated' } })],
      ['X-Auto-Response-Suppress', () => send(desk.port, 'exch@auto3.example', { headers: { 'X-Auto-Response-Suppress': 'All' } })],
      ['Precedence: bulk', () => send(desk.port, 'news@list1.example', { headers: { Precedence: 'bulk' } })],
      ['Precedence: junk', () => send(desk.port, 'junk@list2.example', { headers: { Precedence: 'junk' } })],
      ['Precedence: list', () => send(desk.port, 'member@list3.example', { headers: { Precedence: 'list' } })],
      ['List-Id', () => send(desk.port, 'member@list4.example', { headers: { 'List-Id': 'Users <users.list4.example>' } })],
      ['List-Unsubscribe', () => send(desk.port, 'member@list5.example', { headers: { 'List-Unsubscribe': '<mailto:leave@list5.example>' } })],
    ];
    for (const [what, p] of quiet) assert.match(await p(), /^250 OK: received; no reply is sent/, what);
    // the same desk answers a person who says Auto-Submitted: no
    assert.match(await send(desk.port, 'person@auto4.example', { headers: { 'Auto-Submitted': 'no' } }), /^250 OK: a token was sent/);
    await sink.waitFor(before + 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(sink.messages.slice(before).map((m) => m.to[0]), ['person@auto4.example']);
    const domains = new Set((await listDeskTokens(pool)).map((r) => r.domain));
    for (const d of ['bounce1.example', 'bounce2.example', 'bounce3.example', 'auto1.example', 'auto2.example', 'auto3.example', 'list1.example', 'list5.example']) assert.ok(!domains.has(d), d);
  });

  it('relaying is refused at RCPT, and so are hostile sender addresses; one recipient', async () => {
    const { replies } = await dialog(desk.port, [
      'EHLO client.example',
      'MAIL FROM:<alice@localhost>',
      'MAIL FROM:<x@[127.0.0.1]>',
      'MAIL FROM:<"a b"@example.com>',
      'MAIL FROM:<eve@evil.example>',
      'RCPT TO:<victim@elsewhere.example.net>',
      'RCPT TO:<token@desk.example.org.elsewhere.example>',
      'RCPT TO:<Token@Desk.Example.org>',
      'RCPT TO:<postmaster@desk.example.org>',
      'QUIT',
    ]);
    const codes = replies.map((r) => r.split('\n').at(-1)!.slice(0, 3));
    // the quoted local part fails smtp-server's own address syntax (501) before the desk's check
    assert.deepEqual(codes, ['220', '250', '553', '553', '501', '250', '550', '550', '250', '452', '221'], replies.join('\n'));
    assert.match(replies[6]!, /takes mail for token@desk\.example\.org only, and relays nothing/);
    // nodemailer: a mail for someone else is refused at RCPT and nothing reaches the relay
    const before = sink.messages.length;
    const r = await refusal(send(desk.port, 'mallory@relay.example', { to: ['victim@elsewhere.example.net'] }));
    assert.equal(r.code, 550);
    assert.equal(sink.messages.length, before);
  });

  it('an oversize message is refused (552), and nothing is issued for it', async () => {
    const r = await refusal(send(desk.port, 'big@size.example', { text: 'x'.repeat(40 * 1024) }));
    assert.equal(r.code, 552);
    assert.equal((await listDeskTokens(pool, { domain: 'size.example' })).length, 0);
  });

  it('a relay that refuses the reply: 451 to the sender (try again), the token on record as failed and not counted', async () => {
    sink.refuse.set('frank@flaky.example', { code: 451, text: 'try later' });
    const r = await refusal(send(desk.port, 'frank@flaky.example'));
    assert.equal(r.code, 451);
    const rows = await listDeskTokens(pool, { domain: 'flaky.example' });
    assert.deepEqual(rows.map((x) => x.state), ['failed']);
    assert.match(rows[0]!.error ?? '', /try later/);
    sink.refuse.delete('frank@flaky.example');
    const before = sink.messages.length;
    assert.match(await send(desk.port, 'frank@flaky.example'), /^250 OK: a token was sent/);
    await sink.waitFor(before + 1);
    assert.deepEqual((await listDeskTokens(pool, { domain: 'flaky.example' })).map((x) => x.state).sort(), ['failed', 'sent']);
  });

  it('mails at once from one domain cannot pass its limit together: one decision per domain at a time', async () => {
    // the lock itself: a second decision for the domain waits until the first commits, another domain does not
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const first = withDomainLock(pool, 'lock.example', async () => {
      order.push('first in');
      await gate;
      order.push('first out');
    });
    await new Promise((r) => setTimeout(r, 100));
    const second = withDomainLock(pool, 'lock.example', async () => void order.push('second in'));
    await withDomainLock(pool, 'other.example', async () => void order.push('other domain'));
    await new Promise((r) => setTimeout(r, 300));
    try {
      assert.deepEqual(order, ['first in', 'other domain']);
    } finally {
      release();
      await Promise.all([first, second]);
    }
    assert.deepEqual(order, ['first in', 'other domain', 'first out', 'second in']);
    // and through SMTP: four mails at once, a limit of two
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => send(desk.port, `u${i}@race.example`)));
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 2, JSON.stringify(results.map((x) => x.status)));
    assert.equal((await listDeskTokens(pool, { domain: 'race.example' })).length, 2);
  });

  it('bounds connections: per address, per session time, messages per connection', async () => {
    const small = await start({ TOKEN_DESK_MAX_PER_IP: '1', TOKEN_DESK_SESSION_SECONDS: '1', TOKEN_DESK_MAILS_PER_CONNECTION: '1' });
    try {
      // a connection that idles past the session limit is told 421 and closed
      const held = dialog(small.port, ['EHLO slow.example'], { listenMs: 5000 });
      await new Promise((r) => setTimeout(r, 300));
      // a second connection from the same address meanwhile is refused
      const second = await dialog(small.port, []);
      assert.match(second.replies[0] ?? '', /^421 .*too many connections from/);
      const first = await held;
      assert.match(first.replies.at(-1) ?? '', /^421 .*session time limit reached/);
      assert.ok(first.closed);
      // one message per connection: the second MAIL FROM is refused
      const { replies } = await dialog(small.port, [
        'EHLO c.example',
        'MAIL FROM:<>',
        `RCPT TO:<${DESK}>`,
        'DATA',
        'From: x@y.example\r\nSubject: dsn\r\n\r\nx\r\n.',
        'MAIL FROM:<>',
      ]);
      assert.match(replies.at(-1) ?? '', /^421 .*at most 1 messages per connection/);
    } finally {
      await small.close();
    }
  });

  it('offers STARTTLS to senders with TOKEN_DESK_TLS_KEY/_CERT, and answers over it', async () => {
    const key = path.join(dir, 'smtp.key');
    const cert = path.join(dir, 'smtp.crt');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=desk.example.org'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const tlsDesk = await start({ TOKEN_DESK_TLS_KEY: key, TOKEN_DESK_TLS_CERT: cert });
    try {
      const { replies } = await dialog(tlsDesk.port, ['EHLO c.example']);
      assert.match(replies[1]!, /STARTTLS/);
      assert.doesNotMatch((await dialog(desk.port, ['EHLO c.example'])).replies[1]!, /STARTTLS/, 'offered without a certificate');
      const client = nodemailer.createTransport({ host: '127.0.0.1', port: tlsDesk.port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, logger: false });
      const before = sink.messages.length;
      try {
        const info = await client.sendMail({ envelope: { from: 'tls@secure.example', to: [DESK] }, from: 'tls@secure.example', to: DESK, subject: '', text: '' });
        assert.match(info.response, /^250 OK: a token was sent/);
      } finally {
        client.close();
      }
      await sink.waitFor(before + 1);
    } finally {
      await tlsDesk.close();
    }
  });
});

/** The desk as the real CLI process; resolves once it says it listens. */
function spawnDesk(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/stella.js'), 'token', 'desk'], { cwd: dir, env });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout!.resume();
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/token desk listening on/.test(stderr)) resolve({ child, stderr: () => stderr, exited });
    });
    void exited.then((code) => reject(new Error(`the desk exited (${code}) before listening:\n${stderr}`)));
  });
}

describe('stella token desk (the CLI as a process)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let sink: SmtpSink;

  before(async () => {
    db = await createTestDatabase('token-desk-cli');
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    sink = await startSmtpSink({ auth: { user: 'desk', pass: 'relay-secret' } });
  });

  after(async () => {
    await sink?.close();
    await pool?.end();
    await db?.drop();
  });

  it('a mail gets a token, a second one nothing; the record shows one; SIGTERM stops it', async () => {
    const port = await freePort();
    const env = childBaseEnv({ DATABASE_URL: db.url, LOG_LEVEL: 'warn', ...deskEnv(sink, { TOKEN_DESK_PORT: String(port) }) });
    const desk = await spawnDesk(env);
    try {
      const t0 = Math.floor(Date.now() / 1000);
      assert.match(await send(port, 'erin@cli.example.org'), /^250 OK: a token was sent/);
      const t1 = Math.ceil(Date.now() / 1000);
      const [m] = await sink.waitFor(1);
      const v = await verifyToken(tokenOf(m!), loadPublicTokenKey(pubFile));
      assert.equal(v.claims.sub, 'erin@cli.example.org');
      assert.equal(v.claims.tier, 500);
      assert.equal(v.claims.exp - v.claims.iat!, 14 * DAY);
      assert.ok(v.claims.iat! >= t0 && v.claims.iat! <= t1, `iat ${v.claims.iat} not within [${t0}, ${t1}]`);
      assert.equal((await refusal(send(port, 'erin@cli.example.org'))).code, 550);
      assert.equal(sink.messages.length, 1);
      const rows = await listDeskTokens(pool);
      assert.deepEqual(rows.map((r) => [r.address, r.state, r.jti]), [['erin@cli.example.org', 'sent', v.claims.jti]]);
    } finally {
      desk.child.kill('SIGTERM');
    }
    assert.equal(await desk.exited, 0, desk.stderr());
    assert.match(desk.stderr(), /token desk stopping \(SIGTERM\)/);
  });

  it('refuses to start with STELLA_AIRGAP=true', async () => {
    const r = await runStella(['token', 'desk'], { cwd: dir, env: childBaseEnv({ DATABASE_URL: db.url, STELLA_AIRGAP: 'true', ...deskEnv(sink) }) });
    assert.equal(r.code, 56, r.stderr);
    assert.match(r.stderr, /error\[AIRGAP_VIOLATION\]: the token desk .*connected side/);
  });

  it('--check: a missing address, an unusable relay, a bad key each stop it with their code', async () => {
    const base = childBaseEnv({ DATABASE_URL: db.url, ...deskEnv(sink) });
    const ok = await runStella(['token', 'desk', '--check'], { cwd: dir, env: base });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /relay 127\.0\.0\.1:\d+ OK/);
    const noAddress = await runStella(['token', 'desk', '--check'], { cwd: dir, env: { ...base, TOKEN_DESK_ADDRESS: '' } });
    assert.equal(noAddress.code, 90, noAddress.stderr);
    const wrongPassword = path.join(dir, 'wrong-password');
    fs.writeFileSync(wrongPassword, 'nope\n');
    const badRelay = await runStella(['token', 'desk', '--check'], { cwd: dir, env: { ...base, TOKEN_DESK_RELAY_PASSWORD_FILE: wrongPassword } });
    assert.equal(badRelay.code, 92, badRelay.stderr);
    assert.match(badRelay.stderr, /error\[TOKEN_DESK_RELAY_FAILED\].*TOKEN_DESK_RELAY_USER/);
    // starttls (the default) is required: a relay that does not offer it is not used in clear text
    const noTls = await runStella(['token', 'desk', '--check'], { cwd: dir, env: { ...base, TOKEN_DESK_RELAY_TLS: 'starttls' } });
    assert.equal(noTls.code, 92, noTls.stderr);
    const badKey = await runStella(['token', 'desk', '--check'], { cwd: dir, env: { ...base, TOKEN_DESK_KEY: pubFile } });
    assert.equal(badKey.code, 13, badKey.stderr);
  });
});
