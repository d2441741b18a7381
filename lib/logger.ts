/**
 * Structured JSON logs (pino), one line per event, for every process (API,
 * workers, CLI diagnostics). Usage:
 *
 *   const log = createLogger('worker', { level: config.logLevel });
 *   const ilog = withImport(log, importId);   // every line carries importId
 *   ilog.info({ stage: 'load', rows }, 'stage completed');
 *
 * Secrets never reach a log line: authorization headers, cookies, tokens,
 * passwords, secret/access keys and private keys are replaced by "[redacted]"
 * wherever they appear at the top level, one or two levels deep, or under
 * request headers. Credentials embedded in URLs can be stripped with `safeUrl`.
 *
 * Level: the one given (a process passes its LOG_LEVEL, `Config.logLevel`:
 * trace|debug|info|warn|error|fatal|silent), default info. A logger reads no
 * environment.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Field names that hold secrets, wherever they sit in a logged object. */
const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'password',
  'passwd',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'jwt',
  'apiKey',
  'accessKey',
  'secretKey',
  'privateKey',
  'webhookToken',
  'dashboardPassword',
  'x-api-key',
] as const;

function bracket(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
}

/** pino redact paths: `k`, `*.k`, `*.*.k`, and request/response header forms. */
export const REDACT_PATHS: string[] = (() => {
  const paths = new Set<string>();
  for (const k of SECRET_KEYS) {
    const b = bracket(k);
    paths.add(b.startsWith('.') ? k : b);
    paths.add(`*${b}`);
    paths.add(`*.*${b}`);
    paths.add(`req.headers${b}`);
    paths.add(`request.headers${b}`);
    paths.add(`headers${b}`);
    paths.add(`res.headers${b}`);
  }
  paths.add('config.store.secretKey');
  paths.add('config.store.accessKey');
  return [...paths];
})();

export interface CreateLoggerOptions {
  /** The entry point's LOG_LEVEL (`config.logLevel`); default info. */
  level?: string;
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  destination?: DestinationStream;
  /** Extra fields on every line. */
  base?: Record<string, unknown>;
}

export function loggerOptions(name: string, opts: CreateLoggerOptions = {}): LoggerOptions {
  return {
    name,
    level: opts.level ?? 'info',
    base: { pid: process.pid, ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    formatters: { level: (label) => ({ level: label }) },
  };
}

/** A JSON logger named after the component (`api`, `worker`, `reconciler`, ...). */
export function createLogger(name: string, opts: CreateLoggerOptions = {}): Logger {
  const options = loggerOptions(name, opts);
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A child logger whose every line carries `importId` (and any extra bindings, e.g. stage). */
export function withImport(logger: Logger, importId: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ importId, ...bindings });
}

/** A URL with any user:password removed, safe to log (`postgres://postgres:x@h/db` → `postgres://h/db`). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}
