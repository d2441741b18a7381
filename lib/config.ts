/**
 * Process configuration, parsed from an environment given to it (see
 * .env.example). Defaults are the local stack's: Redis, PostgreSQL and s3rver
 * on loopback, bucket `ouk`, API 8080, state under `.stella/` in the working
 * directory.
 *
 * Nothing here reads the process's environment: a process entry point
 * resolves it once (infra/env.ts `resolveEnv`: the environment, `.env` and the
 * local stack's `dev.env`), parses it here once, and passes the result down —
 * `Config` to everything, `PipelineSettings` to the queue side,
 * `TokenDeskSettings` only to the desk. Code below an entry point takes these
 * as parameters (a command of the CLI finds them on its `CliContext`,
 * cli/context.ts); tests build them from any environment (`loadConfig({...})`).
 */
import path from 'node:path';
import { OukError } from './errors.ts';
import { isLoopbackUrl } from './loopback.ts';
import { DEFAULT_MAX_AGE, KNOWN_FEEDS, parseMaxAge, parseStalePolicy, type FreshnessRule } from './freshness.ts';
import { parseRedisTarget, type RedisTarget } from './redis-target.ts';
import { type CryptoPolicy, parseCryptoPolicy } from './crypto-policy.ts';
import type { StageName } from './stages.ts';

export interface StoreConfig {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  /** Upload part size; s3rver cannot do multipart, so locally it is set above any object size. */
  partSize: number;
}

export interface Config {
  /** REDIS_URL: the one Redis server; with REDIS_SENTINELS, only the nodes' password and db (see `redis`) */
  redisUrl: string;
  /** Where Redis is: REDIS_URL alone, or REDIS_SENTINELS + REDIS_SENTINEL_NAME (lib/redis-target.ts) */
  redis: RedisTarget;
  /** Key prefix for every BullMQ queue (tests use their own). */
  queuePrefix: string;
  databaseUrl: string;
  s3Endpoint: string;
  store: StoreConfig;
  bucket: string;
  trustedKeys: string[];
  /**
   * OUK_TRUST_ROOT: the path of the pinned root of trust (TUF root.json, docs/trust.md); when set
   * it is the only trust and OUK_TRUSTED_KEYS is ignored. Undefined: OUK_TRUSTED_KEYS, as a one-key root.
   */
  trustRoot: string | undefined;
  /** OUK_REQUIRE_ATTESTATION: a kit without its release attestation (FILE.intoto.json) is refused. */
  requireAttestation: boolean;
  apiPort: number;
  airgap: boolean;
  jwt: string | undefined;
  jwtPublicKey: string | undefined;
  jwtIssuer: string;
  /** STELLA_JWT_MAX_DAYS: tokens valid for longer than this from now are refused */
  jwtMaxDays: number;
  quotaAnon: number;
  quotaToken: number;
  quotaBannerAt: number;
  /** Redis key prefix of the quota counters (STELLA_QUOTA_PREFIX; tests use their own). */
  quotaPrefix: string;
  /** STELLA_SCAN_MAX_BYTES: largest SBOM the scan API takes (413 above) */
  scanMaxBytes: number;
  /** STELLA_SCAN_MAX_FINDINGS: findings (and not-checked entries) one API answer carries at most */
  scanMaxFindings: number;
  /** STELLA_SCAN_CONCURRENCY: scans the API runs at once (503 SCAN_BUSY above) */
  scanConcurrency: number;
  /** STELLA_SCAN_PER_CLIENT: scans one client (token or address) runs at once (429 SCAN_BUSY above) */
  scanPerClient: number;
  /** STELLA_SCAN_ANON_MAX_BYTES: largest SBOM a scan without a token may send (413 above, refused unread) */
  scanAnonMaxBytes: number;
  /** STELLA_API_BODY_BUDGET_BYTES: bytes of scan and stored-SBOM bodies the API holds at once (503 SCAN_BUSY above) */
  apiBodyBudgetBytes: number;
  webhookToken: string | undefined;
  dashboardUser: string | undefined;
  dashboardPassword: string | undefined;
  /**
   * How fresh the active DB must be (lib/freshness.ts): OUK_MAX_AGE (per-feed budgets; default
   * DEFAULT_MAX_AGE), OUK_STALE_POLICY (warn | refuse-scans), and OUK_MAX_CLOCK_SKEW_SECONDS as the
   * tolerance of a host clock behind the newest signed time. OUK_WARN_AGE_HOURS (deprecated) gives
   * every feed one budget when OUK_MAX_AGE is not set.
   */
  freshness: FreshnessRule;
  /** OUK_MAX_CLOCK_SKEW_SECONDS: how far a kit's `created` may be ahead of this host's clock (600); further, it is BUNDLE_FROM_FUTURE */
  maxClockSkewSeconds: number;
  stateDir: string;
  /** STELLA_API_HOST: the address the API listens on (all interfaces by default). */
  apiHost: string;
  /**
   * STELLA_TRUST_PROXY: the reverse proxies whose X-Forwarded-For the API believes (a comma-separated
   * list of addresses or CIDRs); undefined: none, the client address is the peer's. Sign-in
   * lockout per address and the anonymous scan quota count by that address.
   */
  trustProxy: string[] | undefined;
  /** STELLA_INSECURE_WEBHOOK: accept webhook posts without OUK_WEBHOOK_TOKEN (never in production). */
  insecureWebhook: boolean;
  /** OUK_SHUTDOWN_SECONDS: grace period for running jobs when a worker is stopped. */
  shutdownSeconds: number;
  /** OUK_REGISTRY_URL: the site's OCI registry the kit's images are pushed to; undefined: images are not pushed. */
  registryUrl: string | undefined;
  /** OUK_REGISTRY_PREFIX: repository prefix of the pushed images (default `stella/`: stella/scanner, stella/zastava). */
  registryPrefix: string;
  /**
   * OUK_REGISTRY_USERNAME with OUK_REGISTRY_PASSWORD_FILE (or OUK_REGISTRY_PASSWORD): the
   * registry account; undefined: anonymous. The file is read only where a registry client is
   * made (infra/registry.ts registryCredentials), not by every process that loads the config.
   */
  registryAccount: { username: string; password?: string; passwordFile?: string } | undefined;
  /** STELLA_AIRGAP_ALLOW: further host:port pairs air-gap mode allows (a site's own services). */
  airgapAllow: string[];
  /** OUK_LDAP_URL as written: the site's directory, which air-gap mode allows (ldapSettings parses it). */
  ldapUrl: string | undefined;
  /** LOG_LEVEL (pino), undefined when unset. */
  logLevel: string | undefined;
  /** STELLA_DEBUG: the CLI prints stack traces. */
  debug: boolean;
  /** STELLA_KEY_PASSWORD: the password of an encrypted signing key. */
  keyPassword: string | undefined;
  /** STELLA_CRYPTO_POLICY (default|fips|gm): which suites may sign kits and roots, which algorithms tokens (docs/crypto.md). */
  cryptoPolicy: CryptoPolicy;
  /** STELLA_SM2_ID: the SM2 distinguishing ID (default 1234567812345678), the same on the publisher and every site. */
  sm2Id: string | undefined;
  /** STELLA_PKCS11_MODULE: the PKCS#11 library of `pkcs11:` keys (docs/crypto.md), unless the URI names one. */
  pkcs11Module: string | undefined;
  /** STELLA_PKCS11_PIN: the token's user PIN, unless the URI gives pin-value or pin-source. */
  pkcs11Pin: string | undefined;
  /** SOURCE_DATE_EPOCH (seconds): a reproducible build's `created` time. */
  sourceDateEpoch: string | undefined;
  /** NO_COLOR (https://no-color.org) or TERM=dumb: plain terminal output. */
  noColour: boolean;
  /** The intranet mirror the `mirror` job pulls kits from (OUK_MIRROR_URL), undefined when unset. */
  mirror: MirrorConfig | undefined;
  /** People signing in: sessions, the break-glass account, back-off and lockout (signInConfig). */
  signIn: SignInConfig;
}

