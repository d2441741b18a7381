/**
 * Process configuration from the environment (see .env.example). Defaults are the
 * local stack's: Redis, PostgreSQL and s3rver on loopback, bucket `ouk`, API 8080,
 * state under `.stella/` in the working directory.
 */
import path from 'node:path';
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
  redisUrl: string;
  /** Key prefix for every BullMQ queue (tests use their own). */
  queuePrefix: string;
  databaseUrl: string;
  s3Endpoint: string;
  store: StoreConfig;
  bucket: string;
  trustedKeys: string[];
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
  webhookToken: string | undefined;
  dashboardUser: string | undefined;
  dashboardPassword: string | undefined;
  warnAgeHours: number;
  stateDir: string;
  /** STELLA_API_HOST: the address the API listens on (all interfaces by default). */
  apiHost: string;
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
  /** LOG_LEVEL (pino), undefined when unset. */
  logLevel: string | undefined;
  /** STELLA_DEBUG: the CLI prints stack traces. */
  debug: boolean;
  /** STELLA_KEY_PASSWORD: the password of an encrypted signing key. */
  keyPassword: string | undefined;
  /** SOURCE_DATE_EPOCH (seconds): a reproducible build's `created` time. */
  sourceDateEpoch: string | undefined;
  /** NO_COLOR (https://no-color.org) or TERM=dumb: plain terminal output. */
  noColour: boolean;
  /** The intranet mirror the `mirror` job pulls kits from (OUK_MIRROR_URL), undefined when unset. */
  mirror: MirrorConfig | undefined;
}

/**
 * The intranet mirror (OUK_MIRROR_URL): an http(s) directory holding kits,
 * their `.sig`/`.sigstore.json` and `index.json` (bundle/mirror-index.ts).
 *
 *   OUK_MIRROR_URL               the directory (a trailing `/` is added); its host:port is
 *                                the one extra host air-gap mode allows
 *   OUK_MIRROR_SCHEDULE          how often the cluster pulls: an interval (`90s`, `15m`,
 *                                `1h`, `1d`) or a 5/6-field cron pattern (default `1h`)
 *   OUK_MIRROR_TIMEOUT_SECONDS   longest one download may take (3600)
 *   OUK_MIRROR_WAIT_SECONDS      longest a round waits for one pulled kit to become
 *                                active before the next step of a chain (3600)
 */
export interface MirrorConfig {
  url: string;
  schedule: MirrorSchedule;
  downloadTimeoutSeconds: number;
  waitSeconds: number;
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
    waitSeconds: positive(env, 'OUK_MIRROR_WAIT_SECONDS', 3600),
  };
}

function positive(env: Env, name: string, dflt: number): number {
  const n = int(env, name, dflt);
  if (n <= 0) throw new Error(`${name}=${env[name]} must be more than 0`);
  return n;
}

type Env = Record<string, string | undefined>;

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

export function loadConfig(env: Env = process.env): Config {
  const s3Endpoint = env.S3_ENDPOINT || 'http://127.0.0.1:9000';
  const stateDir = path.resolve(env.STELLA_STATE_DIR || '.stella');
  // 5 GiB is S3's single-PUT ceiling: one part per object, which s3rver needs.
  const partSize = int(env, 'S3_PART_SIZE', 5 * 1024 * 1024 * 1024);
  return {
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    queuePrefix: env.OUK_QUEUE_PREFIX || 'ouk',
    databaseUrl: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    s3Endpoint,
    store: parseStoreEndpoint(s3Endpoint, env.S3_ACCESS_KEY || 'S3RVER', env.S3_SECRET_KEY || 'S3RVER', partSize),
    bucket: env.OUK_BUCKET || 'ouk',
    trustedKeys: (env.OUK_TRUSTED_KEYS || '').split(',').map((s) => s.trim()).filter(Boolean),
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
    webhookToken: env.OUK_WEBHOOK_TOKEN || undefined,
    dashboardUser: env.DASHBOARD_USER || undefined,
    dashboardPassword: env.DASHBOARD_PASSWORD || undefined,
    warnAgeHours: int(env, 'OUK_WARN_AGE_HOURS', 48),
    stateDir,
    apiHost: env.STELLA_API_HOST || '0.0.0.0',
    insecureWebhook: bool(env, 'STELLA_INSECURE_WEBHOOK'),
    shutdownSeconds: int(env, 'OUK_SHUTDOWN_SECONDS', 60),
    registryUrl: env.OUK_REGISTRY_URL || undefined,
    registryPrefix: registryPrefix(env.OUK_REGISTRY_PREFIX ?? 'stella/'),
    registryAccount: registryAccount(env),
    airgapAllow: (env.STELLA_AIRGAP_ALLOW || '').split(',').map((x) => x.trim()).filter(Boolean),
    logLevel: env.LOG_LEVEL || undefined,
    debug: Boolean(env.STELLA_DEBUG),
    keyPassword: env.STELLA_KEY_PASSWORD || undefined,
    sourceDateEpoch: env.SOURCE_DATE_EPOCH || undefined,
    noColour: Boolean(env.NO_COLOR) || env.TERM === 'dumb',
    mirror: mirrorConfig(env),
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
 *   OUK_GC_SECONDS / OUK_GC_GRACE_HOURS          garbage collection interval (3600) and how long failed or
 *                                                orphaned leftovers are kept (24)
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
  gcSeconds: number;
  gcGraceHours: number;
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

export function pipelineSettings(env: Env = process.env): PipelineSettings {
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
    gcSeconds: atLeast(env, 'OUK_GC_SECONDS', 3600, 1),
    gcGraceHours: atLeast(env, 'OUK_GC_GRACE_HOURS', 24, 0),
    keepCompletedSeconds: atLeast(env, 'OUK_KEEP_COMPLETED_DAYS', 7) * 86400,
    keepFailedSeconds: 30 * 86400,
    rescanConcurrency: atLeast(env, 'OUK_RESCAN_CONCURRENCY', 1, 1),
    rescanAttempts: atLeast(env, 'OUK_RESCAN_ATTEMPTS', 5, 1),
    rescanBackoffMs: atLeast(env, 'OUK_RESCAN_BACKOFF_MS', 2000),
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

export function syncSettings(env: Env = process.env): SyncSettings {
  const ecosystems = (env.OSV_ECOSYSTEMS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return {
    nvd: { url: httpUrl(env, 'NVD_API_URL', SYNC_DEFAULTS.nvd, 'api'), apiKey: (env.NVD_API_KEY ?? '').trim() || undefined },
    osv: { url: httpUrl(env, 'OSV_URL', SYNC_DEFAULTS.osv, 'directory'), ecosystems: ecosystems.length ? ecosystems : undefined },
    ghsa: { gitUrl: (env.GHSA_GIT_URL ?? '').trim() || SYNC_DEFAULTS.ghsa, unreviewed: bool(env, 'GHSA_UNREVIEWED') },
    kevUrl: httpUrl(env, 'KEV_URL', SYNC_DEFAULTS.kev, 'file'),
    epssUrl: httpUrl(env, 'EPSS_URL', SYNC_DEFAULTS.epss, 'file'),
    euvdUrl: httpUrl(env, 'EUVD_API_URL', SYNC_DEFAULTS.euvd, 'api'),
    timeoutMs: atLeast(env, 'STELLA_SYNC_TIMEOUT_SECONDS', 900, 1) * 1000,
    attempts: atLeast(env, 'STELLA_SYNC_ATTEMPTS', 6, 1),
    backoffMs: atLeast(env, 'STELLA_SYNC_BACKOFF_MS', 2000),
  };
}
