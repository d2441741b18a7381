/**
 * Typed errors with a stable code, an operator-facing message that says what to
 * do, and a process exit code per class. The table below is the contract that
 * docs/exit-codes.md documents; never renumber an existing code.
 */
import { terminalText } from './terminal-text.ts';

export const EXIT_CODES = {
  // 1: unexpected failure (a bug); 2: usage error (the CLI parser's own).
  INTERNAL: 1,
  USAGE: 2,
  // 10–19: signature and keys
  SIGNATURE_MISMATCH: 10,
  SIGNATURE_MISSING: 11,
  SIGNATURE_MALFORMED: 12,
  KEY_INVALID: 13,
  KEY_NOT_TRUSTED: 14,
  // the root of trust (signing/root/) and the release attestation (signing/attestation/)
  SIGNATURE_THRESHOLD: 15,
  KEY_REVOKED: 16,
  ROOT_EXPIRED: 17,
  ROOT_INVALID: 18,
  ATTESTATION_MISMATCH: 19,
  // 20–29: archive and manifest
  ARCHIVE_CORRUPT: 20,
  MANIFEST_INVALID: 21,
  MEMBER_CHECKSUM_MISMATCH: 22,
  MEMBER_MISSING: 23,
  MEMBER_UNEXPECTED: 24,
  UNSAFE_ENTRY: 25,
  DIGEST_CHANGED: 26,
  // 30–39: import policy
  DOWNGRADE_REFUSED: 30,
  BUNDLE_EXPIRED: 31,
  DELTA_BASE_MISMATCH: 32,
  NOTHING_ACTIVE: 33,
  NO_PREVIOUS_DB: 34,
  NOTHING_TO_RETRY: 35,
  BUNDLE_FROM_FUTURE: 36,
  SCHEMA_OUTDATED: 37,
  // 40–49: feeds and build input
  FEED_UNREADABLE: 40,
  INPUT_NOT_FOUND: 41,
  OUTPUT_EXISTS: 42,
  // 50–59: infrastructure
  STORE_UNAVAILABLE: 50,
  DATABASE_UNAVAILABLE: 51,
  QUEUE_UNAVAILABLE: 52,
  INSUFFICIENT_SPACE: 53,
  IMPORT_FAILED: 54,
  IMPORT_NOT_FOUND: 55,
  AIRGAP_VIOLATION: 56,
  TOOL_MISSING: 57,
  REGISTRY_UNAVAILABLE: 58,
  REGISTRY_REJECTED: 59,
  // 60–69: scans, tokens, quota
  SBOM_INVALID: 60,
  TOKEN_INVALID: 61,
  FINDINGS_AT_OR_ABOVE_THRESHOLD: 62,
  QUOTA_UNAVAILABLE: 63,
  SBOM_TOO_LARGE: 64,
  SCAN_BUSY: 65,
  SBOM_NOT_FOUND: 66,
  SBOM_EXISTS: 67,
  TOKEN_REQUIRED: 68,
  VEX_INVALID: 69,
  // 70–79: the intranet mirror (OUK_MIRROR_URL)
  MIRROR_UNREACHABLE: 70,
  MIRROR_INDEX_INVALID: 71,
  MIRROR_DIGEST_MISMATCH: 72,
  MIRROR_TOO_LARGE: 73,
  MIRROR_NOT_CONFIGURED: 74,
  // 80–89: who may do what, and jobs handed in from outside
  ROLE_REQUIRED: 80,
  JOB_INVALID: 81,
  // 82–86: quarantine and the audit trail (docs/trust.md, "Quarantine" and "The audit trail")
  REASON_REQUIRED: 82,
  QUARANTINE_NOT_FOUND: 83,
  // 90–99: the free-token e-mail desk (stella token desk)
  TOKEN_DESK_NOT_CONFIGURED: 90,
  TOKEN_DESK_LISTEN_FAILED: 91,
  TOKEN_DESK_RELAY_FAILED: 92,
  // 100–109: the freshness of the data behind a scan (OUK_MAX_AGE, OUK_STALE_POLICY)
  DB_STALE: 100,
  // 110–119: the publisher's upstream feeds (stella feeds sync)
  UPSTREAM_UNAVAILABLE: 110,
  UPSTREAM_INVALID: 111,
  UPSTREAM_REJECTED: 112,
  SYNC_LOCKED: 113,
  CSAF_PROVIDERS_INVALID: 114,
  CSAF_KEY_UNTRUSTED: 115,
  // 120–129: the publisher's kits (stella publish, npm run publisher)
  PUBLISH_LOCKED: 120,
  PUBLISH_CLOCK_BEHIND: 121,
  PUBLISH_VERSION_TAKEN: 122,
  PUBLISH_NOT_CONFIGURED: 123,
  PUBLISH_DEADLINE: 124,
  // 130–144: people signing in (identity/, api sessions): 130–134 sessions, 135–139 the directory, 140–144 OpenID
  LOGIN_FAILED: 130,
  SESSION_REQUIRED: 131,
  CSRF_REJECTED: 132,
  LOGIN_LOCKED: 133,
  PERSONAL_TOKENS_OFF: 134,
  DIRECTORY_UNAVAILABLE: 135,
  DIRECTORY_NOT_CONFIGURED: 136,
  OIDC_UNAVAILABLE: 140,
  OIDC_REJECTED: 141,
  OIDC_LOGIN_EXPIRED: 142,
  // 150–159: cryptography where law or policy requires it (signing/suites, STELLA_CRYPTO_POLICY)
  ALGORITHM_NOT_ALLOWED: 150,
  // 160–169: the image cataloguer (catalog/, stella scan image)
  IMAGE_NOT_FOUND: 160,
  IMAGE_INVALID: 161,
  LAYER_TOO_LARGE: 162,
  IMAGE_TOO_MANY_FILES: 163,
  IMAGE_PLATFORM_MISSING: 164,
} as const;