/**
 * People signing in to the API and the dashboard (docs/operations.md, "Signing in"):
 *
 *   OUK_BREAK_GLASS                 true: DASHBOARD_USER/DASHBOARD_PASSWORD may sign in (role admin), every use
 *                                   audited; off by default (the directory is how people sign in)
 *   OUK_SECURE_COOKIES              true: the session cookie is `Secure`: set it whenever browsers reach the API
 *                                   over TLS (a reverse proxy in front of it); off by default (plain http locally)
 *   OUK_SESSION_IDLE_SECONDS        a session unused this long ends (1800)
 *   OUK_SESSION_MAX_SECONDS         a session ends this long after sign-in, used or not (43200)
 *   OUK_LOGIN_MAX_FAILURES          failed sign-ins of one account in the window before it is locked (5)
 *   OUK_LOGIN_MAX_ADDRESS_FAILURES  failed sign-ins from one address in the window before it is locked (30)
 *   OUK_LOGIN_WINDOW_SECONDS        the window failures are counted in (900)
 *   OUK_LOGIN_LOCK_SECONDS          how long a lockout lasts (900); before it, failures back off 1, 2, 4 … s
 *   OUK_TOKEN_SIGNING_KEY           the private key (PEM path or text; STELLA_KEY_PASSWORD if encrypted) the API
 *                                   signs personal tokens with (POST /auth/tokens); its public key is
 *                                   STELLA_JWT_PUBLIC_KEY. Unset: people cannot issue their own tokens
 *   OUK_PERSONAL_TOKEN_MAX_DAYS     the longest lifetime of a personal token (90)
 */
export interface SignInConfig {
  breakGlass: boolean;
  secureCookies: boolean;
  sessionIdleSeconds: number;
  sessionMaxSeconds: number;
  accountMaxFailures: number;
  addressMaxFailures: number;
  failureWindowSeconds: number;
  lockSeconds: number;
  tokenSigningKey: string | undefined;
  personalTokenMaxDays: number;
}

function trustProxy(raw: string | undefined): string[] | undefined {
  const v = raw?.trim();
  if (!v) return undefined;
  const list = v.split(',').map((x) => x.trim()).filter(Boolean);
  for (const a of list) {
    if (!/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(a)) throw new Error(`STELLA_TRUST_PROXY=${raw}: give the proxies' addresses or CIDRs, comma-separated`);
  }
  return list;
}

export function signInConfig(env: Env): SignInConfig {
  return {
    breakGlass: bool(env, 'OUK_BREAK_GLASS'),
    secureCookies: bool(env, 'OUK_SECURE_COOKIES'),
    sessionIdleSeconds: atLeast(env, 'OUK_SESSION_IDLE_SECONDS', 1800, 30),
    sessionMaxSeconds: atLeast(env, 'OUK_SESSION_MAX_SECONDS', 43_200, 60),
    accountMaxFailures: atLeast(env, 'OUK_LOGIN_MAX_FAILURES', 5, 1),
    addressMaxFailures: atLeast(env, 'OUK_LOGIN_MAX_ADDRESS_FAILURES', 30, 1),
    failureWindowSeconds: atLeast(env, 'OUK_LOGIN_WINDOW_SECONDS', 900, 1),
    lockSeconds: atLeast(env, 'OUK_LOGIN_LOCK_SECONDS', 900, 1),
    tokenSigningKey: env.OUK_TOKEN_SIGNING_KEY?.trim() || undefined,
    personalTokenMaxDays: atLeast(env, 'OUK_PERSONAL_TOKEN_MAX_DAYS', 90, 1),
  };
}

/**
 * The intranet mirror (OUK_MIRROR_URL): an http(s) directory holding kits,
 * their `.sig`/`.sigstore.json` and `index.json` (bundle/mirror-index.ts).
 *
 *   OUK_MIRROR_URL               the directory (a trailing `/` is added); its host:port is
 *                                the one extra host air-gap mode allows
 *   OUK_MIRROR_SCHEDULE          how often the cluster pulls: an interval (`90s`, `15m`,
 *                                `1h`, `1d`) or a 5/6-field cron pattern (default `1h`)
 *   OUK_MIRROR_TIMEOUT_SECONDS   longest one kit download may take (3600)
 *   OUK_MIRROR_INDEX_TIMEOUT_SECONDS  longest index.json, a .sig or a .sigstore.json may
 *                                take (60)
 *   OUK_MIRROR_MIN_BYTES_PER_SECOND / OUK_MIRROR_STALL_SECONDS  a download that receives
 *                                fewer than MIN × STALL bytes in any STALL seconds is
 *                                abandoned as stalled (16384 bytes/s over 30 s)
 *   OUK_MIRROR_MAX_KIT_BYTES     largest kit a round downloads (8 GiB): an index entry
 *                                announcing more is refused before a byte is fetched
 *   OUK_MIRROR_WAIT_SECONDS      longest a round waits for one pulled kit to become
 *                                active before the next step of a chain (3600)
 *   OUK_MIRROR_ROUND_SECONDS     deadline of a scheduled round (14400): past it the
 *                                round stops where it is and ends pending
 */
export interface MirrorConfig {
  url: string;
  schedule: MirrorSchedule;
  downloadTimeoutSeconds: number;
  indexTimeoutSeconds: number;
  minBytesPerSecond: number;
  stallSeconds: number;
  maxKitBytes: number;
  waitSeconds: number;
  roundSeconds: number;
}

