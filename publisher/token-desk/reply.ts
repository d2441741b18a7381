/**
 * The desk's reply: an RFC 3834 automatic response carrying the token.
 *
 * - Envelope: from the null sender `<>` (RFC 3834 §3.3: a response must not
 *   draw responses or bounces; TOKEN_DESK_RETURN_PATH names an address
 *   instead, for relays that refuse null senders), to the request's envelope
 *   sender only (screen.ts: never Reply-To or From).
 * - Headers: `Auto-Submitted: auto-replied` (§5), `X-Auto-Response-Suppress:
 *   All` (Exchange's out-of-office and receipts stay quiet), `X-Loop` with the
 *   desk's address, `In-Reply-To`/`References` when the request had a sane
 *   Message-ID, a fixed Subject (nothing of the request's text is echoed).
 * - Body: plain text, the token alone on its line, its tier, expiry and id,
 *   and how to use it.
 */
import { describePeriod } from './limits.ts';

export interface ReplyInput {
  deskAddress: string;
  /** the request's envelope sender (lower case) */
  to: string;
  token: string;
  jti: string;
  tier: number;
  issuedAt: Date;
  expiresAt: Date;
  periodSeconds: number;
  perAddress: number;
  /** the request's Message-ID as received, if any */
  requestMessageId: string | undefined;
  /** '' = null sender */
  returnPath: string;
}

/** What the relay is handed (nodemailer's message options, the fields used). */
export interface ReplyMessage {
  envelope: { from: string; to: string[] };
  from: { name: string; address: string };
  to: string;
  subject: string;
  date: Date;
  text: string;
  inReplyTo?: string;
  references?: string;
  headers: Record<string, string>;
}

/** A Message-ID safe to repeat in In-Reply-To: `<...>`, printable ASCII, no spaces or angle brackets inside. */
export function saneMessageId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  const t = id.trim();
  return /^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$/.test(t) ? t : undefined;
}

export function composeReply(r: ReplyInput): ReplyMessage {
  const msgId = saneMessageId(r.requestMessageId);
  const once = r.perAddress === 1 ? 'one token' : `${r.perAddress} tokens`;
  const text = [
    'Hello,',
    '',
    `here is your Stella OUK scan token: ${r.tier} scans a day, valid until ${r.expiresAt.toISOString()}.`,
    '',
    r.token,
    '',
    'Use it with the scanner:',
    '',
    '    export STELLA_JWT=<the token above>',
    '    stella scan bom.json',
    '',
    'or send it to a site\'s scan API as "Authorization: Bearer <the token>".',
    '',
    `Token id: ${r.jti} (issued ${r.issuedAt.toISOString()}).`,
    `This desk sends ${once} per address every ${describePeriod(r.periodSeconds)}.`,
    '',
    `This message was sent automatically in answer to a mail from ${r.to} to ${r.deskAddress}.`,
    'If you did not write to us, someone used your address: ignore this message.',
    '',
  ].join('\r\n');
  return {
    envelope: { from: r.returnPath, to: [r.to] },
    from: { name: 'Stella OUK token desk', address: r.deskAddress },
    to: r.to,
    subject: 'Your Stella OUK scan token',
    date: r.issuedAt,
    text,
    ...(msgId ? { inReplyTo: msgId, references: msgId } : {}),
    headers: {
      'Auto-Submitted': 'auto-replied',
      'X-Auto-Response-Suppress': 'All',
      'X-Loop': r.deskAddress,
    },
  };
}
