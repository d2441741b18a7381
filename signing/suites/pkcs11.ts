/**
 * Kit keys that never leave a hardware module: a private key named by an
 * RFC 7512 PKCS#11 URI (`pkcs11:token=stella;object=kit-1`, optionally
 * `id=%01`, `?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=…`) signs
 * inside the token. The module is the URI's `module-path` or
 * STELLA_PKCS11_MODULE; the PIN the URI's `pin-value`, STELLA_PKCS11_PIN, or
 * `pin-source=file:…` (a file holding it). Only ECDSA P-256 keys: the token
 * signs the 32-byte SHA-256 digest with CKM_ECDSA, the same signature a key
 * file makes, so sites verify with the exported public key as usual.
 *
 * The module is driven through OpenSC's `pkcs11-tool` (Debian's `opensc`),
 * which loads the vendor's PKCS#11 library: no native addon to build. The
 * public key is read from the token once; the private key is never read (a
 * token key generated with `pkcs11-tool --keypairgen` is sensitive and not
 * extractable).
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { processEnvironment } from '../../lib/config.ts';

const PIN_VARIABLE = 'STELLA_PKCS11_TOOL_PIN';

export interface Pkcs11Defaults {
  /** STELLA_PKCS11_MODULE */
  module?: string | undefined;
  /** STELLA_PKCS11_PIN */
  pin?: string | undefined;
}

export interface Pkcs11Uri {
  token?: string;
  object?: string;
  /** Raw CKA_ID bytes. */
  id?: Buffer;
  modulePath?: string;
  pinValue?: string;
  pinSource?: string;
}

/** Errors here are plain Errors with the operator's words; callers wrap them (KEY_INVALID). */
export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!uri.startsWith('pkcs11:') || uri.length > 2048) throw new Error('not a pkcs11: URI (RFC 7512)');
  const [pathPart, query = ''] = uri.slice('pkcs11:'.length).split('?', 2) as [string, string | undefined];
  const out: Pkcs11Uri = {};
  const decode = (v: string): Buffer => {
    if (/%(?![0-9a-fA-F]{2})/.test(v)) throw new Error(`bad percent-encoding in "${v}"`);
    return Buffer.from(v.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  };
  for (const attr of pathPart.split(';').filter(Boolean)) {
    const eq = attr.indexOf('=');
    if (eq < 1) throw new Error(`"${attr}" is not name=value`);
    const name = attr.slice(0, eq);
    const value = decode(attr.slice(eq + 1));
    if (name === 'token') out.token = value.toString('utf8');
    else if (name === 'object') out.object = value.toString('utf8');
    else if (name === 'id') out.id = value;
    else if (name === 'type' && value.toString() !== 'private') throw new Error('type must be private: the signing key');
  }
  for (const attr of query.split('&').filter(Boolean)) {
    const eq = attr.indexOf('=');
    if (eq < 1) throw new Error(`"${attr}" is not name=value`);
    const name = attr.slice(0, eq);
    const value = decode(attr.slice(eq + 1)).toString('utf8');
    if (name === 'module-path') out.modulePath = value;
    else if (name === 'pin-value') out.pinValue = value;
    else if (name === 'pin-source') out.pinSource = value;
  }
  if (!out.object && !out.id) throw new Error('it names no key: give object=LABEL or id=%XX');
  return out;
}

export class Pkcs11Key {
  readonly kind = 'pkcs11';
  readonly type = 'private';
  readonly uri: string;
  /** The token's public key (ECDSA P-256), read from the token. */
  readonly publicKey: KeyObject;
  private readonly args: string[];
  private readonly pin: string;

  constructor(uri: string, defaults: Pkcs11Defaults) {
    const u = parsePkcs11Uri(uri);
    const module = u.modulePath ?? defaults.module;
    if (!module) throw new Error('no PKCS#11 module: set STELLA_PKCS11_MODULE (e.g. /usr/lib/softhsm/libsofthsm2.so) or module-path in the URI');
    let pin = u.pinValue ?? defaults.pin;
    if (u.pinSource) pin = readFileSync(u.pinSource.replace(/^file:/, ''), 'utf8').replace(/\r?\n$/, '');
    if (!pin) throw new Error('no PIN: set STELLA_PKCS11_PIN, or pin-value / pin-source in the URI');
    this.uri = uri.replace(/pin-value=[^&]*/, 'pin-value=***');
    this.pin = pin;
    this.args = ['--module', module, ...(u.token ? ['--token-label', u.token] : []), ...(u.object ? ['--label', u.object] : []), ...(u.id ? ['--id', u.id.toString('hex')] : [])];
    const der = this.tool(['--read-object', '--type', 'pubkey'], false);
    this.publicKey = createPublicKey({ key: der, format: 'der', type: 'spki' });
    if (this.publicKey.asymmetricKeyType !== 'ec' || this.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error('the token key is not ECDSA P-256: only P-256 keys sign in a module');
    }
  }

  /** CKM_ECDSA over a 32-byte digest, inside the token: the DER signature. */
  signDigest(digest: Buffer): Buffer {
    return this.tool(['--sign', '--mechanism', 'ECDSA', '--signature-format', 'openssl'], true, digest);
  }

  signMessage(message: Buffer): Buffer {
    return this.signDigest(createHash('sha256').update(message).digest());
  }

  /**
   * Runs pkcs11-tool with `input` as its -i file and returns its -o file (a
   * private temporary directory: the child's stdio are sockets, which
   * /dev/stdin and /dev/stdout cannot open).
   */
  private tool(args: string[], login: boolean, input?: Buffer): Buffer {
    const dir = mkdtempSync(path.join(tmpdir(), 'stella-pkcs11-'));
    try {
      const files = { in: path.join(dir, 'in'), out: path.join(dir, 'out') };
      if (input) writeFileSync(files.in, input, { mode: 0o600 });
      this.run([...args, ...(input ? ['-i', files.in] : []), '-o', files.out], login);
      return readFileSync(files.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private run(args: string[], login: boolean): void {
    try {
      // The PIN goes by the child's environment (`--pin env:VAR`), never on its command line.
      execFileSync('pkcs11-tool', [...this.args, ...(login ? ['--login', '--pin', `env:${PIN_VARIABLE}`] : []), ...args], {
        env: { ...processEnvironment(), [PIN_VARIABLE]: this.pin },
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 20,
        timeout: 60_000,
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      if (err.code === 'ENOENT') throw new Error('pkcs11-tool is not installed: install Debian\'s opensc (apt-get install opensc)');
      const why = (err.stderr?.toString('utf8') ?? err.message).trim().split('\n').slice(-2).join(' ');
      throw new Error(`the PKCS#11 module refused (${why}): check the URI's token and object, the PIN and the module`);
    }
  }
}
