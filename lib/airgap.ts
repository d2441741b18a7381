/**
 * Air-gap mode (STELLA_AIRGAP=true): an in-process guard that refuses every
 * outbound connection except to the configured Redis, PostgreSQL and object
 * store (host AND port), before any packet leaves.
 *
 * It patches the points every Node network client goes through:
 * - net.Socket.prototype.connect (net.connect, tls.connect, http, https,
 *   http2, fetch/undici, pg, ioredis, minio all end there);
 * - dns.lookup / dns.resolve* / dns.Resolver and their promise forms, so
 *   not even a DNS query for another name is made;
 * - dgram sockets (send / connect).
 * A refused connection fails like a network error, with an OukError
 * AIRGAP_VIOLATION naming the host and port (`err.cause` under fetch).
 *
 * Listening is not egress: a lookup of an IP literal (the API's own listen
 * address `0.0.0.0`, `::`, `127.0.0.1`) or of `localhost` sends no query (the
 * resolver answers it from the literal or /etc/hosts), so it passes; only a
 * connection to such an address is checked against the allow list.
 *
 * Allowed: each configured service's host:port (Redis or its sentinels, PostgreSQL, the
 * store, and the intranet mirror OUK_MIRROR_URL when the operator names one); when that host is loopback
 * ("localhost", 127.0.0.0/8, ::1) every loopback spelling of it; the
 * addresses an allowed name resolves to; the site's OCI registry
 * (OUK_REGISTRY_URL's host:port) when one is configured; the site's directory
 * (OUK_LDAP_URL's host:port) when one is configured; loopback:STELLA_API_PORT (the
 * process's own API); unix sockets (no network); extra host:port pairs in
 * STELLA_AIRGAP_ALLOW (comma-separated) for a site's own services.
 *
 * Install it first thing at process start (CLI, workers, API):
 * `enforceAirgap(config)`, with the configuration the entry point resolved.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import type { Config } from './config.ts';
import { OukError } from './errors.ts';
import { isLoopback, LOOPBACK_NAMES, normaliseHost } from './loopback.ts';

export interface Endpoint {
  host: string;
  port: number;
  /** what it is, for messages and status */
  service: string;
}


function urlEndpoint(raw: string, service: string, defaultPort: number): Endpoint[] {
  try {
    const u = new URL(raw);
    const host = decodeURIComponent(u.hostname);
    if (!host) return []; // e.g. postgres:///db over a unix socket
    return [{ host: normaliseHost(host), port: u.port ? Number(u.port) : defaultPort, service }];
  } catch {
    return [];
  }
}

/** The endpoints air-gap mode allows, from the configuration. */
export function allowedEndpoints(
  config: Pick<Config, 'redisUrl' | 'databaseUrl' | 's3Endpoint' | 'apiPort'> & Partial<Pick<Config, 'airgapAllow' | 'mirror' | 'registryUrl' | 'ldapUrl' | 'redis'>>,
  extra: string[] = config.airgapAllow ?? [],
): Endpoint[] {
  const out: Endpoint[] = [
    ...urlEndpoint(config.redisUrl, 'Redis', 6379),
    // With Sentinel: the sentinels the operator named. The primary and replicas they announce are
    // not trusted from their answer: the site names its Redis nodes in STELLA_AIRGAP_ALLOW (docs/scale.md).
    ...(config.redis?.kind === 'sentinel' ? config.redis.sentinels.map((s) => ({ host: normaliseHost(s.host), port: s.port, service: 'Redis Sentinel' })) : []),
    ...urlEndpoint(config.databaseUrl, 'PostgreSQL', 5432),
    ...urlEndpoint(config.s3Endpoint, 'object store', config.s3Endpoint.startsWith('https:') ? 443 : 80),
    { host: '127.0.0.1', port: config.apiPort, service: 'this API' },
    // The site's own registry, because the operator configured it (OUK_REGISTRY_URL): exactly that host:port.
    ...(config.registryUrl ? urlEndpoint(config.registryUrl, 'OCI registry', config.registryUrl.startsWith('https:') ? 443 : 80) : []),
  ];
  // The site's directory, because the operator configured it for signing in (OUK_LDAP_URL): exactly that host:port.
  if (config.ldapUrl) out.push(...urlEndpoint(config.ldapUrl, 'directory (OUK_LDAP_URL)', config.ldapUrl.startsWith('ldaps:') ? 636 : 389));
  // The operator named the intranet mirror: its host:port, and nothing else, joins the list.
  if (config.mirror) out.push(...urlEndpoint(config.mirror.url, 'intranet mirror (OUK_MIRROR_URL)', config.mirror.url.startsWith('https:') ? 443 : 80));
  for (const item of extra) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(item);
    if (m) out.push({ host: normaliseHost(m[1]!), port: Number(m[2]), service: 'STELLA_AIRGAP_ALLOW' });
  }
  return out;
}