/** A BullMQ job-scheduler repeat option: a fixed interval or a cron pattern. */
export type MirrorSchedule = { every: number } | { pattern: string };

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `15m`, `1h`, `90s`, `1d` → every N ms; five or six cron fields → pattern. */
export function parseSchedule(raw: string, name = 'OUK_MIRROR_SCHEDULE'): MirrorSchedule {
  const text = raw.trim();
  const m = /^(\d+)\s*([smhd])$/i.exec(text);
  if (m) {
    const ms = Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]!;
    if (ms < 1000) throw new Error(`${name}=${raw}: the interval must be at least 1s`);
    return { every: ms };
  }
  const fields = text.split(/\s+/);
  if ((fields.length === 5 || fields.length === 6) && fields.every((f) => /^[0-9*/,\-?LW#A-Za-z]+$/.test(f))) return { pattern: text };
  throw new Error(`${name}=${raw} is neither an interval (90s, 15m, 1h, 1d) nor a cron pattern (e.g. "0 * * * *")`);
}

function mirrorConfig(env: Env): MirrorConfig | undefined {
  const raw = (env.OUK_MIRROR_URL ?? '').trim();
  if (!raw) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`OUK_MIRROR_URL=${raw} is not a URL: give the mirror directory, e.g. http://mirror.intranet:8000/stella/`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`OUK_MIRROR_URL=${raw}: only http:// and https:// mirrors are supported`);
  if (u.search || u.hash) throw new Error(`OUK_MIRROR_URL=${raw}: give the directory without a query or fragment`);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return {
    url: u.toString(),
    schedule: parseSchedule(env.OUK_MIRROR_SCHEDULE || '1h'),
    downloadTimeoutSeconds: positive(env, 'OUK_MIRROR_TIMEOUT_SECONDS', 3600),
    indexTimeoutSeconds: positive(env, 'OUK_MIRROR_INDEX_TIMEOUT_SECONDS', 60),
    minBytesPerSecond: positive(env, 'OUK_MIRROR_MIN_BYTES_PER_SECOND', 16 * 1024),
    stallSeconds: positive(env, 'OUK_MIRROR_STALL_SECONDS', 30),
    maxKitBytes: positive(env, 'OUK_MIRROR_MAX_KIT_BYTES', 8 * 1024 ** 3),
    waitSeconds: positive(env, 'OUK_MIRROR_WAIT_SECONDS', 3600),
    roundSeconds: positive(env, 'OUK_MIRROR_ROUND_SECONDS', 4 * 3600),
  };
}

function positive(env: Env, name: string, dflt: number): number {
  const n = int(env, name, dflt);
  if (n <= 0) throw new Error(`${name}=${env[name]} must be more than 0`);
  return n;
}

export type Env = Record<string, string | undefined>;

/**
 * The variables this process started with, copied: the one place the product
 * reads the process environment. infra/env.ts layers `.env` and the local
 * stack's dev.env under it (resolveEnv) and gives child processes their
 * environment (childProcessEnv); everything else is handed a parsed Config.
 */
export function processEnvironment(): Env {
  return { ...process.env };
}

function int(env: Env, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name}=${raw} is not a number`);
  return n;
}

function bool(env: Env, name: string): boolean {
  return /^(1|true|yes|on)$/i.test(env[name] ?? '');
}

export function parseStoreEndpoint(endpoint: string, accessKey: string, secretKey: string, partSize: number): StoreConfig {
  const u = new URL(endpoint);
  const useSSL = u.protocol === 'https:';
  return {
    endPoint: u.hostname,
    port: u.port ? Number(u.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey,
    secretKey,
    region: 'us-east-1',
    partSize,
  };
}

/** `stella` → `stella/`; empty stays empty (images at the registry's top level). */
function registryPrefix(raw: string): string {
  const p = raw.trim().replace(/^\/+/, '');
  if (p === '') return '';
  if (!/^[a-z0-9]+(?:[._\/-][a-z0-9]+)*\/?$/.test(p)) throw new Error(`OUK_REGISTRY_PREFIX=${raw} is not a repository path prefix (lowercase letters, digits, . _ - /)`);
  return p.endsWith('/') ? p : `${p}/`;
}

/** The registry account: a username with its password, or the file holding it (a secret). */
function registryAccount(env: Env): Config['registryAccount'] {
  const username = env.OUK_REGISTRY_USERNAME || undefined;
  const passwordFile = env.OUK_REGISTRY_PASSWORD_FILE || undefined;
  const password = env.OUK_REGISTRY_PASSWORD || undefined;
  if (!username && !password && !passwordFile) return undefined;
  if (!username) throw new Error('a registry password is set but OUK_REGISTRY_USERNAME is not: set both, or neither for anonymous access');
  if (!password && !passwordFile) throw new Error(`OUK_REGISTRY_USERNAME=${username} is set without a password: set OUK_REGISTRY_PASSWORD_FILE (or OUK_REGISTRY_PASSWORD)`);
  return { username, ...(passwordFile ? { passwordFile } : { password: password! }) };
}

/**
 * OUK_MAX_AGE and OUK_STALE_POLICY, strictly (a bad value stops the process at
 * start, naming the variable). OUK_WARN_AGE_HOURS, the old whole-DB threshold,
 * is deprecated: alone, it becomes that budget for every feed; beside
 * OUK_MAX_AGE it is ignored. Either way a note says so in `stella ouk status`
 * and /readyz.
 */
function freshnessRule(env: Env, toleranceSeconds: number): FreshnessRule {
  const maxAge = (env.OUK_MAX_AGE ?? '').trim();
  const oldHours = (env.OUK_WARN_AGE_HOURS ?? '').trim();
  const policy = parseStalePolicy(env.OUK_STALE_POLICY);
  if (maxAge !== '') {
    const notes = oldHours !== '' ? [`OUK_WARN_AGE_HOURS=${oldHours} is deprecated and ignored beside OUK_MAX_AGE: remove it`] : [];
    return { budgets: parseMaxAge(maxAge), policy, toleranceSeconds, source: 'OUK_MAX_AGE', notes };
  }
  if (oldHours !== '') {
    const hours = Number(oldHours);
    if (!/^\d{1,6}$/.test(oldHours) || hours <= 0) throw new OukError('USAGE', `OUK_WARN_AGE_HOURS=${oldHours} is not a whole number of hours above 0 (it is deprecated: set OUK_MAX_AGE, e.g. ${DEFAULT_MAX_AGE})`);
    return {
      budgets: Object.fromEntries(KNOWN_FEEDS.map((f) => [f, hours * 3600])),
      policy,
      toleranceSeconds,
      source: 'OUK_WARN_AGE_HOURS',
      notes: [`OUK_WARN_AGE_HOURS=${oldHours} is deprecated: it is read as a budget of ${oldHours}h for every feed's snapshot; set OUK_MAX_AGE instead (e.g. ${DEFAULT_MAX_AGE})`],
    };
  }
  return { budgets: parseMaxAge(DEFAULT_MAX_AGE), policy, toleranceSeconds, source: 'default', notes: [] };
}

function sm2Id(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^[\x20-\x7e]{1,64}$/.test(value)) throw new OukError('USAGE', `STELLA_SM2_ID is not 1 to 64 printable ASCII characters: set the distinguishing ID your publisher signs with (unset: 1234567812345678)`);
  return value;
}

