/**
 * The relay (smarthost) the desk's replies go out through, with nodemailer:
 * TLS as configured (`starttls`: required before anything is sent, the
 * default; `tls`: implicit TLS, port 465; `none`: a relay on this host or a
 * trusted network), the account's password read from a file (at most 64 KiB,
 * its first line), every connection and command bounded by the relay timeout.
 * One connection per reply (no pool): a desk sends a few mails a minute.
 */
import fs from 'node:fs';
import nodemailer from 'nodemailer';
import type { TokenDeskRelay } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import type { ReplyMessage } from './reply.ts';

export interface Relay {
  /** connects, says EHLO, authenticates, quits: TOKEN_DESK_RELAY_FAILED when it cannot */
  verify(): Promise<void>;
  /** hands one reply to the relay; the error is nodemailer's (responseCode, code) */
  send(message: ReplyMessage): Promise<void>;
  close(): void;
}

const MAX_PASSWORD_FILE = 64 * 1024;

function readPassword(file: string): string {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_PASSWORD_FILE) throw new Error(`larger than ${MAX_PASSWORD_FILE} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OukError('TOKEN_DESK_NOT_CONFIGURED', `cannot read TOKEN_DESK_RELAY_PASSWORD_FILE ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the file holding the relay account's password`, { cause: e });
  }
  const password = text.split(/\r?\n/)[0]!;
  if (!password) throw new OukError('TOKEN_DESK_NOT_CONFIGURED', `TOKEN_DESK_RELAY_PASSWORD_FILE ${file} is empty: its first line is the relay account's password`);
  return password;
}

/** `clientName`: the name the desk gives in its EHLO to the relay. */
export function openRelay(r: TokenDeskRelay, clientName: string): Relay {
  const ms = r.timeoutSeconds * 1000;
  const transport = nodemailer.createTransport({
    host: r.host,
    port: r.port,
    secure: r.security === 'tls',
    requireTLS: r.security === 'starttls',
    ignoreTLS: r.security === 'none',
    name: clientName,
    ...(r.user && r.passwordFile ? { auth: { user: r.user, pass: readPassword(r.passwordFile) } } : {}),
    connectionTimeout: ms,
    greetingTimeout: ms,
    socketTimeout: ms,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  });
  const where = `${r.host}:${r.port} (${r.security})`;
  return {
    async verify() {
      try {
        await transport.verify();
      } catch (e) {
        const why = (e as Error).message;
        const hint = /auth|535|534|530/i.test(why) ? 'check TOKEN_DESK_RELAY_USER and the password file' : 'check TOKEN_DESK_RELAY_HOST, _PORT and _TLS, and that the relay is up';
        throw new OukError('TOKEN_DESK_RELAY_FAILED', `the relay ${where} cannot be used (${why}): ${hint}`, { cause: e });
      }
    },
    async send(m) {
      await transport.sendMail({
        envelope: m.envelope,
        from: m.from,
        to: m.to,
        subject: m.subject,
        date: m.date,
        text: m.text,
        headers: m.headers,
        ...(m.inReplyTo ? { inReplyTo: m.inReplyTo, references: m.references } : {}),
        disableFileAccess: true,
        disableUrlAccess: true,
      });
    },
    close() {
      transport.close();
    },
  };
}