export type ErrorCode = keyof typeof EXIT_CODES;

export class OukError extends Error {
  readonly code: ErrorCode;
  /** Whether retrying the same operation later may succeed (a queue retries these). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OukError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * A failure as text that must carry its code — a stage job's failedReason,
 * which is all BullMQ keeps of a failure: `CODE: message`. Made here and read
 * back by parseFailureText, the one rule for both; inside the process the code
 * travels as OukError.code, and on the import record as its own field.
 */
export function failureText(err: Pick<OukError, 'code' | 'message'>): string {
  return `${err.code}: ${err.message}`;
}

/** The code and message of a failureText (or a CLI's `error[CODE]: message`); code null when the text names no known code. */
export function parseFailureText(text: string): { code: ErrorCode | null; message: string } {
  const m = /^(?:error\[)?([A-Z][A-Z_]+)(?:\])?: ?/.exec(text);
  if (m && Object.hasOwn(EXIT_CODES, m[1]!)) return { code: m[1] as ErrorCode, message: text.slice(m[0].length) };
  return { code: null, message: text };
}

export function isOukError(e: unknown): e is OukError {
  return e instanceof OukError;
}

/** The first OukError with `code` in `e`'s cause chain (fetch wraps a socket's error as its cause). */
export function findOukError(e: unknown, code: ErrorCode): OukError | null {
  for (let cur: unknown = e, depth = 0; cur !== null && cur !== undefined && depth < 8; depth++) {
    if (isOukError(cur) && cur.code === code) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * A disk that is full, wherever it surfaces: PostgreSQL's disk_full (SQLSTATE
 * 53100: a table, index or temporary file could not grow) or the OS's ENOSPC,
 * anywhere in `e`'s cause chain, as INSUFFICIENT_SPACE; null for anything
 * else. (The rest of class 53 — out of memory, too many connections, a
 * configured limit — is not about space.) Not retryable: the space does not
 * come back by itself.
 */
export function insufficientSpace(e: unknown): OukError | null {
  for (let cur: unknown = e, depth = 0; cur !== null && typeof cur === 'object' && depth < 8; depth++) {
    if (isOukError(cur)) return cur.code === 'INSUFFICIENT_SPACE' ? cur : null;
    const { code, message } = cur as { code?: unknown; message?: unknown };
    const msg = typeof message === 'string' ? message.replace(/\s+/g, ' ').trim() : '';
    if (code === '53100') {
      return new OukError('INSUFFICIENT_SPACE', `PostgreSQL is out of disk space (${msg}): free space on its data directory or tablespace (\`stella ouk gc\` removes the DBs no import needs), then retry`, { cause: e });
    }
    if (code === 'ENOSPC' || /no space left on device/i.test(msg)) {
      return new OukError('INSUFFICIENT_SPACE', `a disk is full (${msg}): free space there, then retry`, { cause: e });
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

/** The exit code for any thrown value: the typed code (a full disk is INSUFFICIENT_SPACE), or 1 for anything unexpected. */
export function exitCodeOf(e: unknown): number {
  return isOukError(e) ? e.exitCode : (insufficientSpace(e)?.exitCode ?? EXIT_CODES.INTERNAL);
}

/**
 * One line for an operator: `error[CODE]: message`. Messages carry outside
 * strings (object keys, names, a server's answer), so control characters are
 * written out (lib/terminal-text.ts): a newline cannot break the line, an
 * escape sequence cannot reach the terminal.
 */
export function describeError(e: unknown): string {
  if (isOukError(e)) return `error[${e.code}]: ${terminalText(e.message)}`;
  const space = insufficientSpace(e);
  if (space) return `error[${space.code}]: ${terminalText(space.message)}`;
  const msg = e instanceof Error ? e.message : String(e);
  return `error[INTERNAL]: ${terminalText(msg)}`;
}

/**
 * Not a failure: what a stage needs is on its way (a delta's base still being
 * imported). The queue runs the stage again after `waitMs` without counting an
 * attempt; `code` is what the stage fails with if it stops waiting.
 */
export class OukWait extends OukError {
  readonly waitMs: number;

  constructor(code: ErrorCode, message: string, waitMs: number) {
    super(code, message, { retryable: true });
    this.name = 'OukWait';
    this.waitMs = waitMs;
  }
}