export function loadConfig(env: Env): Config {
  const s3Endpoint = env.S3_ENDPOINT || 'http://127.0.0.1:9000';
  const stateDir = path.resolve(env.STELLA_STATE_DIR || '.stella');
  // 5 GiB is S3's single-PUT ceiling: one part per object, which s3rver needs.
  const partSize = int(env, 'S3_PART_SIZE', 5 * 1024 * 1024 * 1024);
  return {
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    redis: parseRedisTarget({ REDIS_URL: env.REDIS_URL, REDIS_SENTINELS: env.REDIS_SENTINELS, REDIS_SENTINEL_NAME: env.REDIS_SENTINEL_NAME, REDIS_SENTINEL_PASSWORD: env.REDIS_SENTINEL_PASSWORD }),
    queuePrefix: env.OUK_QUEUE_PREFIX || 'ouk',
    databaseUrl: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    s3Endpoint,
    store: parseStoreEndpoint(s3Endpoint, env.S3_ACCESS_KEY || 'S3RVER', env.S3_SECRET_KEY || 'S3RVER', partSize),
    bucket: env.OUK_BUCKET || 'ouk',
    trustedKeys: (env.OUK_TRUSTED_KEYS || '').split(',').map((s) => s.trim()).filter(Boolean),
    trustRoot: env.OUK_TRUST_ROOT?.trim() || undefined,
    requireAttestation: bool(env, 'OUK_REQUIRE_ATTESTATION'),
    apiPort: int(env, 'STELLA_API_PORT', 8080),
    airgap: bool(env, 'STELLA_AIRGAP'),
    jwt: env.STELLA_JWT || undefined,
    jwtPublicKey: env.STELLA_JWT_PUBLIC_KEY || undefined,
    jwtIssuer: env.STELLA_JWT_ISSUER || 'stella-ouk',
    jwtMaxDays: int(env, 'STELLA_JWT_MAX_DAYS', 366),
    quotaAnon: int(env, 'QUOTA_ANON', 33),
    quotaToken: int(env, 'QUOTA_TOKEN', 333),
    quotaBannerAt: int(env, 'QUOTA_BANNER_AT', 200),
    quotaPrefix: env.STELLA_QUOTA_PREFIX || 'quota',
    scanMaxBytes: int(env, 'STELLA_SCAN_MAX_BYTES', 32 * 1024 * 1024),
    scanMaxFindings: int(env, 'STELLA_SCAN_MAX_FINDINGS', 10_000),
    scanConcurrency: int(env, 'STELLA_SCAN_CONCURRENCY', 4),
    scanPerClient: int(env, 'STELLA_SCAN_PER_CLIENT', 2),
    scanAnonMaxBytes: int(env, 'STELLA_SCAN_ANON_MAX_BYTES', 4 * 1024 * 1024),
    apiBodyBudgetBytes: int(env, 'STELLA_API_BODY_BUDGET_BYTES', 64 * 1024 * 1024),
    webhookToken: env.OUK_WEBHOOK_TOKEN || undefined,
    dashboardUser: env.DASHBOARD_USER || undefined,
    dashboardPassword: env.DASHBOARD_PASSWORD || undefined,
    freshness: freshnessRule(env, atLeast(env, 'OUK_MAX_CLOCK_SKEW_SECONDS', 600, 0)),
    maxClockSkewSeconds: atLeast(env, 'OUK_MAX_CLOCK_SKEW_SECONDS', 600, 0),
    stateDir,
    apiHost: env.STELLA_API_HOST || '0.0.0.0',
    trustProxy: trustProxy(env.STELLA_TRUST_PROXY),
    insecureWebhook: bool(env, 'STELLA_INSECURE_WEBHOOK'),
    shutdownSeconds: int(env, 'OUK_SHUTDOWN_SECONDS', 60),
    registryUrl: env.OUK_REGISTRY_URL || undefined,
    ldapUrl: (env.OUK_LDAP_URL ?? '').trim() || undefined,
    registryPrefix: registryPrefix(env.OUK_REGISTRY_PREFIX ?? 'stella/'),
    registryAccount: registryAccount(env),
    airgapAllow: (env.STELLA_AIRGAP_ALLOW || '').split(',').map((x) => x.trim()).filter(Boolean),
    logLevel: env.LOG_LEVEL || undefined,
    debug: Boolean(env.STELLA_DEBUG),
    keyPassword: env.STELLA_KEY_PASSWORD || undefined,
    cryptoPolicy: parseCryptoPolicy(env.STELLA_CRYPTO_POLICY),
    sm2Id: sm2Id(env.STELLA_SM2_ID),
    pkcs11Module: env.STELLA_PKCS11_MODULE || undefined,
    pkcs11Pin: env.STELLA_PKCS11_PIN || undefined,
    sourceDateEpoch: env.SOURCE_DATE_EPOCH || undefined,
    noColour: Boolean(env.NO_COLOR) || env.TERM === 'dumb',
    mirror: mirrorConfig(env),
    signIn: signInConfig(env),
  };
}

/**
 * Pipeline (queue) tuning from the environment, with production defaults. Job options
 * (attempts, backoff) are fixed when a flow is added, so the ingesting process
 * (API, CLI, reconciler) and the workers read the same variables.
 *
 *   OUK_VERIFY_ATTEMPTS / OUK_VERIFY_BACKOFF_MS  verify: 5 attempts, 2 s doubling (store or database
 *                                                trouble; a missing .sig is not retried, it resumes when it arrives)
 *   OUK_STAGE_ATTEMPTS / OUK_STAGE_BACKOFF_MS    unpack, load, activate, images: 5 attempts, 2 s doubling
 *   OUK_LOCK_MS / OUK_STALLED_MS                 job lock (15 s) and stalled-job check (every 5 s): a job
 *                                                whose worker died runs again elsewhere within ~20 s
 *   OUK_WORKER_CONCURRENCY                       jobs per stage per worker process (default 1;
 *                                                activate always runs one at a time)
 *   OUK_RECONCILE_SECONDS                        reconciler interval (15): lost notifications, stranded
 *                                                imports, failures a worker could not record
 *   OUK_RECONCILE_DEADLINE_SECONDS               longest one reconciler pass may hold its slot (120)
 *   OUK_GC_SECONDS / OUK_GC_GRACE_HOURS          garbage collection interval (3600) and how long failed or
 *                                                orphaned leftovers are kept (24)
 *   OUK_GC_DEADLINE_SECONDS                      longest one gc pass may hold its slot (1800)
 *   OUK_KEEP_COMPLETED_DAYS                      how long finished jobs stay in Redis (7)
 *   OUK_RESCAN_CONCURRENCY                       re-scan jobs of stored SBOMs per worker process (1): their own
 *                                                queue, so interactive scans (the API) never wait behind them
 *   OUK_RESCAN_ATTEMPTS / OUK_RESCAN_BACKOFF_MS  re-scan attempts and first backoff (5, 2 s doubling)
 */
export interface PipelineSettings {
  attempts: Record<StageName, number>;
  backoffMs: Record<StageName, number>;
  lockMs: number;
  stalledMs: number;
  concurrency: number;
  reconcileSeconds: number;
  reconcileDeadlineSeconds: number;
  gcSeconds: number;
  gcGraceHours: number;
  gcDeadlineSeconds: number;
  keepCompletedSeconds: number;
  keepFailedSeconds: number;
  rescanConcurrency: number;
  rescanAttempts: number;
  rescanBackoffMs: number;
}