interface GuardState {
  allowed: Endpoint[];
  /** every name or address that may be resolved or connected to, with its ports */
  hosts: Map<string, Set<number>>;
  restore: (() => void)[];
}

let state: GuardState | null = null;

function allowHost(s: GuardState, host: string, port: number): void {
  const h = normaliseHost(host);
  const names = isLoopback(h) ? [...LOOPBACK_NAMES, h] : [h];
  for (const n of names) {
    let ports = s.hosts.get(n);
    if (!ports) s.hosts.set(n, (ports = new Set()));
    ports.add(port);
  }
}

function hostAllowed(s: GuardState, host: string, port: number): boolean {
  return s.hosts.get(normaliseHost(host))?.has(port) ?? false;
}

/**
 * Names whose getaddrinfo lookup never leaves the host: IP literals and
 * `localhost`. (Only for lookup: dns.resolve* and reverse always ask a DNS
 * server, whatever the name.)
 */
function localLookup(host: string): boolean {
  const h = normaliseHost(host);
  return net.isIP(h) !== 0 || h === 'localhost';
}

function nameAllowed(s: GuardState, host: string): boolean {
  return s.hosts.has(normaliseHost(host));
}

function violation(host: string, port?: number): OukError {
  const target = port === undefined ? `a DNS lookup of ${host}` : `a connection to ${host}:${port}`;
  const allowed = state ? [...new Set(state.allowed.map((e) => `${e.host}:${e.port} (${e.service})`))].join(', ') : '';
  return new OukError('AIRGAP_VIOLATION', `air-gap mode (STELLA_AIRGAP=true) refused ${target}: only the configured services may be reached [${allowed}]; if this host is one of your own services, add it to STELLA_AIRGAP_ALLOW`);
}

interface ConnectTarget {
  host?: string;
  port?: number;
  path?: string;
}

/** Reads the (overloaded) arguments of Socket#connect. */
function connectTarget(args: unknown[]): ConnectTarget {
  let first = args[0];
  if (Array.isArray(first)) first = first[0]; // net.connect's normalized [options, cb]
  if (first !== null && typeof first === 'object') {
    const o = first as { host?: unknown; port?: unknown; path?: unknown };
    if (typeof o.path === 'string' && o.path) return { path: o.path };
    return { host: typeof o.host === 'string' && o.host ? o.host : 'localhost', port: Number(o.port) };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first };
  return { host: typeof args[1] === 'string' ? args[1] : 'localhost', port: Number(first) };
}

type AnyFn = (...args: unknown[]) => unknown;

function lastFunctionIndex(args: unknown[]): number {
  for (let i = args.length - 1; i >= 0; i--) if (typeof args[i] === 'function') return i;
  return -1;
}

function patch<T extends object>(s: GuardState, target: T, name: string, make: (orig: AnyFn) => AnyFn): void {
  const rec = target as Record<string, unknown>;
  const orig = rec[name];
  if (typeof orig !== 'function') return;
  rec[name] = make(orig as AnyFn);
  s.restore.push(() => {
    rec[name] = orig;
  });
}

function refuseLookupCallback(host: string, args: unknown[]): void {
  const cb = [...args].reverse().find((a) => typeof a === 'function') as ((err: Error) => void) | undefined;
  const err = violation(host);
  if (cb) process.nextTick(() => cb(err));
  else throw err;
}

