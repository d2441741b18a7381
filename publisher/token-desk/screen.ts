/**
 * Which mails the desk answers (RFC 3834, "Recommendations for Automatic
 * Responses to Electronic Mail"): a person asking for a token, and nothing
 * else. A mail that is itself automatic, a bounce, or list traffic gets no
 * reply at all (it is accepted and dropped, never rejected: rejecting a
 * bounce makes another one). No answer, in order of the checks:
 *
 * - `bounce`: the null envelope sender `<>` (delivery reports, RFC 3834
 *   responses, anything that must not be answered);
 * - `system-sender`: MAILER-DAEMON, postmaster, list and bounce robots
 *   (`owner-*`, `*-request`, `*-owner`, `*-bounces`, listserv, majordomo),
 *   no-reply addresses; and the desk's own address (a loop);
 * - `auto-submitted`: `Auto-Submitted` present with any value but `no`
 *   (RFC 3834 §2: MUST NOT answer);
 * - `auto-response-suppress`: Microsoft's `X-Auto-Response-Suppress` asking
 *   not to be answered (`All`, `AutoReply` or `OOF`; `DR`/`RN`/`NRN` alone only
 *   decline receipts); `X-Autoreply`/`X-Autorespond` present;
 * - `precedence`: `Precedence: bulk`, `junk` or `list`;
 * - `mailing-list`: any RFC 2369/2919 list header (`List-Id`,
 *   `List-Unsubscribe`, `List-Post`, …);
 * - `delivery-report`: `Content-Type: multipart/report` (DSN, MDN, ARF),
 *   whatever its sender;
 * - `loop`: the desk's own `X-Loop` mark, or a From: of the desk itself;
 * - `bad-from`: the From: header does not hold exactly one address (none,
 *   several, a group, several From: fields).
 *
 * Who the answer goes to: the envelope sender (the SMTP `MAIL FROM`, the
 * message's future Return-Path) — RFC 3834 §4 for responses made at delivery.
 * `Reply-To`, `From` and `Sender` are never used for addressing: they are
 * whatever the sender wrote, and would let anyone direct a token (and the
 * desk's mail) at a third party. The limits count the same address.
 */
import { parseSender, type SenderAddress } from './address.ts';

export interface MailHeader {
  /** lower case */
  name: string;
  /** unfolded, trimmed */
  value: string;
}

export interface InboundMail {
  /** MAIL FROM, '' for the null sender <> */
  envelopeFrom: string;
  headers: MailHeader[];
  /** the addresses of every From: field (a group's members included) and whether a group was used */
  fromAddresses: string[];
  fromHasGroup: boolean;
}

export type IgnoreReason =
  | 'bounce'
  | 'system-sender'
  | 'bad-sender'
  | 'auto-submitted'
  | 'auto-response-suppress'
  | 'precedence'
  | 'mailing-list'
  | 'delivery-report'
  | 'loop'
  | 'bad-from';

export type ScreenResult = { answer: true; sender: SenderAddress } | { answer: false; reason: IgnoreReason; detail: string };

const SYSTEM_LOCAL = [
  /^mailer-daemon$/,
  /^postmaster$/,
  /^listserv$/,
  /^majordomo$/,
  /^owner-/,
  /-(?:request|owner|bounces?)$/,
  /^(?:no-?reply|do-?not-?reply|bounces?)(?:[+.-]|$)/,
];

const LIST_HEADERS = new Set(['list-id', 'list-unsubscribe', 'list-unsubscribe-post', 'list-post', 'list-help', 'list-subscribe', 'list-owner', 'list-archive']);

const ignore = (reason: IgnoreReason, detail: string): ScreenResult => ({ answer: false, reason, detail });

function values(mail: InboundMail, name: string): string[] {
  return mail.headers.filter((h) => h.name === name).map((h) => h.value);
}

/** The header value without comments or parameters: `auto-replied; x=y (c)` → `auto-replied`. */
function token(value: string): string {
  return value.replace(/\([^)]*\)/g, '').split(';')[0]!.trim().toLowerCase();
}

/** What to do with one mail to the desk (`deskAddress` lower case). */
export function screen(mail: InboundMail, deskAddress: string): ScreenResult {
  if (mail.envelopeFrom === '') return ignore('bounce', 'null envelope sender <>');
  const parsed = parseSender(mail.envelopeFrom);
  if (!parsed.ok) return ignore('bad-sender', parsed.why);
  const sender = parsed.sender;
  if (SYSTEM_LOCAL.some((re) => re.test(sender.local))) return ignore('system-sender', `${sender.local}@ is a system or list address`);
  if (sender.address === deskAddress) return ignore('loop', 'the sender is the desk itself');

  for (const v of values(mail, 'auto-submitted')) {
    if (token(v) !== 'no') return ignore('auto-submitted', `Auto-Submitted: ${v.slice(0, 80)}`);
  }
  for (const v of values(mail, 'x-auto-response-suppress')) {
    const asks = v.split(/[,\s]+/).map((x) => x.trim().toLowerCase());
    if (asks.some((x) => x === 'all' || x === 'autoreply' || x === 'oof')) return ignore('auto-response-suppress', `X-Auto-Response-Suppress: ${v.slice(0, 80)}`);
  }
  for (const name of ['x-autoreply', 'x-autorespond']) {
    if (values(mail, name).length > 0) return ignore('auto-response-suppress', `${name} present`);
  }
  for (const v of values(mail, 'precedence')) {
    const p = token(v);
    if (p === 'bulk' || p === 'junk' || p === 'list') return ignore('precedence', `Precedence: ${p}`);
  }
  const list = mail.headers.find((h) => LIST_HEADERS.has(h.name));
  if (list) return ignore('mailing-list', `${list.name} present`);
  for (const v of values(mail, 'content-type')) {
    if (token(v) === 'multipart/report') return ignore('delivery-report', 'Content-Type: multipart/report');
  }
  if (values(mail, 'x-loop').some((v) => v.toLowerCase().includes(deskAddress))) return ignore('loop', 'X-Loop names the desk');

  if (mail.fromHasGroup || mail.fromAddresses.length !== 1 || values(mail, 'from').length !== 1) {
    return ignore('bad-from', `From: holds ${mail.fromHasGroup ? 'a group' : `${mail.fromAddresses.length} addresses in ${values(mail, 'from').length} fields`}, not one address`);
  }
  if (mail.fromAddresses[0]!.toLowerCase() === deskAddress) return ignore('loop', 'From: is the desk itself');
  return { answer: true, sender };
}