function atLeast(env: Env, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}=${raw} is not a number >= ${min}`);
  return n;
}

export function pipelineSettings(env: Env): PipelineSettings {
  const verifyAttempts = atLeast(env, 'OUK_VERIFY_ATTEMPTS', 5, 1);
  const verifyBackoff = atLeast(env, 'OUK_VERIFY_BACKOFF_MS', 2000);
  const attempts = atLeast(env, 'OUK_STAGE_ATTEMPTS', 5, 1);
  const backoff = atLeast(env, 'OUK_STAGE_BACKOFF_MS', 2000);
  return {
    attempts: { verify: verifyAttempts, unpack: attempts, load: attempts, activate: attempts, images: attempts },
    backoffMs: { verify: verifyBackoff, unpack: backoff, load: backoff, activate: backoff, images: backoff },
    lockMs: atLeast(env, 'OUK_LOCK_MS', 15_000, 1000),
    stalledMs: atLeast(env, 'OUK_STALLED_MS', 5_000, 500),
    concurrency: atLeast(env, 'OUK_WORKER_CONCURRENCY', 1, 1),
    reconcileSeconds: atLeast(env, 'OUK_RECONCILE_SECONDS', 15, 1),
    reconcileDeadlineSeconds: atLeast(env, 'OUK_RECONCILE_DEADLINE_SECONDS', 120, 1),
    gcSeconds: atLeast(env, 'OUK_GC_SECONDS', 3600, 1),
    gcGraceHours: atLeast(env, 'OUK_GC_GRACE_HOURS', 24, 0),
    gcDeadlineSeconds: atLeast(env, 'OUK_GC_DEADLINE_SECONDS', 1800, 1),
    keepCompletedSeconds: atLeast(env, 'OUK_KEEP_COMPLETED_DAYS', 7) * 86400,
    keepFailedSeconds: 30 * 86400,
    rescanConcurrency: atLeast(env, 'OUK_RESCAN_CONCURRENCY', 1, 1),
    rescanAttempts: atLeast(env, 'OUK_RESCAN_ATTEMPTS', 5, 1),
    rescanBackoffMs: atLeast(env, 'OUK_RESCAN_BACKOFF_MS', 2000),
  };
}

/**
 * The free-token e-mail desk (`stella token desk`, publisher/token-desk/), read
 * only when the desk starts: a missing or malformed value stops it with
 * TOKEN_DESK_NOT_CONFIGURED and the variable's name, and no other command
 * reads these.
 *
 *   TOKEN_DESK_ADDRESS                 REQUIRED: the desk's own address (token@example.org); the only
 *                                      recipient it accepts, the From of its replies
 *   TOKEN_DESK_HOST / TOKEN_DESK_PORT  where it listens for SMTP (0.0.0.0, 2525)
 *   TOKEN_DESK_NAME                    the host name in its greeting (default: the address's domain)
 *   TOKEN_DESK_KEY                     REQUIRED: the token signing key (PKCS#8 PEM path; STELLA_KEY_PASSWORD
 *                                      when encrypted); the site verifies with its public half
 *   TOKEN_DESK_TIER / TOKEN_DESK_TTL   the tokens' tier (scans a day, default QUOTA_TOKEN) and lifetime (30d)
 *   TOKEN_DESK_PERIOD                  the window the limits count over (30d)
 *   TOKEN_DESK_PER_ADDRESS             tokens per address per period (1)
 *   TOKEN_DESK_PER_DOMAIN              tokens per sender domain per period (20)
 *   TOKEN_DESK_DOMAIN_LIMITS           per-domain exceptions, `gmail.com=2000,example.org=5`
 *   TOKEN_DESK_MAX_BYTES               largest message taken (131072; SIZE, 552 above)
 *   TOKEN_DESK_MAX_CLIENTS             connections at once (50), TOKEN_DESK_MAX_PER_IP from one address (5)
 *   TOKEN_DESK_IDLE_SECONDS            a silent connection is closed after (60)
 *   TOKEN_DESK_SESSION_SECONDS         a connection lasts at most (300)
 *   TOKEN_DESK_MAILS_PER_CONNECTION    messages one connection may send (5)
 *   TOKEN_DESK_TLS_KEY / _TLS_CERT     PEM paths: STARTTLS offered to senders (not offered without them)
 *   TOKEN_DESK_RELAY_HOST              REQUIRED: the relay (smarthost) the replies go out through
 *   TOKEN_DESK_RELAY_PORT              587
 *   TOKEN_DESK_RELAY_TLS               starttls (required, the default), tls (implicit, port 465), none
 *   TOKEN_DESK_RELAY_USER / _RELAY_PASSWORD_FILE  the relay account, the password read from a file
 *   TOKEN_DESK_RELAY_TIMEOUT_SECONDS   longest a relay connection or command may take (30)
 *   TOKEN_DESK_RETURN_PATH             envelope sender of the replies (default empty: the null
 *                                      sender <>, as RFC 3834 asks of automatic responses)
 */
export interface TokenDeskSettings {
  /** the desk's own address, lower case */
  address: string;
  listenHost: string;
  listenPort: number;
  /** the host name in the greeting and EHLO answer */
  name: string;
  keyPath: string;
  tier: number;
  ttlSeconds: number;
  periodSeconds: number;
  perAddress: number;
  perDomain: number;
  /** lower-case domain -> its own limit per period, overriding perDomain */
  domainLimits: Record<string, number>;
  maxBytes: number;
  maxClients: number;
  maxPerIp: number;
  idleSeconds: number;
  sessionSeconds: number;
  mailsPerConnection: number;
  tls: { keyPath: string; certPath: string } | undefined;
  relay: TokenDeskRelay;
  /** '' = the null sender <> */
  returnPath: string;
}

export interface TokenDeskRelay {
  host: string;
  port: number;
  security: 'starttls' | 'tls' | 'none';
  /** the account, its password in a file (read where the relay is opened) */
  user: string | undefined;
  passwordFile: string | undefined;
  timeoutSeconds: number;
}

/** A token lifetime longer than this is refused at start: the site refuses such tokens (STELLA_JWT_MAX_DAYS, 366 by default). */
const DESK_MAX_TTL_DAYS = 366;
const DURATION_UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** `30d`, `12h`, `90m`, `3600s`, `2w`, or plain seconds, as whole seconds. */
export function parseDurationSeconds(raw: string, name: string): number {
  const m = /^(\d{1,9})\s*([smhdw]?)$/i.exec(raw.trim());
  const n = m ? Number(m[1]) * DURATION_UNIT_S[(m[2] || 's').toLowerCase()]! : NaN;
  if (!(n >= 1)) throw new OukError('TOKEN_DESK_NOT_CONFIGURED', `${name}=${raw} is not a duration: give one like 30d, 12h, 90m or 3600s`);
  return n;
}

export function tokenDeskSettings(env: Env): TokenDeskSettings {
  const bad = (msg: string): OukError => new OukError('TOKEN_DESK_NOT_CONFIGURED', msg);
  const required = (name: string, what: string): string => {
    const v = (env[name] ?? '').trim();
    if (!v) throw bad(`${name} is not set: ${what}`);
    return v;
  };
  const whole = (name: string, dflt: number, min: number, max: number): number => {
    const raw = (env[name] ?? '').trim();
    if (raw === '') return dflt;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) throw bad(`${name}=${raw} is not a whole number between ${min} and ${max}`);
    return n;
  };
  const address = required('TOKEN_DESK_ADDRESS', 'set it to the address people write to for a token (e.g. token@example.org)').toLowerCase();
  const at = address.lastIndexOf('@');
  if (at < 1 || at === address.length - 1 || /\s|[<>]/.test(address)) throw bad(`TOKEN_DESK_ADDRESS=${address} is not an address like token@example.org`);
  const ttlSeconds = parseDurationSeconds(env.TOKEN_DESK_TTL || '30d', 'TOKEN_DESK_TTL');
  if (ttlSeconds > DESK_MAX_TTL_DAYS * 86400) throw bad(`TOKEN_DESK_TTL=${env.TOKEN_DESK_TTL}: longer than ${DESK_MAX_TTL_DAYS} days, which sites refuse (STELLA_JWT_MAX_DAYS)`);
  const domainLimits: Record<string, number> = {};
  for (const item of (env.TOKEN_DESK_DOMAIN_LIMITS ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-z0-9.-]+)=(\d{1,9})$/i.exec(item);
    if (!m) throw bad(`TOKEN_DESK_DOMAIN_LIMITS: "${item}" is not domain=N (e.g. gmail.com=2000)`);
    domainLimits[m[1]!.toLowerCase()] = Number(m[2]);
  }
  const tlsKey = env.TOKEN_DESK_TLS_KEY || undefined;
  const tlsCert = env.TOKEN_DESK_TLS_CERT || undefined;
  if (Boolean(tlsKey) !== Boolean(tlsCert)) throw bad('set both TOKEN_DESK_TLS_KEY and TOKEN_DESK_TLS_CERT (STARTTLS for senders), or neither');
  const security = (env.TOKEN_DESK_RELAY_TLS || 'starttls').toLowerCase();
  if (security !== 'starttls' && security !== 'tls' && security !== 'none') throw bad(`TOKEN_DESK_RELAY_TLS=${env.TOKEN_DESK_RELAY_TLS}: give starttls, tls or none`);
  const user = env.TOKEN_DESK_RELAY_USER || undefined;
  const passwordFile = env.TOKEN_DESK_RELAY_PASSWORD_FILE || undefined;
  if (Boolean(user) !== Boolean(passwordFile)) throw bad('set both TOKEN_DESK_RELAY_USER and TOKEN_DESK_RELAY_PASSWORD_FILE (the relay account), or neither');
  const returnPath = (env.TOKEN_DESK_RETURN_PATH ?? '').trim();
  if (returnPath && !/^[^\s@<>]+@[^\s@<>]+$/.test(returnPath)) throw bad(`TOKEN_DESK_RETURN_PATH=${returnPath} is not an address (leave it empty for the null sender <>)`);
  return {
    address,
    listenHost: env.TOKEN_DESK_HOST || '0.0.0.0',
    listenPort: whole('TOKEN_DESK_PORT', 2525, 0, 65535),
    name: env.TOKEN_DESK_NAME || address.slice(at + 1),
    keyPath: required('TOKEN_DESK_KEY', 'set it to the token signing key (PKCS#8 PEM; the sites verify with its public half, STELLA_JWT_PUBLIC_KEY)'),
    tier: whole('TOKEN_DESK_TIER', whole('QUOTA_TOKEN', 333, 1, 1_000_000), 1, 1_000_000),
    ttlSeconds,
    periodSeconds: parseDurationSeconds(env.TOKEN_DESK_PERIOD || '30d', 'TOKEN_DESK_PERIOD'),
    perAddress: whole('TOKEN_DESK_PER_ADDRESS', 1, 1, 1_000_000),
    perDomain: whole('TOKEN_DESK_PER_DOMAIN', 20, 1, 1_000_000),
    domainLimits,
    maxBytes: whole('TOKEN_DESK_MAX_BYTES', 128 * 1024, 1024, 64 * 1024 * 1024),
    maxClients: whole('TOKEN_DESK_MAX_CLIENTS', 50, 1, 100_000),
    maxPerIp: whole('TOKEN_DESK_MAX_PER_IP', 5, 1, 100_000),
    idleSeconds: whole('TOKEN_DESK_IDLE_SECONDS', 60, 1, 3600),
    sessionSeconds: whole('TOKEN_DESK_SESSION_SECONDS', 300, 1, 86400),
    mailsPerConnection: whole('TOKEN_DESK_MAILS_PER_CONNECTION', 5, 1, 1000),
    tls: tlsKey && tlsCert ? { keyPath: tlsKey, certPath: tlsCert } : undefined,
    relay: {
      host: required('TOKEN_DESK_RELAY_HOST', 'set it to the mail relay (smarthost) the replies go out through'),
      port: whole('TOKEN_DESK_RELAY_PORT', security === 'tls' ? 465 : 587, 1, 65535),
      security,
      user,
      passwordFile,
      timeoutSeconds: whole('TOKEN_DESK_RELAY_TIMEOUT_SECONDS', 30, 1, 600),
    },
    returnPath,
  };
}

/**
 * The publisher's upstreams (`stella feeds sync`, publisher/sync/), each the
 * analogue of its real default. Read only by the sync: a site never sets them.
 *
 *   NVD_API_URL                  the NVD CVE API 2.0 endpoint
 *   NVD_API_KEY                  sent in the `apiKey` header; raises NVD's limit from 5 to 50 requests a rolling 30 s
 *   OSV_URL                      the root of OSV's bucket (`<Ecosystem>/all.zip`, `modified_id.csv`, `<ID>.json`, `ecosystems.txt`)
 *   OSV_ECOSYSTEMS               comma-separated ecosystems to sync (default: every one `ecosystems.txt` lists)
 *   GHSA_GIT_URL                 the GitHub advisory database's repository, any URL git accepts (file:// too)
 *   GHSA_UNREVIEWED              true: also `advisories/unreviewed/` (default: only github-reviewed)
 *   KEV_URL                      CISA's KEV catalog (JSON)
 *   EPSS_URL                     FIRST's EPSS scores, the current daily csv.gz
 *   EUVD_API_URL                 ENISA's EUVD API base (`/search`)
 *   CSAF_PROVIDERS               a file listing the CSAF 2.0 providers to sync, one a line (publisher/sync/csaf-providers.ts)
 *   STELLA_SYNC_TIMEOUT_SECONDS  longest one request (a download included) may take (900)
 *   STELLA_SYNC_ATTEMPTS         tries of one request on 403/429/5xx or a cut connection (6)
 *   STELLA_SYNC_BACKOFF_MS       first backoff between tries, doubling, with jitter (2000)
 */
export interface SyncSettings {
  nvd: { url: string; apiKey: string | undefined };
  osv: { url: string; ecosystems: string[] | undefined };
  ghsa: { gitUrl: string; unreviewed: boolean };
  kevUrl: string;
  epssUrl: string;
  euvdUrl: string;
  /** The CSAF provider list's path (read by the sync); undefined: no CSAF provider is synced. */
  csafProviders: string | undefined;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

export const SYNC_DEFAULTS = {
  nvd: 'https://services.nvd.nist.gov/rest/json/cves/2.0',
  osv: 'https://osv-vulnerabilities.storage.googleapis.com/',
  ghsa: 'https://github.com/github/advisory-database.git',
  kev: 'https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json',
  epss: 'https://epss.cyentia.com/epss_scores-current.csv.gz',
  euvd: 'https://euvdservices.enisa.europa.eu/api',
} as const;

/** An http(s) URL from `name`: a file (queries allowed), an API base or a directory (a trailing `/` added) that requests are made under. */
function httpUrl(env: Env, name: string, dflt: string, kind: 'file' | 'api' | 'directory'): string {
  const raw = (env[name] ?? '').trim() || dflt;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${name}=${raw} is not a URL (default ${dflt})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${name}=${raw}: only http:// and https:// are supported`);
  if (u.hash || (kind !== 'file' && u.search)) throw new Error(`${name}=${raw}: give the address without a query or fragment`);
  if (kind === 'directory' && !u.pathname.endsWith('/')) u.pathname += '/';
  return u.toString();
}

