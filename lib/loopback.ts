/** Whether a host is this machine: "localhost", 127.0.0.0/8, ::1 (and its IPv4-mapped form), in any brackets or case. */

/** The spellings a loopback host goes by (lib/airgap.ts allows each of them). */
export const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1', '::ffff:127.0.0.1'];

/** A host as compared: trimmed, without IPv6 brackets, lower case. */
export function normaliseHost(h: string): string {
  return h.trim().replace(/^\[|\]$/g, '').toLowerCase();
}

export function isLoopback(host: string): boolean {
  const h = normaliseHost(host);
  return h === 'localhost' || h === '::1' || /^127\./.test(h) || /^::ffff:127\./.test(h);
}

/** Whether a URL's host is loopback (false for what is not a URL). */
export function isLoopbackUrl(url: string): boolean {
  try {
    return isLoopback(new URL(url).hostname);
  } catch {
    return false;
  }
}
