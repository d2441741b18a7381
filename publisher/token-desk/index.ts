/**
 * The free-token e-mail desk (`stella token desk`): a blank mail to the desk's
 * address is answered with a signed scan token, once per address per period.
 *
 *   address.ts  which sender addresses are taken (one mailbox, a sane public domain)
 *   screen.ts   which mails are answered (RFC 3834: no bounces, auto-replies, list mail)
 *   limits.ts   the limits per address and per domain, and why over them nothing is sent
 *   reply.ts    the reply (RFC 3834 headers, the token)
 *   relay.ts    the relay the replies go out through (nodemailer)
 *   desk.ts     SMTP in (smtp-server), the record (infra/token-desk-record.ts), the relay out
 */
export { parseSender, saneDomain, type SenderAddress } from './address.ts';
export { screen, type InboundMail, type IgnoreReason, type ScreenResult } from './screen.ts';
export { decideLimits, describePeriod, domainLimit, windowStart, type LimitDecision, type LimitSettings } from './limits.ts';
export { composeReply, saneMessageId, type ReplyMessage } from './reply.ts';
export { openRelay, type Relay } from './relay.ts';
export { prepareTokenDesk, refuseAirgap, startTokenDesk, type PreparedDesk, type TokenDesk, type TokenDeskDeps } from './desk.ts';