export function syncSettings(env: Env): SyncSettings {
  const ecosystems = (env.OSV_ECOSYSTEMS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return {
    nvd: { url: httpUrl(env, 'NVD_API_URL', SYNC_DEFAULTS.nvd, 'api'), apiKey: (env.NVD_API_KEY ?? '').trim() || undefined },
    osv: { url: httpUrl(env, 'OSV_URL', SYNC_DEFAULTS.osv, 'directory'), ecosystems: ecosystems.length ? ecosystems : undefined },
    ghsa: { gitUrl: (env.GHSA_GIT_URL ?? '').trim() || SYNC_DEFAULTS.ghsa, unreviewed: bool(env, 'GHSA_UNREVIEWED') },
    kevUrl: httpUrl(env, 'KEV_URL', SYNC_DEFAULTS.kev, 'file'),
    epssUrl: httpUrl(env, 'EPSS_URL', SYNC_DEFAULTS.epss, 'file'),
    euvdUrl: httpUrl(env, 'EUVD_API_URL', SYNC_DEFAULTS.euvd, 'api'),
    csafProviders: (env.CSAF_PROVIDERS ?? '').trim() || undefined,
    timeoutMs: atLeast(env, 'STELLA_SYNC_TIMEOUT_SECONDS', 900, 1) * 1000,
    attempts: atLeast(env, 'STELLA_SYNC_ATTEMPTS', 6, 1),
    backoffMs: atLeast(env, 'STELLA_SYNC_BACKOFF_MS', 2000),
  };
}

/**
 * The publisher (`stella publish`, and `npm run publisher`, which runs it on a schedule):
 *
 *   OUK_MIRROR_PUBLIC_URL        the address the mirror directory is served at: the web seed of --torrent
 *   OUK_PUBLISH_SCHEDULE         the worker's job scheduler: an interval (`1d`) or a cron pattern (`30 2 * * *`)
 *   OUK_PUBLISH_FEEDS            the feeds directory the job syncs and builds from
 *   OUK_PUBLISH_MIRROR           the mirror directory it publishes into
 *   OUK_PUBLISH_KEYS             the kit keys, comma-separated paths (STELLA_KEY_PASSWORD decrypts them)
 *   OUK_PUBLISH_ROOTS            newer roots of trust to carry, comma-separated (optional)
 *   OUK_PUBLISH_FULL_EVERY, OUK_PUBLISH_KEEP_DAYS, OUK_PUBLISH_EXPIRES_DAYS   as --full-every, --keep-days, --expires-days
 *   OUK_PUBLISH_TORRENT          `true`: a .torrent per kit (needs OUK_MIRROR_PUBLIC_URL)
 *   OUK_PUBLISH_SOURCES          the sources the job syncs (default: all; `none`: publish only)
 *   OUK_PUBLISH_DEADLINE_SECONDS longest one job (sync and publish) may run (21600)
 */
export interface PublishEnv {
  publicUrl: string | undefined;
  schedule: MirrorSchedule | undefined;
  feedsDir: string | undefined;
  mirror: string | undefined;
  keys: string[];
  roots: string[];
  fullEvery: string | undefined;
  keepDays: string | undefined;
  expiresDays: string | undefined;
  torrent: boolean;
  sources: string | undefined;
  deadlineSeconds: number;
}

const list = (raw: string | undefined): string[] => (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const text = (raw: string | undefined): string | undefined => (raw ?? '').trim() || undefined;

export function publishEnv(env: Env): PublishEnv {
  const schedule = text(env.OUK_PUBLISH_SCHEDULE);
  return {
    publicUrl: text(env.OUK_MIRROR_PUBLIC_URL),
    schedule: schedule === undefined ? undefined : parseSchedule(schedule, 'OUK_PUBLISH_SCHEDULE'),
    feedsDir: text(env.OUK_PUBLISH_FEEDS),
    mirror: text(env.OUK_PUBLISH_MIRROR),
    keys: list(env.OUK_PUBLISH_KEYS),
    roots: list(env.OUK_PUBLISH_ROOTS),
    fullEvery: text(env.OUK_PUBLISH_FULL_EVERY),
    keepDays: text(env.OUK_PUBLISH_KEEP_DAYS),
    expiresDays: text(env.OUK_PUBLISH_EXPIRES_DAYS),
    torrent: bool(env, 'OUK_PUBLISH_TORRENT'),
    sources: text(env.OUK_PUBLISH_SOURCES),
    deadlineSeconds: positive(env, 'OUK_PUBLISH_DEADLINE_SECONDS', 6 * 3600),
  };
}

/**
 * Signing in through the site's directory (identity/ldap/, docs/operations.md "Signing in"):
 *
 *   OUK_LDAP_URL                    ldaps://host[:636], or ldap://host[:389] upgraded with StartTLS
 *   OUK_LDAP_STARTTLS               ldap:// only: `false` speaks plain LDAP, refused unless
 *   OUK_LDAP_ALLOW_PLAINTEXT        is `true` too (tests and development: passwords cross the wire in the clear)
 *   OUK_CA_FILE                     the site's CA (PEM) the directory's certificate must chain to (default: the system's)
 *   OUK_LDAP_BIND_DN, OUK_LDAP_BIND_PASSWORD_FILE   the service account that searches
 *   OUK_LDAP_USER_BASE              where people are searched (subtree)
 *   OUK_LDAP_USER_FILTER            default (|(uid={user})(sAMAccountName={user})); {user} is escaped (RFC 4515)
 *   OUK_LDAP_GROUP_BASE             groups by `member`/`uniqueMember` under it; unset: the person's `memberOf`
 *   OUK_LDAP_NESTED_GROUPS          auto (in-chain on Active Directory, a walk elsewhere) | in-chain | walk | off
 *   OUK_LDAP_GROUP_DEPTH            levels of groups-in-groups the walk follows (5)
 *   OUK_LDAP_MAX_GROUPS             groups one person may have before the sign-in is refused (500)
 *   OUK_LDAP_CONNECT_TIMEOUT_SECONDS, OUK_LDAP_TIMEOUT_SECONDS   connecting (5), each operation (10)
 *   OUK_ROLE_MAP                    groups to roles (identity/role-map.ts)
 */
export type NestedGroups = 'auto' | 'in-chain' | 'walk' | 'off';

export interface LdapSettings {
  url: string;
  /** ldap:// upgraded with StartTLS before anything else is sent (always, unless plaintext is allowed and asked for). */
  startTls: boolean;
  caFile: string | undefined;
  bindDn: string;
  bindPasswordFile: string;
  userBase: string;
  /** The filter with `{user}` where the escaped user name goes. */
  userFilter: string;
  groupBase: string | undefined;
  nestedGroups: NestedGroups;
  groupDepth: number;
  maxGroups: number;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** OUK_ROLE_MAP as written (identity/role-map.ts parses it). */
  roleMap: string;
}

export const DEFAULT_LDAP_USER_FILTER = '(|(uid={user})(sAMAccountName={user}))';
const NESTED_GROUPS: readonly NestedGroups[] = ['auto', 'in-chain', 'walk', 'off'];

/** The directory's settings, or undefined when OUK_LDAP_URL is not set (no directory sign-in). */
export function ldapSettings(env: Env): LdapSettings | undefined {
  const raw = (env.OUK_LDAP_URL ?? '').trim();
  if (!raw) return undefined;
  const bad = (msg: string): OukError => new OukError('DIRECTORY_NOT_CONFIGURED', msg);
  const required = (name: string, what: string): string => {
    const v = (env[name] ?? '').trim();
    if (!v) throw bad(`${name} is not set: ${what}`);
    return v;
  };
  const whole = (name: string, dflt: number, min: number, max: number): number => {
    const v = (env[name] ?? '').trim();
    if (v === '') return dflt;
    if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) throw bad(`${name}=${v} is not a whole number between ${min} and ${max}`);
    return Number(v);
  };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw bad(`OUK_LDAP_URL=${raw} is not a URL: give ldaps://host:636 or ldap://host:389 (StartTLS)`);
  }
  if (u.protocol !== 'ldaps:' && u.protocol !== 'ldap:') throw bad(`OUK_LDAP_URL=${raw}: give ldaps://host:636 or ldap://host:389 (StartTLS)`);
  if (!u.hostname || (u.pathname !== '' && u.pathname !== '/') || u.search || u.hash || u.username) {
    throw bad(`OUK_LDAP_URL=${raw}: give only the scheme, host and port (the bases are OUK_LDAP_USER_BASE and OUK_LDAP_GROUP_BASE)`);
  }
  const startTlsRaw = (env.OUK_LDAP_STARTTLS ?? '').trim();
  if (startTlsRaw && !/^(true|false)$/i.test(startTlsRaw)) throw bad(`OUK_LDAP_STARTTLS=${startTlsRaw}: give true or false`);
  const startTls = u.protocol === 'ldap:' && !/^false$/i.test(startTlsRaw);
  if (u.protocol === 'ldap:' && !startTls && !bool(env, 'OUK_LDAP_ALLOW_PLAINTEXT')) {
    throw bad(`OUK_LDAP_URL=${raw} with OUK_LDAP_STARTTLS=false would send passwords in the clear: use ldaps:// or StartTLS (for a test directory only, set OUK_LDAP_ALLOW_PLAINTEXT=true)`);
  }
  const userFilter = (env.OUK_LDAP_USER_FILTER ?? '').trim() || DEFAULT_LDAP_USER_FILTER;
  if (!userFilter.includes('{user}') || !userFilter.startsWith('(') || !userFilter.endsWith(')') || userFilter.length > 1024) {
    throw bad(`OUK_LDAP_USER_FILTER=${userFilter}: give a filter in parentheses with {user} where the user name goes, e.g. ${DEFAULT_LDAP_USER_FILTER}`);
  }
  const nested = ((env.OUK_LDAP_NESTED_GROUPS ?? '').trim().toLowerCase() || 'auto') as NestedGroups;
  if (!NESTED_GROUPS.includes(nested)) throw bad(`OUK_LDAP_NESTED_GROUPS=${env.OUK_LDAP_NESTED_GROUPS}: give ${NESTED_GROUPS.join(', ')}`);
  return {
    url: `${u.protocol}//${u.host}`,
    startTls,
    caFile: text(env.OUK_CA_FILE),
    bindDn: required('OUK_LDAP_BIND_DN', 'set it to the service account that searches the directory (e.g. cn=ouk-reader,ou=services,dc=example,dc=org)'),
    bindPasswordFile: required('OUK_LDAP_BIND_PASSWORD_FILE', "set it to a file holding the service account's password"),
    userBase: required('OUK_LDAP_USER_BASE', 'set it to where people are found (e.g. ou=people,dc=example,dc=org)'),
    userFilter,
    groupBase: text(env.OUK_LDAP_GROUP_BASE),
    nestedGroups: nested,
    groupDepth: whole('OUK_LDAP_GROUP_DEPTH', 5, 0, 50),
    maxGroups: whole('OUK_LDAP_MAX_GROUPS', 500, 1, 100_000),
    connectTimeoutMs: whole('OUK_LDAP_CONNECT_TIMEOUT_SECONDS', 5, 1, 300) * 1000,
    timeoutMs: whole('OUK_LDAP_TIMEOUT_SECONDS', 10, 1, 300) * 1000,
    roleMap: env.OUK_ROLE_MAP ?? '',
  };
}

