/**
 * Process configuration from the environment (see .env.example). Defaults are the
 * local stack's: Redis, PostgreSQL and s3rver on loopback, bucket `ouk`, API 8080,
 * state under `.stella/` in the working directory.
 */
import path from 'node:path';

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
  quotaAnon: number;
  quotaToken: number;
  quotaBannerAt: number;
  /** Redis key prefix of the quota counters (STELLA_QUOTA_PREFIX; tests use their own). */
  quotaPrefix: string;
  webhookToken: string | undefined;
  dashboardUser: string | undefined;
  dashboardPassword: string | undefined;
  warnAgeHours: number;
  stateDir: string;
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
    quotaAnon: int(env, 'QUOTA_ANON', 33),
    quotaToken: int(env, 'QUOTA_TOKEN', 333),
    quotaBannerAt: int(env, 'QUOTA_BANNER_AT', 200),
    quotaPrefix: env.STELLA_QUOTA_PREFIX || 'quota',
    webhookToken: env.OUK_WEBHOOK_TOKEN || undefined,
    dashboardUser: env.DASHBOARD_USER || undefined,
    dashboardPassword: env.DASHBOARD_PASSWORD || undefined,
    warnAgeHours: int(env, 'OUK_WARN_AGE_HOURS', 48),
    stateDir,
  };
}
