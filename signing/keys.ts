/**
 * Signing key pairs of each suite (suites/): generated as PKCS#8 PEM with an
 * SPKI PEM public key, the pair `stella ouk keygen --alg` writes as
 * cosign.key / cosign.pub. ECDSA P-256 and Ed25519 keys may be encrypted
 * (PKCS#8 with aes-256-cbc when a password is given); SM2 keys are written
 * plain, exactly as `openssl genpkey -algorithm SM2` writes them.
 */
import type { KeyObject } from 'node:crypto';
import { OukError } from '../lib/errors.ts';
import { readFailure, readSmallFile } from './small-file.ts';
import { describeKey, isSm2Key, parsePrivateKeyPem, Pkcs11Key, type Pkcs11Defaults, spkiPem, SUITES, suiteOf, type SuiteKey, type SuiteName } from './suites/index.ts';
import { sm2PrivatePem } from './suites/sm2-pem.ts';
import { MAX_KEY_FILE_BYTES } from './trusted-keys.ts';

export async function generateKeyPair(password?: string, alg: SuiteName = 'ecdsa-p256'): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const { privateKey, publicKey } = SUITES[alg].generate();
  if (isSm2Key(privateKey)) {
    if (password) throw new OukError('USAGE', 'SM2 keys are written as plain PKCS#8 PEM, as OpenSSL 3 writes them: unset STELLA_KEY_PASSWORD for --alg sm2 and protect cosign.key by its file mode (0600) or a hardware module');
    return { privateKeyPem: sm2PrivatePem(privateKey.d!, privateKey.publicPoint), publicKeyPem: spkiPem(publicKey) };
  }
  const node = privateKey as KeyObject;
  const privateKeyPem = password
    ? node.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: password })
    : node.export({ type: 'pkcs8', format: 'pem' });
  return { privateKeyPem: String(privateKeyPem), publicKeyPem: spkiPem(publicKey) };
}

/**
 * Loads a PEM private key (plain or encrypted PKCS#8, or SEC1) of a supported
 * suite, or — `path` a `pkcs11:` URI (RFC 7512) — a key inside a hardware
 * module, with the module and PIN from the URI or `pkcs11` (STELLA_PKCS11_MODULE,
 * STELLA_PKCS11_PIN).
 */
export async function loadPrivateKey(path: string, password?: string, pkcs11: Pkcs11Defaults = {}): Promise<SuiteKey> {
  if (path.startsWith('pkcs11:')) {
    try {
      return new Pkcs11Key(path, pkcs11);
    } catch (e) {
      throw new OukError('KEY_INVALID', `cannot use the hardware key ${path.replace(/pin-value=[^&]*/, 'pin-value=***')}: ${(e as Error).message}`, { cause: e });
    }
  }
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
  let key: SuiteKey;
  try {
    // A passphrase given for an unencrypted key is ignored by OpenSSL: harmless.
    key = parsePrivateKeyPem(text, password ?? '');
  } catch (e) {
    if (encrypted) {
      throw new OukError('KEY_INVALID', `cannot decrypt ${path}: wrong password — set STELLA_KEY_PASSWORD to the password the key was generated with`, { cause: e });
    }
    throw new OukError('KEY_INVALID', `${path} is not a PEM private key Stella can sign with (${(e as Error).message}): point --key at the cosign.key written by \`stella ouk keygen\``, { cause: e });
  }
  if (!suiteOf(key)) {
    throw new OukError('KEY_INVALID', `${path} is a ${describeKey(key)} key, not ECDSA P-256, Ed25519 or SM2: generate one with \`stella ouk keygen --alg\``);
  }
  return key;
}
