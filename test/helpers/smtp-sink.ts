/**
 * A real SMTP server for tests (smtp-server on a free loopback port): the
 * relay the token desk hands its replies to. It keeps every message it takes
 * (envelope, raw text, parsed), can require an account (AUTH PLAIN/LOGIN over
 * plain text, as a relay on the same host may), and can refuse chosen
 * recipients with a chosen reply, to play a relay that is down or says no.
 *
 * `dialog` is the other end: a line-by-line SMTP client on a raw socket, for
 * checking the exact reply codes a server gives.
 */
import net from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface SunkMessage {
  from: string;
  to: string[];
  raw: string;
  parsed: ParsedMail;
  user: string | undefined;
}

export interface SmtpSink {
  port: number;
  messages: SunkMessage[];
  /** recipient (lower case) -> the reply RCPT TO gets instead of 250 */
  refuse: Map<string, { code: number; text: string }>;
  /** resolves when `n` messages have arrived (rejects after `timeoutMs`) */
  waitFor(n: number, timeoutMs?: number): Promise<SunkMessage[]>;
  close(): Promise<void>;
}

export async function startSmtpSink(opts: { auth?: { user: string; pass: string } } = {}): Promise<SmtpSink> {
  const messages: SunkMessage[] = [];
  const refuse = new Map<string, { code: number; text: string }>();
  const waiters: Array<() => void> = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    disabledCommands: opts.auth ? ['STARTTLS'] : ['AUTH', 'STARTTLS'],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
      cb(Object.assign(new Error('invalid credentials'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      const r = refuse.get(address.address.toLowerCase());
      if (r) return cb(Object.assign(new Error(r.text), { responseCode: r.code }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then(
          (parsed) => {
            messages.push({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              raw,
              parsed,
              user: session.user as string | undefined,
            });
            for (const w of waiters.splice(0)) w();
            cb();
          },
          (e: Error) => cb(e),
        );
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as net.AddressInfo).port;
  return {
    port,
    messages,
    refuse,
    async waitFor(n, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`the sink has ${messages.length} messages, waited for ${n}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return messages.slice(0, n);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Talks SMTP line by line: reads the greeting, then for each line sends it and
 * reads one complete reply (multi-line replies joined). A message after DATA
 * is one "line" holding CRLFs and ending in "." (one reply). Returns the
 * replies, the greeting first; stops early when the server closes the
 * connection. With `listenMs`, it then waits up to that long for what the
 * server says unasked (a time limit's 421) or for it to close.
 */
export async function dialog(port: number, lines: string[], opts: { timeoutMs?: number; listenMs?: number } = {}): Promise<{ replies: string[]; closed: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  const replies: string[] = [];
  let buffer = '';
  let current: string[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  socket.on('data', (d: string) => {
    buffer += d;
    let i: number;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      current.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        replies.push(current.join('\n'));
        current = [];
      }
    }
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  socket.on('error', () => undefined);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const waitReplies = async (n: number, within = timeoutMs, quiet = false): Promise<void> => {
    const deadline = Date.now() + within;
    while (replies.length < n && !closed) {
      const left = deadline - Date.now();
      if (left <= 0) {
        if (quiet) return;
        throw new Error(`no SMTP reply within ${within} ms; so far: ${JSON.stringify(replies)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          wake = null;
          resolve();
        };
      });
    }
  };
  try {
    await waitReplies(1);
    for (const line of lines) {
      if (closed) break;
      socket.write(`${line}\r\n`);
      await waitReplies(replies.length + 1);
    }
    if (opts.listenMs) {
      await waitReplies(replies.length + 1, opts.listenMs, true);
      if (!closed) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    socket.destroy();
  }
  return { replies, closed };
}
