/**
 * The free-token e-mail desk's I/O: SMTP in (smtp-server), the record in
 * PostgreSQL (infra/token-desk-record.ts), the reply out through the relay
 * (relay.ts). What to answer is decided by the pure modules beside it
 * (address.ts, screen.ts, limits.ts, reply.ts).
 *
 * One mail, end to end:
 *   MAIL FROM   `<>` or one sane address (address.ts), else 553
 *   RCPT TO     the desk's own address only, else 550 (it relays nothing); one recipient
 *   DATA        at most TOKEN_DESK_MAX_BYTES (SIZE advertised; 552 above)
 *   screen      bounce, auto-reply, list mail: accepted (250) and dropped, no reply
 *   limits      counted from the record under the domain's lock; over: 550 with the
 *               date to write again, and no mail is sent (limits.ts says why)
 *   record      the token's row written (`sending`) and committed before the reply leaves
 *   relay       took it: row `sent`, 250; refused or down: row `failed` (not counted),
 *               451 so the sender's server tries again later (550 when the relay
 *               refused the address for good)
 *
 * Connections are bounded: TOKEN_DESK_MAX_CLIENTS at once (421 above),
 * TOKEN_DESK_MAX_PER_IP from one address, idle ones closed after
 * TOKEN_DESK_IDLE_SECONDS, every one after TOKEN_DESK_SESSION_SECONDS, at most
 * TOKEN_DESK_MAILS_PER_CONNECTION messages each. No AUTH; STARTTLS only with
 * a configured certificate; no reverse DNS of clients.
 *
 * The desk is on the connected side: with STELLA_AIRGAP=true it refuses to
 * start (AIRGAP_VIOLATION).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { simpleParser, parseAddressHeader, type ParsedMail, type EmailAddress } from 'mailparser';
import type pg from 'pg';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { markFailed, markSent, recentIssues, reserve, withDomainLock } from '../../infra/token-desk-record.ts';
import type { TokenDeskSettings } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { issueToken, loadPrivateTokenKey } from '../../lib/tokens.ts';
import { parseSender, type SenderAddress } from './address.ts';
import { decideLimits, domainLimit, windowStart } from './limits.ts';
import { openRelay, type Relay } from './relay.ts';
import { composeReply, saneMessageId } from './reply.ts';
import { screen, type InboundMail, type MailHeader } from './screen.ts';

export interface TokenDeskDeps {
  pool: pg.Pool;
  logger: Logger;
  /** STELLA_JWT_ISSUER: the tokens' `iss` */
  issuer: string;
  /** STELLA_KEY_PASSWORD, for an encrypted TOKEN_DESK_KEY */
  keyPassword?: string | undefined;
  /** STELLA_AIRGAP: the desk refuses to start when true */
  airgap: boolean;
  /** the clock (tests) */
  now?: () => Date;
}

