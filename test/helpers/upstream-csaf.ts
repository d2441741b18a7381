/**
 * Loopback CSAF 2.0 providers (OASIS CSAF 2.0 section 7, the layouts of
 * ../shared/upstream/csaf) serving real documents of ../shared/feeds-extra/csaf,
 * read by path, signed with an OpenPGP key made by the caller:
 *
 *   /<provider>/.well-known/csaf/provider-metadata.json
 *   /<provider>/.well-known/csaf/openpgp/key.asc          the public key
 *   directory distribution: …/csaf/white/changes.csv, index.txt,
 *       white/<year>/<name>.json(.sha512|.sha256|.asc)   (Requirements 11–13, 18, 19)
 *   ROLIE distribution: /<provider>/white/feed-tlp-white.json with entries
 *       linking self, hash and signature; documents in /<provider>/white/<year>/
 *
 * Hashes and signatures are made on the fly from the bytes served, so a
 * document changed between two syncs stays consistent; faults break them on
 * purpose (a wrong digest, a signature over other bytes), queue statuses
 * (a 503 then success), list documents that do not exist and write the real
 * defects (unsorted, unquoted changes.csv rows, zone-less times, `ref` for
 * `rel`, a directory_url without its trailing slash). Every answer has an
 * ETag (If-None-Match: 304). Every request is logged.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { sharedDir } from './services.ts';

export interface PgpKey {
  privateKey: openpgp.PrivateKey;
  armoredPublic: string;
  fingerprint: string;
}

export async function makePgpKey(name = 'Test CSAF provider'): Promise<PgpKey> {
  const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name, email: 'csaf@example.org' }], format: 'armored' });
  const priv = await openpgp.readPrivateKey({ armoredKey: privateKey });
  return { privateKey: priv, armoredPublic: publicKey, fingerprint: priv.getFingerprint().toUpperCase() };
}

export interface ServedDoc {
  /** Its path under the distribution: `<year>/<name>.json`. */
  rel: string;
  body: Buffer;
  /** The time the listing gives, written as is (a zone-less one is a defect). */
  time: string;
  /** Its hash and signature are broken on purpose. */
  badHash?: boolean;
  badSignature?: boolean;
}

export interface ProviderSpec {
  name: string;
  kind: 'directory' | 'rolie';
  docs: ServedDoc[];
  key: PgpKey;
  /** The fingerprint the metadata names (default: the key's). */
  fingerprint?: string;
  /** Entries index.txt lists that do not exist (directory). */
  missing?: string[];
  /** changes.csv rows as the spec says (quoted, newest first), or as some providers write them. */
  changesStyle?: 'spec' | 'unsorted-unquoted';
  /** ROLIE: entries whose links say `ref` instead of `rel`. */
  refInsteadOfRel?: string[];
}

export interface CsafFault {
  /** Requests whose path ends so. */
  pathEnds: string;
  times: number;
  status: number;
}

export interface CsafRequest {
  path: string;
  status: number;
}

/** `<year of initial_release_date>/<file name>` (Requirement 11). */
export function sharedCsafDoc(file: string, time?: string): ServedDoc {
  const body = readFileSync(path.join(sharedDir, 'feeds-extra/csaf', file));
  const doc = JSON.parse(body.toString('utf8')) as { document: { tracking: { initial_release_date: string; current_release_date: string } } };
  return { rel: `${doc.document.tracking.initial_release_date.slice(0, 4)}/${path.basename(file)}`, body, time: time ?? doc.document.tracking.current_release_date };
}

export class CsafWorld {
  readonly log: CsafRequest[] = [];
  readonly faults: CsafFault[] = [];
  readonly providers = new Map<string, ProviderSpec>();
  private server!: http.Server;
  base = '';
  private sigs = new Map<string, string>();

