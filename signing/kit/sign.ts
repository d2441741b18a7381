/**
 * The publisher's kit keys: loaded once (each a PKCS#8 PEM of a suite: ECDSA P-256, Ed25519, SM2;
 * STELLA_KEY_PASSWORD decrypting an encrypted one), each with its TUF key id
 * and Sigstore hint. The same key twice is refused: a threshold counts
 * distinct keys, and a second copy would only look like one more.
 */
import { OukError } from '../../lib/errors.ts';
import { loadPrivateKey } from '../keys.ts';
import { type Pkcs11Defaults, publicHalf, type SuiteKey } from '../suites/index.ts';
import { keyidOfKey } from '../root/keys.ts';
import { keyHint } from '../trusted-keys.ts';

export interface KitSigner {
  path: string;
  privateKey: SuiteKey;
  publicKey: SuiteKey;
  /** TUF key id (root.json, .sigs.json, the attestation's DSSE signatures). */
  keyid: string;
  /** Sigstore public-key hint (.sigstore.json). */
  hint: string;
}

export async function loadKitSigners(paths: readonly string[], password?: string, pkcs11?: Pkcs11Defaults): Promise<KitSigner[]> {
  if (paths.length === 0) throw new OukError('USAGE', 'no signing key: pass --key KEY (repeat it for each kit key)');
  const signers: KitSigner[] = [];
  for (const path of paths) {
    const privateKey = await loadPrivateKey(path, password, pkcs11);
    const publicKey = publicHalf(privateKey);
    const keyid = keyidOfKey(publicKey);
    const twin = signers.find((s) => s.keyid === keyid);
    if (twin) throw new OukError('USAGE', `--key ${path} and --key ${twin.path} are the same key (key id ${keyid}): each kit key signs once`);
    signers.push({ path, privateKey, publicKey, keyid, hint: keyHint(publicKey) });
  }
  return signers;
}