export interface TokenDesk {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** An SMTP reply for the client: `code` and one line of text. */
function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

/** Everything the desk needs, checked before it listens. */
export interface PreparedDesk {
  settings: TokenDeskSettings;
  keyPem: string;
  relay: Relay;
  tls: { key: Buffer; cert: Buffer } | undefined;
}

function readFileFor(what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new OukError('TOKEN_DESK_NOT_CONFIGURED', `cannot read ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

/** AIRGAP_VIOLATION when STELLA_AIRGAP=true: the desk belongs on the connected side. */
export function refuseAirgap(airgap: boolean): void {
  if (!airgap) return;
  throw new OukError(
    'AIRGAP_VIOLATION',
    'the token desk takes mail from the Internet and sends replies through a relay, and STELLA_AIRGAP=true on this host: it belongs on the publisher\'s connected side. Run it there (STELLA_AIRGAP unset), never on an air-gapped site',
  );
}

/**
 * Every check before the desk listens: air gap, its own address, the signing
 * key (KEY_INVALID), the STARTTLS certificate, the relay (connected and
 * authenticated: TOKEN_DESK_RELAY_FAILED). `stella token desk --check` stops here.
 */
export async function prepareTokenDesk(settings: TokenDeskSettings, deps: Pick<TokenDeskDeps, 'airgap' | 'keyPassword'>): Promise<PreparedDesk> {
  refuseAirgap(deps.airgap);
  const own = parseSender(settings.address);
  if (!own.ok) throw new OukError('TOKEN_DESK_NOT_CONFIGURED', `TOKEN_DESK_ADDRESS=${settings.address}: ${own.why}`);
  const keyPem = readFileFor('TOKEN_DESK_KEY', settings.keyPath).toString('utf8');
  loadPrivateTokenKey(keyPem, deps.keyPassword); // KEY_INVALID now, not at the first mail
  const tls = settings.tls ? { key: readFileFor('TOKEN_DESK_TLS_KEY', settings.tls.keyPath), cert: readFileFor('TOKEN_DESK_TLS_CERT', settings.tls.certPath) } : undefined;
  const relay = openRelay(settings.relay, settings.name);
  try {
    await relay.verify();
  } catch (e) {
    relay.close();
    throw e;
  }
  return { settings, keyPem, relay, tls };
}

/** Header lines as the screen reads them: lower-case names, unfolded values. */
function headersOf(parsed: ParsedMail): MailHeader[] {
  return parsed.headerLines.map(({ key, line }) => {
    const colon = line.indexOf(':');
    return { name: key.toLowerCase(), value: (colon >= 0 ? line.slice(colon + 1) : '').replace(/\r?\n[ \t]*/g, ' ').trim() };
  });
}

function inboundMail(envelopeFrom: string, parsed: ParsedMail): InboundMail {
  const headers = headersOf(parsed);
  const fromValues = headers.filter((h) => h.name === 'from').map((h) => h.value);
  const entries: EmailAddress[] = fromValues.length ? parseAddressHeader(fromValues, { decodePunycode: false }).value : [];
  const fromAddresses: string[] = [];
  let fromHasGroup = false;
  for (const e of entries) {
    if (e.group) {
      fromHasGroup = true;
      for (const m of e.group) if (m.address) fromAddresses.push(m.address);
    } else if (e.address) fromAddresses.push(e.address);
  }
  return { envelopeFrom, headers, fromAddresses, fromHasGroup };
}

const PARSE_OPTIONS = {
  maxHeadSize: 64 * 1024,
  maxChildNodes: 64,
  skipHtmlToText: true,
  skipTextToHtml: true,
  skipImageLinks: true,
  skipTextLinks: true,
  checksumAlgo: false as const,
  ignoreEmbedded: true,
};

/** Starts the desk: prepareTokenDesk's checks, then listens. */
export async function startTokenDesk(settings: TokenDeskSettings, deps: TokenDeskDeps): Promise<TokenDesk> {
  const prepared = await prepareTokenDesk(settings, deps);
  const { relay, keyPem } = prepared;
  const clock = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'token-desk' });
  const perIp = new Map<string, number>();
  /** per session: its deadline timer, whether a message is being handled, whether it overran */
  const sessions = new Map<string, { timer: NodeJS.Timeout; busy: boolean; expired: boolean }>();

  // eslint-disable-next-line prefer-const
  let server: SMTPServer;

  const closeSession = (id: string, why: string): void => {
    for (const c of server.connections) {
      if (c.id === id) {
        c.send(421, `${settings.name} ${why}, closing the connection`);
        c.close();
      }
    }
  };

  /** The token for one screened sender: limits, record, relay. Resolves with the SMTP reply text, or throws an smtpError. */
  async function answer(sender: SenderAddress, parsed: ParsedMail, session: SMTPServerSession): Promise<string> {
    const now = clock();
    const jti = randomUUID();
    const { token, claims } = await issueToken({
      privateKey: keyPem,
      passphrase: deps.keyPassword,
      sub: sender.address,
      tier: settings.tier,
      ttl: `${settings.ttlSeconds}s`,
      issuer: deps.issuer,
      jti,
      now,
    });
    const issuedAt = new Date(claims.iat! * 1000);
    const expiresAt = new Date(claims.exp * 1000);
    const decision = await withDomainLock(deps.pool, sender.domain, async (client) => {
      const since = windowStart(settings, now);
      const addressIssues = await recentIssues(client, 'address', sender.key, since, settings.perAddress);
      const domainIssues = await recentIssues(client, 'domain', sender.domain, since, domainLimit(settings, sender.domain));
      const d = decideLimits(settings, { key: sender.key, domain: sender.domain, addressIssues, domainIssues });
      if (d.issue) {
        await reserve(client, {
          jti,
          issuedAt,
          address: sender.key,
          domain: sender.domain,
          sentTo: sender.address,
          tier: settings.tier,
          expiresAt,
          requestMessageId: saneMessageId(parsed.messageId) ?? null,
          clientIp: session.remoteAddress || null,
        });
      }
      return d;
    });
    if (!decision.issue) {
      log.info({ session: session.id, sender: sender.address, decision: 'limited', scope: decision.scope, limit: decision.limit, freeAt: decision.freeAt }, 'no token: limit reached');
      throw smtpError(550, decision.message);
    }
    const reply = composeReply({
      deskAddress: settings.address,
      to: sender.address,
      token,
      jti,
      tier: settings.tier,
      issuedAt,
      expiresAt,
      periodSeconds: settings.periodSeconds,
      perAddress: settings.perAddress,
      requestMessageId: parsed.messageId,
      returnPath: settings.returnPath,
    });
    try {
      await relay.send(reply);
    } catch (e) {
      const err = e as Error & { responseCode?: number; code?: string };
      await markFailed(deps.pool, jti, clock(), err.message).catch((dbErr: unknown) => log.error({ err: dbErr, jti }, 'could not mark a refused reply failed: it stays counted'));
      const permanent = err.code === 'EENVELOPE' && (err.responseCode ?? 0) >= 500;
      log.warn({ session: session.id, sender: sender.address, jti, decision: 'relay-failed', relayCode: err.responseCode, err: err.message }, 'the relay did not take the reply');
      throw permanent
        ? smtpError(550, `our relay refused to deliver to ${sender.address} (${String(err.responseCode)}): no token was sent`)
        : smtpError(451, 'the reply with your token could not be sent just now: your mail server will try again later');
    }
    await markSent(deps.pool, jti, clock()).catch((dbErr: unknown) => log.error({ err: dbErr, jti }, 'the reply left but its record could not be marked sent (it stays "sending", which counts)'));
    log.info({ session: session.id, sender: sender.address, jti, tier: settings.tier, expiresAt, decision: 'issued' }, 'token sent');
    return `OK: a token was sent to ${sender.address}`;
  }

  async function handle(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    let parsed: ParsedMail;
    try {
      parsed = await simpleParser(raw, PARSE_OPTIONS);
    } catch (e) {
      log.info({ session: session.id, err: (e as Error).message, decision: 'unparsable' }, 'message refused: not a readable mail');
      throw smtpError(554, 'the message could not be read as an Internet mail message');
    }
    const verdict = screen(inboundMail(envelopeFrom, parsed), settings.address);
    if (!verdict.answer) {
      log.info({ session: session.id, envelopeFrom, decision: 'ignored', reason: verdict.reason, detail: verdict.detail }, 'no answer');
      return `OK: received; no reply is sent (${verdict.reason})`;
    }
    try {
      return await answer(verdict.sender, parsed, session);
    } catch (e) {
      if ((e as { responseCode?: number }).responseCode) throw e;
      log.error({ session: session.id, err: e }, 'could not answer');
      throw smtpError(451, 'a local problem stopped the desk from answering: your mail server will try again later');
    }
  }

  server = new SMTPServer({
    name: settings.name,
    banner: `Stella OUK token desk: write to ${settings.address} for a scan token`,
    logger: false,
    disableReverseLookup: true,
    disabledCommands: prepared.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(prepared.tls ? { key: prepared.tls.key, cert: prepared.tls.cert } : {}),
    hideSMTPUTF8: true,
    size: settings.maxBytes,
    rejectOversized: true,
    maxRecipients: 1,
    maxCommandLength: 2048,
    maxClients: settings.maxClients,
    socketTimeout: settings.idleSeconds * 1000,
    closeTimeout: (settings.relay.timeoutSeconds + 5) * 1000,

    onConnect(session, callback) {
      const ip = session.remoteAddress;
      const n = (perIp.get(ip) ?? 0) + 1;
      perIp.set(ip, n);
      const timer = setTimeout(() => {
        const s = sessions.get(session.id);
        if (!s) return;
        if (s.busy) s.expired = true;
        else closeSession(session.id, 'session time limit reached');
      }, settings.sessionSeconds * 1000);
      timer.unref();
      sessions.set(session.id, { timer, busy: false, expired: false });
      if (n > settings.maxPerIp) return callback(smtpError(421, `${settings.name} too many connections from ${ip}, try again later`));
      callback();
    },

    onClose(session) {
      const s = sessions.get(session.id);
      if (!s) return;
      clearTimeout(s.timer);
      sessions.delete(session.id);
      const n = (perIp.get(session.remoteAddress) ?? 1) - 1;
      if (n <= 0) perIp.delete(session.remoteAddress);
      else perIp.set(session.remoteAddress, n);
    },

    onMailFrom(address, session, callback) {
      if (session.transaction > settings.mailsPerConnection) {
        callback(smtpError(421, `${settings.name} at most ${settings.mailsPerConnection} messages per connection, closing`));
        setImmediate(() => closeSession(session.id, 'message limit reached'));
        return;
      }
      if (address.address === '') return callback(); // the null sender: taken, never answered
      const s = parseSender(address.address);
      if (!s.ok) return callback(smtpError(553, `sender address rejected: ${s.why}`));
      callback();
    },

    onRcptTo(address, _session, callback) {
      if (address.address.toLowerCase() !== settings.address) {
        return callback(smtpError(550, `no such mailbox here: this server takes mail for ${settings.address} only, and relays nothing`));
      }
      callback();
    },

    onData(stream: SMTPServerDataStream, session, callback) {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= settings.maxBytes) chunks.push(c);
      });
      stream.on('error', () => undefined);
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          log.info({ session: session.id, bytes: size, decision: 'oversize' }, 'message refused: larger than TOKEN_DESK_MAX_BYTES');
          return callback(); // rejectOversized answers 552
        }
        const s = sessions.get(session.id);
        if (s) s.busy = true;
        const done = (err: Error | null, text?: string): void => {
          if (s) s.busy = false;
          if (err) callback(err);
          else callback(null, text);
          if (s?.expired) setImmediate(() => closeSession(session.id, 'session time limit reached'));
        };
        handle(Buffer.concat(chunks), session).then(
          (text) => done(null, text),
          (e: Error) => done(e),
        );
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      relay.close();
      reject(new OukError('TOKEN_DESK_LISTEN_FAILED', `cannot listen on ${settings.listenHost}:${settings.listenPort} (${e.code ?? e.message}): choose a free TOKEN_DESK_PORT, or one this user may open (ports below 1024 need privileges)`, { cause: e }));
    };
    server.server.once('error', onError);
    server.listen(settings.listenPort, settings.listenHost, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (e) => log.warn({ err: e }, 'SMTP connection error'));
  const addr = server.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : settings.listenPort;
  log.info({ host: settings.listenHost, port, address: settings.address, relay: `${settings.relay.host}:${settings.relay.port}`, tier: settings.tier, ttlSeconds: settings.ttlSeconds }, 'token desk listening');

  return {
    host: settings.listenHost,
    port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions.values()) clearTimeout(s.timer);
      relay.close();
    },
  };
}
