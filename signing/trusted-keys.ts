/**
 * The host's trusted public keys: the publisher's `cosign.pub` files named by
 * OUK_TRUSTED_KEYS (or `--key`). A key is only ever trusted because the host
 * configured it, never because a bundle carries it. Each key is identified by its
 * Sigstore hint: base64 of the SHA-256 of its SPKI DER.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { OukError } from '../lib/errors.ts';
import { readFailure, readSmallFile } from './small-file.ts';

export interface TrustedKey {
  path: string;
  key: KeyObject;
  /** base64 SHA-256 of the SPKI DER, the Sigstore publicKey hint */
  hint: string;
}

/** Largest public-key file read: a PEM public key is a few hundred bytes. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

export const NO_TRUSTED_KEY_MESSAGE =
  "no trusted key configured: set OUK_TRUSTED_KEYS to the path(s) of the publisher's cosign.pub (or pass --key)";

/** The Sigstore public-key hint of a key: base64(SHA-256(SPKI DER)). */
export function keyHint(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Checks that a key is ECDSA on P-256, the only curve cosign blob keys use here. */
export function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** Parses a PEM public key (a private key PEM is refused: trust lists hold public keys only). */
export function trustedKeyFromPem(pem: string | Buffer, path: string): TrustedKey {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (/PRIVATE KEY-----/.test(text)) {
    throw new OukError('KEY_INVALID', `${path} is a private key: configure the publisher's public key (cosign.pub) as the trusted key, and keep cosign.key secret`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (e) {
    throw new OukError('KEY_INVALID', `${path} is not a PEM public key (${(e as Error).message}): point it at the publisher's cosign.pub`, { cause: e });
  }
  if (!isP256(key)) {
    throw new OukError('KEY_INVALID', `${path} is a ${describeKey(key)} key, not ECDSA P-256: bundles are signed with cosign P-256 keys — use the publisher's cosign.pub`);
  }
  return { path, key, hint: keyHint(key) };
}

export function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType} ${curve}` : String(key.asymmetricKeyType);
}

export async function loadTrustedKeys(paths: string[]): Promise<TrustedKey[]> {
  const list = paths.map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) throw new OukError('KEY_NOT_TRUSTED', NO_TRUSTED_KEY_MESSAGE);
  const keys: TrustedKey[] = [];
  for (const p of list) {
    let raw: Buffer;
    try {
      raw = await readSmallFile(p, MAX_KEY_FILE_BYTES);
    } catch (e) {
      throw new OukError('KEY_INVALID', `cannot read the trusted key ${p} (${readFailure(e)}): check the path in OUK_TRUSTED_KEYS / --key and its permissions`, { cause: e });
    }
    const k = trustedKeyFromPem(raw, p);
    if (!keys.some((t) => t.hint === k.hint)) keys.push(k);
  }
  return keys;
}

/**
 * The trusted keys a service (API, worker) starts with: it refuses to start
 * when none is configured or one cannot be read, so a host never runs on a
 * default trust anchor and a bad path shows at start, not at the first import.
 */
export async function requireTrustedKeys(paths: string[]): Promise<TrustedKey[]> {
  if (paths.map((p) => p.trim()).filter(Boolean).length === 0) {
    throw new OukError(
      'KEY_NOT_TRUSTED',
      "OUK_TRUSTED_KEYS is not set: kits are verified only against keys this host configures, and none is trusted by default — set OUK_TRUSTED_KEYS to the path(s) of the publisher's cosign.pub (compose: put it in OUK_KEYS_DIR, mounted at /keys; `npm run dev:up` configures a development key)",
    );
  }
  return loadTrustedKeys(paths);
}
