/**
 * ECDSA P-256 signing keys: generated as PKCS#8 PEM (encrypted PKCS#8 with
 * aes-256-cbc when a password is given) with an SPKI PEM public key, the pair
 * `stella ouk keygen` writes as cosign.key / cosign.pub.
 */
import { createPrivateKey, generateKeyPair as genKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { OukError } from '../lib/errors.ts';
import { readFailure, readSmallFile } from './small-file.ts';
import { MAX_KEY_FILE_BYTES, describeKey, isP256 } from './trusted-keys.ts';

const genKeyPairAsync = promisify(genKeyPair);

export async function generateKeyPair(password?: string): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const { privateKey, publicKey } = await genKeyPairAsync('ec', { namedCurve: 'P-256' });
  const privateKeyPem = password
    ? privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: password })
    : privateKey.export({ type: 'pkcs8', format: 'pem' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' });
  return { privateKeyPem: String(privateKeyPem), publicKeyPem: String(publicKeyPem) };
}

/** Loads a PEM private key (plain or encrypted PKCS#8, or SEC1) and checks it is ECDSA P-256. */
export async function loadPrivateKey(path: string, password?: string): Promise<KeyObject> {
  let raw: Buffer;
  try {
    raw = await readSmallFile(path, MAX_KEY_FILE_BYTES);
  } catch (e) {
    throw new OukError('KEY_INVALID', `cannot read the signing key ${path} (${readFailure(e)}): check the --key path and its permissions`, { cause: e });
  }
  const text = raw.toString('utf8');
  if (/ENCRYPTED COSIGN PRIVATE KEY/.test(text)) {
    throw new OukError('KEY_INVALID', `${path} is cosign's own encrypted key format (scrypt + secretbox), which stella cannot read: generate a key with \`stella ouk keygen\`, or export a PKCS#8 PEM key`);
  }
  const encrypted = /BEGIN ENCRYPTED PRIVATE KEY/.test(text);
  if (encrypted && !password) {
    throw new OukError('KEY_INVALID', `${path} is encrypted and no password was given: set STELLA_KEY_PASSWORD to the key's password`);
  }
  let key: KeyObject;
  try {
    // A passphrase given for an unencrypted key is ignored by OpenSSL: harmless.
    key = createPrivateKey({ key: text, format: 'pem', passphrase: password ?? '' });
  } catch (e) {
    if (encrypted) {
      throw new OukError('KEY_INVALID', `cannot decrypt ${path}: wrong password — set STELLA_KEY_PASSWORD to the password the key was generated with`, { cause: e });
    }
    throw new OukError('KEY_INVALID', `${path} is not a PEM private key (${(e as Error).message}): point --key at the cosign.key written by \`stella ouk keygen\``, { cause: e });
  }
  if (!isP256(key)) {
    throw new OukError('KEY_INVALID', `${path} is a ${describeKey(key)} key, not ECDSA P-256: generate one with \`stella ouk keygen\``);
  }
  return key;
}
