/**
 * Where Redis is: one server (REDIS_URL) or a Sentinel-watched primary
 * (REDIS_SENTINELS=host:port,… and REDIS_SENTINEL_NAME, the master's name in
 * the sentinels' configuration). Parsed once by lib/config.ts; every Redis
 * connection of every process is built from it by queue/connection.ts.
 *
 * With sentinels, REDIS_URL still gives what the data nodes need besides their
 * address: its password and database number (`redis://:PASS@ignored/2`); the
 * address comes from the sentinels, asked again on every reconnect, so after a
 * failover every process follows the new primary. REDIS_SENTINEL_PASSWORD is
 * the sentinels' own password when they require one.
 */
import { OukError } from './errors.ts';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'server'; url: string }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      /** REDIS_SENTINEL_NAME */
      name: string;
      /** the data nodes' password and db, from REDIS_URL */
      password: string | undefined;
      username: string | undefined;
      db: number;
      sentinelPassword: string | undefined;
    };

/** At most this many sentinels are named (a deployment has 3 or 5). */
export const MAX_SENTINELS = 16;

function usage(message: string): OukError {
  return new OukError('USAGE', message);
}

/** `host:port` or `[v6]:port`, port 1–65535; anything else is refused with a message naming it. */
export function parseHostPort(item: string, what: string): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(item);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw usage(`${what}: "${item.slice(0, 80)}" is not host:port (e.g. 10.0.0.5:26379)`);
  return { host: m[1] ?? m[2]!, port };
}

/** The variables, as lib/config.ts reads them from the process's environment. */
export interface RedisVariables {
  REDIS_URL?: string | undefined;
  REDIS_SENTINELS?: string | undefined;
  REDIS_SENTINEL_NAME?: string | undefined;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
}

export function parseRedisTarget(env: RedisVariables): RedisTarget {
  const url = env.REDIS_URL || 'redis://127.0.0.1:6379';
  const raw = (env.REDIS_SENTINELS ?? '').trim();
  if (!raw) return { kind: 'server', url };
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length > MAX_SENTINELS) throw usage(`REDIS_SENTINELS names ${items.length} sentinels; at most ${MAX_SENTINELS} are taken (a deployment runs 3 or 5)`);
  const sentinels = items.map((i) => parseHostPort(i, 'REDIS_SENTINELS'));
  const name = (env.REDIS_SENTINEL_NAME ?? '').trim();
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) {
    throw usage(`REDIS_SENTINELS is set, so REDIS_SENTINEL_NAME must name the monitored primary (the name in the sentinels' "sentinel monitor NAME …" line, e.g. mymaster)`);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw usage(`REDIS_URL="${url.slice(0, 80)}" is not a URL (with REDIS_SENTINELS it gives the nodes' password and db: redis://:PASSWORD@sentinel/0)`);
  }
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText ? Number(dbText) : 0;
  if (!Number.isInteger(db) || db < 0 || db > 255) throw usage(`REDIS_URL's database number "${dbText.slice(0, 20)}" is not 0–255`);
  return {
    kind: 'sentinel',
    sentinels,
    name,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    db,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
  };
}

/** For logs and messages: the URL without its password, or the sentinels and the name. */
export function describeRedisTarget(t: RedisTarget): string {
  if (t.kind === 'server') {
    try {
      const u = new URL(t.url);
      if (u.password) u.password = '***';
      return u.toString();
    } catch {
      return 'REDIS_URL (unparseable)';
    }
  }
  return `sentinel ${t.name} via ${t.sentinels.map((s) => `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`).join(',')}`;
}