/**
 * Single sign-on through the site's OpenID provider (identity/oidc/, api/oidc-routes.ts);
 * undefined when OUK_OIDC_ISSUER is not set (sign-in through the provider is off).
 *
 *   OUK_OIDC_ISSUER               the provider's issuer URL (discovery at its
 *                                 /.well-known/openid-configuration); https, or http on loopback only
 *   OUK_OIDC_CLIENT_ID            the client registered for OUK at the provider
 *   OUK_OIDC_CLIENT_SECRET_FILE   the file holding that client's secret
 *   OUK_OIDC_REDIRECT_URI         the callback registered at the provider; default
 *                                 OUK_PUBLIC_URL + /auth/oidc/callback
 *   OUK_PUBLIC_URL                the address people reach the API at (https://ouk.example.org)
 *   OUK_OIDC_GROUPS_CLAIM         the ID token claim listing the person's groups (groups)
 *   OUK_OIDC_SCOPES               the scopes asked for (openid profile); openid is always among them
 *   OUK_OIDC_DISPLAY_NAME         the provider's name on the sign-in page ("Sign in with <name>");
 *                                 default the issuer's host
 *   OUK_CA_FILE                   PEM bundle of the site's CA, trusted for an https issuer
 *                                 (shared with the directory client)
 */
