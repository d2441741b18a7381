/**
 * One connection to the directory for one sign-in: TLS from the first byte
 * (ldaps://) or after StartTLS (ldap://), the certificate checked against the
 * site's CA, every step bounded by a deadline of its own, and every socket
 * destroyed when the sign-in ends — a directory that stops answering halfway
 * through a handshake cannot hold a sign-in open.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Client, InvalidCredentialsError, ResultCodeError, NoSuchObjectError, SizeLimitExceededError, type Entry, type SearchOptions } from 'ldapts';
import type { LdapSettings } from '../../lib/config.ts';
import { directoryUnavailable } from './errors.ts';

export interface ConnectionSecrets {
  /** The site's CA (PEM), or undefined for the system's. */
  readonly ca: string | undefined;
}

export class DirectoryConnection {
  private readonly client: Client;
  private readonly sockets: net.Socket[] = [];
  private readonly tlsOptions: tls.ConnectionOptions;
  private opened = false;

  constructor(
    private readonly settings: LdapSettings,
    secrets: ConnectionSecrets,
  ) {
    const host = new URL(settings.url).hostname.replace(/^\[|\]$/g, '');
    this.tlsOptions = {
      ca: secrets.ca,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      servername: net.isIP(host) ? undefined : host,
    };
    const track = <S extends net.Socket>(s: S): S => {
      this.sockets.push(s);
      return s;
    };
    this.client = new Client({
      url: settings.url,
      connectTimeout: settings.connectTimeoutMs,
      timeout: settings.timeoutMs,
      // ldapts speaks TLS from the first byte whenever tlsOptions is given: only for ldaps://
      ...(settings.url.startsWith('ldaps:') ? { tlsOptions: this.tlsOptions } : {}),
      createConnection: ((...args: unknown[]) => track((net.connect as (...a: unknown[]) => net.Socket)(...args))) as typeof net.connect,
      createSecureConnection: ((...args: unknown[]) => track((tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args))) as typeof tls.connect,
    });
  }

  /** Connects (and upgrades with StartTLS when the settings say so). */
  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    if (this.settings.startTls) {
      await this.step('starting TLS (StartTLS)', this.settings.connectTimeoutMs + this.settings.timeoutMs, () => this.client.startTLS({ ...this.tlsOptions }));
    }
  }

  /** Binds as `dn`; false when the directory says the credentials are wrong (a wrong password, a locked or disabled account). */
  async bind(dn: string, password: string, what: string): Promise<boolean> {
    await this.open();
    try {
      await this.step(what, this.settings.connectTimeoutMs + this.settings.timeoutMs, () => this.client.bind(dn, password));
      return true;
    } catch (e) {
      if (e instanceof InvalidCredentialsError) return false;
      throw directoryUnavailable(this.settings.url, what, e);
    }
  }

  /**
   * The entries found. More than `sizeLimit` of them (SizeLimitExceededError) and a base that does not exist
   * (NoSuchObjectError) are ldapts' errors, for the caller to judge; anything else is DIRECTORY_UNAVAILABLE.
   */
  async search(base: string, options: SearchOptions & { sizeLimit: number }, what: string): Promise<Entry[]> {
    await this.open();
    const timeLimit = Math.max(1, Math.floor(this.settings.timeoutMs / 1000));
    try {
      const { searchEntries } = await this.step(what, this.settings.connectTimeoutMs + this.settings.timeoutMs, () => this.client.search(base, { timeLimit, ...options }));
      return searchEntries;
    } catch (e) {
      if (e instanceof SizeLimitExceededError || e instanceof NoSuchObjectError) throw e;
      throw directoryUnavailable(this.settings.url, what, e);
    }
  }

  /** The root DSE (the server's self-description), or undefined when it does not show one. */
  async rootDse(attributes: string[]): Promise<Entry | undefined> {
    try {
      const entries = await this.search('', { scope: 'base', filter: '(objectClass=*)', attributes, sizeLimit: 1 }, 'reading the root DSE');
      return entries[0];
    } catch (e) {
      if (e instanceof NoSuchObjectError) return undefined;
      throw directoryUnavailable(this.settings.url, 'reading the root DSE', e);
    }
  }

  /** Ends the session politely when it can, and destroys its sockets in any case. */
  async close(): Promise<void> {
    const done = this.client.unbind().catch(() => undefined);
    const bounded = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    await Promise.race([done, bounded]);
    for (const s of this.sockets) s.destroy();
  }

  /** `run` bounded by `ms`; a directory that does not answer in time, or answers with an error of the connection, is unavailable. */
  private async step<T>(what: string, ms: number, run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
        reject(Object.assign(new Error(`no answer within ${Math.round(ms / 1000)} s`), { code: 'ETIMEDOUT' }));
      }, ms);
    });
    try {
      return await Promise.race([run(), deadline]);
    } catch (e) {
      if (e instanceof ResultCodeError) throw e;
      throw directoryUnavailable(this.settings.url, what, e);
    } finally {
      clearTimeout(timer);
    }
  }
}
