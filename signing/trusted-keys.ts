/**
 * The host's trusted public keys: the publisher's `cosign.pub` files named by
 * OUK_TRUSTED_KEYS (or `--key`). A key is only ever trusted because the host
 * configured it, never because a bundle carries it. Each key is identified by its
 * Sigstore hint: base64 of the SHA-256 of its SPKI DER. A key is of any
 * signature suite (suites/: ECDSA P-256, Ed25519, SM2).
 */
import { createHash } from 'node:crypto';
import { OukError } from '../lib/errors.ts';
import { readFailure, readSmallFile } from './small-file.ts';
import { describeKey, parsePublicKeyPem, spkiDer, suiteOf, type SuiteKey } from './suites/index.ts';

export { describeKey } from './suites/index.ts';

export interface TrustedKey {
  path: string;
  key: SuiteKey;
  /** base64 SHA-256 of the SPKI DER, the Sigstore publicKey hint */
  hint: string;
}

/** Largest public-key file read: a PEM public key is a few hundred bytes. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

export const NO_TRUSTED_KEY_MESSAGE =
  "no trusted key configured: set OUK_TRUSTED_KEYS to the path(s) of the publisher's cosign.pub (or pass --key)";

/** The Sigstore public-key hint of a key: base64(SHA-256(SPKI DER)). */
export function keyHint(key: SuiteKey): string {
  return createHash('sha256').update(spkiDer(key)).digest('base64');
}

/** Parses a PEM public key (a private key PEM is refused: trust lists hold public keys only). */
export function trustedKeyFromPem(pem: string | Buffer, path: string): TrustedKey {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (/PRIVATE KEY-----/.test(text)) {
    throw new OukError('KEY_INVALID', `${path} is a private key: configure the publisher's public key (cosign.pub) as the trusted key, and keep cosign.key secret`);
  }
  let key: SuiteKey;
  try {
    key = parsePublicKeyPem(text);
  } catch (e) {
    throw new OukError('KEY_INVALID', `${path} is not a PEM public key (${(e as Error).message}): point it at the publisher's cosign.pub`, { cause: e });
  }
  if (!suiteOf(key)) {
    throw new OukError('KEY_INVALID', `${path} is a ${describeKey(key)} key, not ECDSA P-256, Ed25519 or SM2: kits are signed with keys of those suites (stella ouk keygen --alg) — use the publisher's public key`);
  }
  return { path, key, hint: keyHint(key) };
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