  static async start(providers: ProviderSpec[]): Promise<CsafWorld> {
    const w = new CsafWorld();
    for (const p of providers) w.providers.set(p.name, p);
    w.server = http.createServer((req, res) => {
      w.handle(req, res).catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
    await new Promise<void>((resolve) => w.server.listen(0, '127.0.0.1', resolve));
    w.base = `http://127.0.0.1:${(w.server.address() as AddressInfo).port}`;
    return w;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  metadataUrl(name: string): string {
    return `${this.base}/${name}/.well-known/csaf/provider-metadata.json`;
  }

  /** The provider list CSAF_PROVIDERS names. */
  providerList(names: string[] = [...this.providers.keys()]): string {
    return `# CSAF providers of the test\n${names.map((n) => `${n}  ${this.metadataUrl(n)}`).join('\n')}\n`;
  }

  /** Documents requested (their .json, not hashes or signatures), after log index `mark`. */
  documentsAsked(mark = 0): string[] {
    return this.log.slice(mark).filter((r) => r.path.endsWith('.json') && !/provider-metadata|feed-tlp/.test(r.path)).map((r) => r.path);
  }

  private docDir(p: ProviderSpec): string {
    return p.kind === 'directory' ? `/${p.name}/.well-known/csaf/white/` : `/${p.name}/white/`;
  }

  private metadata(p: ProviderSpec): unknown {
    const dist = p.kind === 'directory'
      ? { directory_url: `${this.base}${this.docDir(p)}`.replace(/\/$/, '') } // the trailing slash missing: a real defect
      : { rolie: { feeds: [{ summary: 'TLP:WHITE advisories', tlp_label: 'WHITE', url: `${this.base}/${p.name}/white/feed-tlp-white.json` }] } };
    return {
      canonical_url: this.metadataUrl(p.name),
      distributions: [dist],
      last_updated: '2026-11-30T00:00:00Z',
      list_on_CSAF_aggregators: true,
      metadata_version: '2.0',
      mirror_on_CSAF_aggregators: true,
      public_openpgp_keys: [{ fingerprint: p.fingerprint ?? p.key.fingerprint, url: `${this.base}/${p.name}/.well-known/csaf/openpgp/key.asc` }],
      publisher: { category: 'vendor', name: `Test provider ${p.name}`, namespace: `https://${p.name}.example` },
      role: 'csaf_trusted_provider',
    };
  }

  private changesCsv(p: ProviderSpec): string {
    const rows = [...p.docs].sort((a, b) => Date.parse(b.time.endsWith('Z') || /[+-]\d\d:\d\d$/.test(b.time) ? b.time : `${b.time}Z`) - Date.parse(a.time.endsWith('Z') || /[+-]\d\d:\d\d$/.test(a.time) ? a.time : `${a.time}Z`));
    if (p.changesStyle === 'unsorted-unquoted') {
      // juice-shop's form: unquoted, in no order (the oldest first, the rest after)
      const moved = [rows.at(-1)!, ...rows.slice(0, -1)];
      return moved.map((d, i) => (i % 2 === 0 ? `${d.rel},${d.time}` : `"${d.rel}","${d.time}"`)).join('\n') + '\n';
    }
    return rows.map((d) => `"${d.rel}","${d.time}"`).join('\n') + '\n';
  }

  private rolieFeed(p: ProviderSpec): unknown {
    const dir = `${this.base}${this.docDir(p)}`;
    return {
      feed: {
        id: `${p.name}-feed-tlp-white`,
        title: `${p.name} CSAF feed (TLP:WHITE)`,
        link: [{ rel: 'self', href: `${dir}feed-tlp-white.json` }],
        category: [{ scheme: 'urn:ietf:params:rolie:category:information-type', term: 'csaf' }],
        updated: '2026-11-30T00:00:00Z',
        entry: p.docs.map((d) => {
          const r = p.refInsteadOfRel?.includes(d.rel) ? 'ref' : 'rel';
          const href = `${dir}${d.rel}`;
          return {
            id: d.rel.replace(/^.*\//, '').replace(/\.json$/, ''),
            title: d.rel,
            link: [
              { rel: 'self', href },
              { [r]: 'hash', href: `${href}.sha512` },
              { [r]: 'signature', href: `${href}.asc` },
            ],
            published: d.time,
            updated: d.time,
            content: { type: 'application/json', src: href },
            format: { schema: 'https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json', version: '2.0' },
          };
        }),
      },
    };
  }

  private async signature(p: ProviderSpec, d: ServedDoc): Promise<string> {
    const bytes = d.badSignature ? Buffer.concat([d.body, Buffer.from(' ')]) : d.body;
    const k = createHash('sha256').update(bytes).digest('hex') + p.key.fingerprint;
    let s = this.sigs.get(k);
    if (!s) {
      s = (await openpgp.sign({ message: await openpgp.createMessage({ binary: new Uint8Array(bytes) }), signingKeys: p.key.privateKey, detached: true, format: 'armored' })) as string;
      this.sigs.set(k, s);
    }
    return s;
  }

  private async answer(pathname: string): Promise<{ status: number; body?: string | Buffer; type?: string }> {
    const name = pathname.split('/')[1] ?? '';
    const p = this.providers.get(name);
    if (!p) return { status: 404 };
    const rest = pathname.slice(name.length + 1);
    const json = (v: unknown): { status: number; body: string; type: string } => ({ status: 200, body: JSON.stringify(v, null, 2), type: 'application/json' });
    if (rest === '/.well-known/csaf/provider-metadata.json') return json(this.metadata(p));
    if (rest === '/.well-known/csaf/openpgp/key.asc') return { status: 200, body: p.key.armoredPublic, type: 'application/pgp-keys' };
    const dir = this.docDir(p);
    if (!pathname.startsWith(dir)) return { status: 404 };
    const file = pathname.slice(dir.length);
    if (p.kind === 'directory' && file === 'changes.csv') return { status: 200, body: this.changesCsv(p), type: 'text/csv' };
    if (p.kind === 'directory' && file === 'index.txt') return { status: 200, body: [...p.docs.map((d) => d.rel), ...(p.missing ?? [])].sort().join('\n') + '\n', type: 'text/plain' };
    if (p.kind === 'rolie' && file === 'feed-tlp-white.json') return json(this.rolieFeed(p));
    const m = /^(.*\.json)(\.sha256|\.sha512|\.asc)?$/.exec(file);
    const d = m ? p.docs.find((x) => x.rel === m[1]) : undefined;
    if (!m || !d) return { status: 404 };
    if (!m[2]) return { status: 200, body: d.body, type: 'application/json' };
    if (m[2] === '.asc') return { status: 200, body: await this.signature(p, d), type: 'application/pgp-signature' };
    const alg = m[2].slice(1);
    const digest = createHash(alg).update(d.badHash ? Buffer.concat([d.body, Buffer.from('x')]) : d.body).digest('hex');
    return { status: 200, body: `${digest}  ${path.basename(d.rel)}\n`, type: 'text/plain' };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const fault = this.faults.find((f) => f.times > 0 && pathname.endsWith(f.pathEnds));
    if (fault) {
      fault.times--;
      this.log.push({ path: pathname, status: fault.status });
      res.writeHead(fault.status, { 'content-type': 'text/plain' });
      res.end('Service Unavailable');
      return;
    }
    const a = await this.answer(pathname);
    // every answer carries its ETag; a request with the same one gets a 304 without a body
    const etag = a.status === 200 ? `"${createHash('sha256').update(a.body ?? '').digest('hex').slice(0, 32)}"` : null;
    const status = etag && req.headers['if-none-match'] === etag ? 304 : a.status;
    this.log.push({ path: pathname, status });
    res.writeHead(status, { ...(a.type ? { 'content-type': a.type } : {}), ...(etag ? { etag } : {}) });
    res.end(status === 304 ? '' : (a.body ?? ''));
  }
}
