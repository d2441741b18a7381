/**
 * The token desk's pure decisions (publisher/token-desk/): which sender
 * addresses are taken, which mails are answered (RFC 3834), the limits and
 * when they free, the reply's headers, and the desk's settings. No sockets:
 * test/token-desk.test.ts drives the same through SMTP.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenDeskSettings } from '../lib/config.ts';
import { isOukError } from '../lib/errors.ts';
import { parseSender } from '../publisher/token-desk/address.ts';
import { decideLimits, describePeriod, windowStart, type LimitSettings } from '../publisher/token-desk/limits.ts';
import { composeReply, saneMessageId } from '../publisher/token-desk/reply.ts';
import { screen, type InboundMail } from '../publisher/token-desk/screen.ts';

const DESK = 'token@desk.example.org';

function mail(envelopeFrom: string, headers: Array<[string, string]> = [], from: string[] = [envelopeFrom]): InboundMail {
  return {
    envelopeFrom,
    headers: [...(from.length ? [['from', from.join(', ')] as [string, string]] : []), ...headers].map(([name, value]) => ({ name: name.toLowerCase(), value })),
    fromAddresses: from,
    fromHasGroup: false,
  };
}

describe('sender addresses', () => {
  it('takes a plain mailbox on a public domain, lower-cased, with the +tag left out of the limit key', () => {
    const r = parseSender('Alice.B+scans@Mail.Example.COM');
    assert.ok(r.ok);
    assert.deepEqual(r.sender, { address: 'alice.b+scans@mail.example.com', local: 'alice.b+scans', domain: 'mail.example.com', key: 'alice.b@mail.example.com' });
    assert.ok(parseSender("o'brien@xn--bcher-kva.example").ok);
  });

  it('refuses what an MTA would interpret, and domains that are not public', () => {
    for (const bad of [
      'alice',
      '@example.com',
      'alice@',
      'alice@localhost',
      'alice@example',
      'alice@[192.0.2.1]',
      'alice@example.com.',
      'alice@-bad.example.com',
      'alice@exa_mple.com',
      'alice@host.local',
      'alice@printer.internal',
      'alice@x.onion',
      'alice@1.2.3.4',
      '"alice bob"@example.com',
      'alice..b@example.com',
      '.alice@example.com',
      'a%b@example.com',
      'a!b@example.com',
      'alice@exämple.com',
      'alice bob@example.com',
      'alice@example.com\r\nRCPT TO:<x@y.com>',
      `${'a'.repeat(65)}@example.com`,
      `a@${'b'.repeat(64)}.com`,
      `a@${'abcdefghij.'.repeat(24)}com`,
    ]) {
      const r = parseSender(bad);
      assert.equal(r.ok, false, `${JSON.stringify(bad)} was taken`);
    }
  });
});

describe('which mails are answered (RFC 3834)', () => {
  it('answers a person, to the envelope sender, whatever Reply-To says', () => {
    const r = screen(mail('alice@example.com', [['Reply-To', 'victim@other.example'], ['Auto-Submitted', 'no']]), DESK);
    assert.ok(r.answer);
    assert.equal(r.sender.address, 'alice@example.com');
  });

  it('never answers bounces, auto-replies, list mail, robots or itself', () => {
    const cases: Array<[InboundMail, string]> = [
      [mail('', [], ['mailer-daemon@example.com']), 'bounce'],
      [mail('MAILER-DAEMON@example.com'), 'system-sender'],
      [mail('postmaster@example.com'), 'system-sender'],
      [mail('owner-users@lists.example.com'), 'system-sender'],
      [mail('users-request@lists.example.com'), 'system-sender'],
      [mail('users-bounces@lists.example.com'), 'system-sender'],
      [mail('no-reply@shop.example.com'), 'system-sender'],
      [mail('noreply@shop.example.com'), 'system-sender'],
      [mail('token@desk.example.org'), 'loop'],
      [mail('alice@example.com', [['Auto-Submitted', 'auto-replied']]), 'auto-submitted'],
      [mail('alice@example.com', [['Auto-Submitted', 'auto-generated; owner-email="x@y.com"']]), 'auto-submitted'],
      [mail('alice@example.com', [['Auto-Submitted', 'Auto-Notified (vacation)']]), 'auto-submitted'],
      [mail('alice@example.com', [['X-Auto-Response-Suppress', 'All']]), 'auto-response-suppress'],
      [mail('alice@example.com', [['X-Auto-Response-Suppress', 'DR, OOF']]), 'auto-response-suppress'],
      [mail('alice@example.com', [['X-Autoreply', 'yes']]), 'auto-response-suppress'],
      [mail('alice@example.com', [['Precedence', 'bulk']]), 'precedence'],
      [mail('alice@example.com', [['Precedence', 'JUNK']]), 'precedence'],
      [mail('alice@example.com', [['Precedence', 'list']]), 'precedence'],
      [mail('alice@example.com', [['List-Id', '<users.lists.example.com>']]), 'mailing-list'],
      [mail('alice@example.com', [['List-Unsubscribe', '<mailto:leave@lists.example.com>']]), 'mailing-list'],
      [mail('alice@example.com', [['Content-Type', 'multipart/report; report-type=delivery-status; boundary="b"']]), 'delivery-report'],
      [mail('alice@example.com', [['X-Loop', 'token@desk.example.org']]), 'loop'],
      [mail('alice@example.com', [], []), 'bad-from'],
      [mail('alice@example.com', [], ['alice@example.com', 'bob@example.com']), 'bad-from'],
      [mail('alice@example.com', [['From', 'alice@example.com']]), 'bad-from'],
      [mail('alice@example.com', [], ['token@desk.example.org']), 'loop'],
      [mail('alice@localhost'), 'bad-sender'],
    ];
    for (const [m, reason] of cases) {
      const r = screen(m, DESK);
      assert.equal(r.answer, false, `answered: ${JSON.stringify(m)}`);
      if (!r.answer) assert.equal(r.reason, reason, `${JSON.stringify(m)}: ${r.detail}`);
    }
  });

  it('answers when X-Auto-Response-Suppress only declines receipts', () => {
    assert.ok(screen(mail('alice@example.com', [['X-Auto-Response-Suppress', 'DR, RN, NRN']]), DESK).answer);
  });

  it('a group in From: is not one address', () => {
    const m = mail('alice@example.com');
    m.fromHasGroup = true;
    const r = screen(m, DESK);
    assert.ok(!r.answer && r.reason === 'bad-from');
  });
});

describe('limits', () => {
  const s: LimitSettings = { periodSeconds: 30 * 86400, perAddress: 1, perDomain: 2, domainLimits: { 'big.example': 3 } };
  const now = new Date('2031-05-04T10:00:00Z');
  const ago = (days: number): Date => new Date(now.getTime() - days * 86400_000);

  it('issues under both limits', () => {
    assert.deepEqual(decideLimits(s, { key: 'a@x.example', domain: 'x.example', addressIssues: [], domainIssues: [ago(3)] }), { issue: true });
  });

  it('over the address limit: frees when the counted issue leaves the window', () => {
    const d = decideLimits(s, { key: 'a@x.example', domain: 'x.example', addressIssues: [ago(10)], domainIssues: [ago(10)] });
    assert.ok(!d.issue);
    assert.equal(d.scope, 'address');
    assert.equal(d.freeAt.toISOString(), '2031-05-24T10:00:00.000Z');
    assert.match(d.message, /already sent to a@x\.example .*one token per address every 30 days: write again after 2031-05-24T10:00:00\.000Z/);
  });

  it('over the domain limit (the oldest of the counted issues frees it); a domain of its own limit', () => {
    const d = decideLimits(s, { key: 'c@x.example', domain: 'x.example', addressIssues: [], domainIssues: [ago(1), ago(5)] });
    assert.ok(!d.issue && d.scope === 'domain' && d.limit === 2);
    assert.equal(d.freeAt.toISOString(), ago(5 - 30).toISOString());
    assert.match(d.message, /2 tokens to addresses at x\.example in the last 30 days/);
    assert.ok(decideLimits(s, { key: 'c@big.example', domain: 'big.example', addressIssues: [], domainIssues: [ago(1), ago(5)] }).issue);
    assert.ok(!decideLimits(s, { key: 'c@big.example', domain: 'big.example', addressIssues: [], domainIssues: [ago(1), ago(2), ago(5)] }).issue);
  });

  it('the window and the period in words', () => {
    assert.equal(windowStart(s, now).toISOString(), '2031-04-04T10:00:00.000Z');
    assert.equal(describePeriod(86400), '1 day');
    assert.equal(describePeriod(7200), '2 hours');
    assert.equal(describePeriod(90), '90 seconds');
  });
});

describe('the reply', () => {
  const base = {
    deskAddress: DESK,
    to: 'alice@example.com',
    token: 'aaa.bbb.ccc',
    jti: 'j-1',
    tier: 333,
    issuedAt: new Date('2031-05-04T10:00:00Z'),
    expiresAt: new Date('2031-06-03T10:00:00Z'),
    periodSeconds: 30 * 86400,
    perAddress: 1,
    returnPath: '',
  };

  it('is an RFC 3834 auto-reply from the null sender to the envelope sender, threaded to the request', () => {
    const r = composeReply({ ...base, requestMessageId: '<req-1@example.com>' });
    assert.deepEqual(r.envelope, { from: '', to: ['alice@example.com'] });
    assert.equal(r.headers['Auto-Submitted'], 'auto-replied');
    assert.equal(r.headers['X-Auto-Response-Suppress'], 'All');
    assert.equal(r.inReplyTo, '<req-1@example.com>');
    assert.equal(r.references, '<req-1@example.com>');
    assert.match(r.text, /\r\naaa\.bbb\.ccc\r\n/);
    assert.match(r.text, /333 scans a day, valid until 2031-06-03T10:00:00\.000Z/);
  });

  it('repeats only a sane Message-ID', () => {
    for (const bad of ['<a b@c>', '<a@b>\r\nBcc: x@y.com', 'no-brackets@x', '<a<b@c>', `<${'x'.repeat(300)}@y>`]) {
      assert.equal(saneMessageId(bad), undefined, bad);
      assert.equal(composeReply({ ...base, requestMessageId: bad }).inReplyTo, undefined);
    }
    assert.equal(saneMessageId(' <ok.1@example.com> '), '<ok.1@example.com>');
  });
});

describe('settings (lib/config.ts tokenDeskSettings)', () => {
  const env = { TOKEN_DESK_ADDRESS: 'Token@Desk.Example.org', TOKEN_DESK_KEY: '/k.pem', TOKEN_DESK_RELAY_HOST: 'smtp.example.org' };

  it('defaults', () => {
    const s = tokenDeskSettings(env);
    assert.equal(s.address, 'token@desk.example.org');
    assert.equal(s.name, 'desk.example.org');
    assert.deepEqual([s.listenHost, s.listenPort, s.tier, s.ttlSeconds, s.periodSeconds, s.perAddress, s.perDomain], ['0.0.0.0', 2525, 333, 30 * 86400, 30 * 86400, 1, 20]);
    assert.deepEqual(s.relay, { host: 'smtp.example.org', port: 587, security: 'starttls', user: undefined, passwordFile: undefined, timeoutSeconds: 30 });
    assert.equal(s.returnPath, '');
    assert.equal(tokenDeskSettings({ ...env, QUOTA_TOKEN: '500' }).tier, 500);
    assert.equal(tokenDeskSettings({ ...env, TOKEN_DESK_RELAY_TLS: 'tls' }).relay.port, 465);
    assert.deepEqual(tokenDeskSettings({ ...env, TOKEN_DESK_DOMAIN_LIMITS: 'Gmail.com=2000, example.net=5' }).domainLimits, { 'gmail.com': 2000, 'example.net': 5 });
  });

  it('refuses what is missing or malformed, naming the variable', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ...env, TOKEN_DESK_ADDRESS: '' }, /TOKEN_DESK_ADDRESS is not set/],
      [{ ...env, TOKEN_DESK_KEY: '' }, /TOKEN_DESK_KEY is not set/],
      [{ ...env, TOKEN_DESK_RELAY_HOST: '' }, /TOKEN_DESK_RELAY_HOST is not set/],
      [{ ...env, TOKEN_DESK_ADDRESS: 'no-at-sign' }, /TOKEN_DESK_ADDRESS=no-at-sign/],
      [{ ...env, TOKEN_DESK_TTL: 'soon' }, /TOKEN_DESK_TTL=soon is not a duration/],
      [{ ...env, TOKEN_DESK_TTL: '400d' }, /longer than 366 days/],
      [{ ...env, TOKEN_DESK_PERIOD: '0d' }, /TOKEN_DESK_PERIOD=0d/],
      [{ ...env, TOKEN_DESK_PER_ADDRESS: '0' }, /TOKEN_DESK_PER_ADDRESS=0/],
      [{ ...env, TOKEN_DESK_TIER: '1.5' }, /TOKEN_DESK_TIER=1\.5/],
      [{ ...env, TOKEN_DESK_PORT: '70000' }, /TOKEN_DESK_PORT=70000/],
      [{ ...env, TOKEN_DESK_RELAY_TLS: 'maybe' }, /TOKEN_DESK_RELAY_TLS=maybe/],
      [{ ...env, TOKEN_DESK_RELAY_USER: 'desk' }, /TOKEN_DESK_RELAY_PASSWORD_FILE/],
      [{ ...env, TOKEN_DESK_TLS_KEY: '/k' }, /TOKEN_DESK_TLS_CERT/],
      [{ ...env, TOKEN_DESK_DOMAIN_LIMITS: 'gmail.com:5' }, /TOKEN_DESK_DOMAIN_LIMITS/],
      [{ ...env, TOKEN_DESK_RETURN_PATH: 'bounces' }, /TOKEN_DESK_RETURN_PATH=bounces/],
    ];
    for (const [e, re] of cases) {
      assert.throws(
        () => tokenDeskSettings(e),
        (err: unknown) => isOukError(err) && err.code === 'TOKEN_DESK_NOT_CONFIGURED' && re.test(err.message),
        JSON.stringify(e),
      );
    }
  });
});