/** Installs the guard (idempotent: a second call replaces the allow list). */
export function installAirgapGuard(allowed: Endpoint[]): void {
  if (state) uninstallAirgapGuard();
  const s: GuardState = { allowed, hosts: new Map(), restore: [] };
  for (const e of allowed) allowHost(s, e.host, e.port);
  state = s;

  patch(s, net.Socket.prototype, 'connect', (orig) =>
    function guardedConnect(this: net.Socket, ...args: unknown[]) {
      const t = connectTarget(args);
      if (t.path !== undefined || hostAllowed(s, t.host!, t.port!)) return orig.apply(this, args);
      const err = violation(t.host!, t.port);
      // fail like a refused connection, asynchronously, so every client's error path sees it
      process.nextTick(() => this.destroy(err));
      return this;
    },
  );

  // dns: lookups of allowed names pass (and their answers become allowed); all else is refused
  const lookupGuard = (orig: AnyFn) =>
    function guardedLookup(this: unknown, ...args: unknown[]) {
      const host = String(args[0]);
      if (!nameAllowed(s, host)) {
        if (localLookup(host)) return orig.apply(this, args);
        return refuseLookupCallback(host, args);
      }
      const cbIndex = lastFunctionIndex(args);
      if (cbIndex === -1) return orig.apply(this, args);
      const cb = args[cbIndex] as (err: Error | null, address?: unknown, family?: number) => void;
      const ports = s.hosts.get(normaliseHost(host)) ?? new Set<number>();
      const wrapped = [...args];
      wrapped[cbIndex] = (err: Error | null, address?: unknown, family?: number) => {
        if (!err) {
          const list = Array.isArray(address) ? (address as { address: string }[]).map((a) => a.address) : [String(address)];
          for (const a of list) for (const p of ports) allowHost(s, a, p);
        }
        cb(err, address, family);
      };
      return orig.apply(this, wrapped);
    };
  patch(s, dns, 'lookup', lookupGuard);
  const resolveGuard = (orig: AnyFn) =>
    function guardedResolve(this: unknown, ...args: unknown[]) {
      const host = String(args[0]);
      if (!nameAllowed(s, host)) return refuseLookupCallback(host, args);
      return orig.apply(this, args);
    };
  const promiseGuard = (orig: AnyFn) =>
    function guardedPromise(this: unknown, ...args: unknown[]) {
      const host = String(args[0]);
      if (!nameAllowed(s, host)) return Promise.reject(violation(host));
      return orig.apply(this, args);
    };
  const promiseLookupGuard = (orig: AnyFn) =>
    function guardedPromiseLookup(this: unknown, ...args: unknown[]) {
      const host = String(args[0]);
      if (!nameAllowed(s, host) && !localLookup(host)) return Promise.reject(violation(host));
      return orig.apply(this, args);
    };
  const resolveNames = Object.keys(dns).filter((k) => /^resolve|^reverse$|^lookupService$/.test(k));
  for (const name of resolveNames) patch(s, dns, name, resolveGuard);
  for (const name of Object.keys(dns.Resolver.prototype).concat(Object.getOwnPropertyNames(dns.Resolver.prototype))) {
    if (/^resolve|^reverse$/.test(name)) patch(s, dns.Resolver.prototype, name, resolveGuard);
  }
  for (const target of new Set([dnsPromises, dns.promises])) {
    for (const name of Object.keys(target).filter((k) => /^resolve|^lookupService$|^reverse$/.test(k))) patch(s, target, name, promiseGuard);
    patch(s, target, 'lookup', promiseLookupGuard);
    for (const name of Object.getOwnPropertyNames(target.Resolver.prototype)) {
      if (/^resolve|^reverse$/.test(name)) patch(s, target.Resolver.prototype, name, promiseGuard);
    }
  }

  // UDP
  patch(s, dgram.Socket.prototype, 'send', (orig) =>
    function guardedSend(this: dgram.Socket, ...args: unknown[]) {
      // send(msg, [offset, length,] port, address, cb): port and address follow the message
      const nums = args.slice(1).filter((a) => typeof a === 'number') as number[];
      const address = args.slice(1).find((a) => typeof a === 'string') as string | undefined;
      const port = nums.length >= 3 ? nums[2] : nums[0];
      if (address === undefined || port === undefined) return orig.apply(this, args); // a connected socket: checked at connect
      if (hostAllowed(s, address, port)) return orig.apply(this, args);
      throw violation(address, port);
    },
  );
  patch(s, dgram.Socket.prototype, 'connect', (orig) =>
    function guardedUdpConnect(this: dgram.Socket, ...args: unknown[]) {
      const port = Number(args[0]);
      const address = typeof args[1] === 'string' ? args[1] : 'localhost';
      if (hostAllowed(s, address, port)) return orig.apply(this, args);
      throw violation(address, port);
    },
  );
  syncBuiltinESMExports();
}

export function uninstallAirgapGuard(): void {
  if (!state) return;
  for (const r of state.restore.reverse()) r();
  state = null;
  syncBuiltinESMExports();
}

/** Whether this process runs with the guard installed. */
export function airgapGuardInstalled(): boolean {
  return state !== null;
}

/** Installs the guard when the configuration says air-gapped; returns whether it did. */
export function enforceAirgap(config: Config): boolean {
  if (!config.airgap) return false;
  if (!state) installAirgapGuard(allowedEndpoints(config));
  return true;
}

export interface AirgapStatus {
  /** what the configuration asks for */
  mode: 'air-gapped' | 'connected';
  /** whether this process runs with the guard installed */
  guard: boolean;
  /** host:port (service) pairs allowed */
  allowed: string[];
  /** one line for `stella ouk status` */
  line: string;
}

export function airgapStatus(config: Config): AirgapStatus {
  const allowed = [...new Set((state?.allowed ?? allowedEndpoints(config)).map((e) => `${e.host}:${e.port} (${e.service})`))];
  const mode = config.airgap ? 'air-gapped' : 'connected';
  const line = config.airgap
    ? `air-gap: ON (STELLA_AIRGAP=true) — outbound connections limited to ${allowed.join(', ')}${state ? '' : ' [guard not installed in this process]'}`
    : 'air-gap: off (STELLA_AIRGAP is not true) — outbound connections are not restricted';
  return { mode, guard: state !== null, allowed, line };
}