export interface OidcSettings {
  issuer: string;
  /** OUK_OIDC_DISPLAY_NAME: the provider's name on the sign-in page ("Sign in with …"); default the issuer's host. */
  displayName: string;
  /** OUK_ROLE_MAP as written (identity/role-map.ts parses it): the groups claim maps to roles as the directory's groups do. */
  roleMap: string;
  clientId: string;
  clientSecretFile: string;
  redirectUri: string;
  groupsClaim: string;
  scopes: string;
  caFile: string | undefined;
}

function oidcUrl(raw: string, name: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OukError('USAGE', `${name}=${raw} is not a URL: set it to ${what}`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackUrl(raw))) {
    throw new OukError('USAGE', `${name}=${raw} must be an https:// URL (plain http only on loopback, for tests): set it to ${what}`);
  }
  if (url.username || url.password || url.hash) throw new OukError('USAGE', `${name}=${raw} must not carry a user, a password or a #fragment: set it to ${what}`);
  return url;
}

export function oidcSettings(env: Env): OidcSettings | undefined {
  const issuerRaw = (env.OUK_OIDC_ISSUER ?? '').trim();
  if (!issuerRaw) return undefined;
  const issuer = oidcUrl(issuerRaw, 'OUK_OIDC_ISSUER', "the provider's issuer (e.g. https://keycloak.example.org/realms/site)");
  const required = (name: string, what: string): string => {
    const v = (env[name] ?? '').trim();
    if (!v) throw new OukError('USAGE', `OUK_OIDC_ISSUER is set but ${name} is not: set it to ${what}`);
    return v;
  };
  const clientId = required('OUK_OIDC_CLIENT_ID', "the client id registered for OUK at the provider");
  const clientSecretFile = required('OUK_OIDC_CLIENT_SECRET_FILE', "the path of a file holding that client's secret");
  const redirectRaw = (env.OUK_OIDC_REDIRECT_URI ?? '').trim();
  const publicRaw = (env.OUK_PUBLIC_URL ?? '').trim();
  if (!redirectRaw && !publicRaw) {
    throw new OukError('USAGE', 'OUK_OIDC_ISSUER is set but neither OUK_OIDC_REDIRECT_URI nor OUK_PUBLIC_URL is: set OUK_PUBLIC_URL to the address people reach OUK at (the callback is its /auth/oidc/callback)');
  }
  const redirect = redirectRaw
    ? oidcUrl(redirectRaw, 'OUK_OIDC_REDIRECT_URI', "the callback registered at the provider, ending in /auth/oidc/callback")
    : new URL('auth/oidc/callback', oidcUrl(publicRaw, 'OUK_PUBLIC_URL', 'the address people reach OUK at').href.replace(/\/?$/, '/'));
  if (redirect.search) throw new OukError('USAGE', `OUK_OIDC_REDIRECT_URI=${redirectRaw} must not carry a query: set it to the callback, ending in /auth/oidc/callback`);
  const groupsClaim = (env.OUK_OIDC_GROUPS_CLAIM ?? '').trim() || 'groups';
  if (!/^[A-Za-z0-9_:.\/-]{1,128}$/.test(groupsClaim)) throw new OukError('USAGE', `OUK_OIDC_GROUPS_CLAIM=${groupsClaim} is not a claim name: set it to the ID token claim listing groups (e.g. groups, roles)`);
  const scopeList = (env.OUK_OIDC_SCOPES ?? '').split(/[\s,]+/).filter(Boolean);
  if (scopeList.some((s) => !/^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(s)) || scopeList.length > 16) {
    throw new OukError('USAGE', `OUK_OIDC_SCOPES=${env.OUK_OIDC_SCOPES} is not a list of scopes: set it like "openid profile groups"`);
  }
  const scopes = [...new Set(['openid', ...(scopeList.length ? scopeList : ['profile'])])].join(' ');
  const displayName = (env.OUK_OIDC_DISPLAY_NAME ?? '').trim() || issuer.host;
  // eslint-disable-next-line no-control-regex
  if (displayName.length > 64 || /[\u0000-\u001f\u007f]/.test(displayName)) throw new OukError('USAGE', `OUK_OIDC_DISPLAY_NAME is not a short name: set it to at most 64 printable characters (e.g. Keycloak)`);
  return {
    issuer: issuer.href,
    displayName,
    roleMap: env.OUK_ROLE_MAP ?? '',
    clientId,
    clientSecretFile,
    redirectUri: redirect.href,
    groupsClaim,
    scopes,
    caFile: (env.OUK_CA_FILE ?? '').trim() || undefined,
  };
}
