/**
 * A CSAF document's integrity (OASIS CSAF 2.0, Requirements 18–20), checked
 * before anything of it is written: its `.sha512` or `.sha256` (the hex
 * digest first, optionally followed by the file name) against the bytes
 * received, and its detached `.asc` OpenPGP signature against the provider's
 * public keys — each fetched from the `url` of `public_openpgp_keys` and kept
 * only when its fingerprint is the one the metadata names.
 */
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';

/** The digest a `.sha256`/`.sha512` file gives, lower-case; null when it gives none of that length. */
export function digestOf(text: string, algorithm: 'sha256' | 'sha512'): string | null {
  const len = algorithm === 'sha256' ? 64 : 128;
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([0-9a-fA-F]+)(?:\s|$)/.exec(line);
    if (m) return m[1]!.length === len ? m[1]!.toLowerCase() : null;
  }
  return null;
}

/** null when `body` has the digest, else why not. */
export function checkDigest(body: Buffer, hashFile: string, algorithm: 'sha256' | 'sha512'): string | null {
  const want = digestOf(hashFile, algorithm);
  if (!want) return `its .${algorithm} file holds no ${algorithm} digest`;
  const got = createHash(algorithm).update(body).digest('hex');
  return got === want ? null : `${algorithm} mismatch: the document's is ${got.slice(0, 16)}…, its .${algorithm} says ${want.slice(0, 16)}…`;
}

export type PublicKey = openpgp.Key;

/**
 * The key a provider serves at a key URL (armored or binary), if one of the
 * keys in it has `fingerprint`; else why not.
 */
export async function keyWithFingerprint(data: Buffer, fingerprint: string): Promise<PublicKey | string> {
  let keys: openpgp.Key[];
  try {
    const text = data.toString('utf8');
    keys = text.includes('-----BEGIN PGP') ? await openpgp.readKeys({ armoredKeys: text }) : await openpgp.readKeys({ binaryKeys: new Uint8Array(data) });
  } catch (e) {
    return `not an OpenPGP public key (${(e as Error).message.slice(0, 120)})`;
  }
  const match = keys.find((k) => k.getFingerprint().toUpperCase() === fingerprint);
  if (!match) return `its fingerprint is ${keys.map((k) => k.getFingerprint().toUpperCase()).join(', ')}, not ${fingerprint} as provider-metadata.json says`;
  return match.isPrivate() ? match.toPublic() : match;
}

/** null when `sig` (armored or binary) is a good detached signature of `body` by one of `keys`, else why not. */
export async function checkSignature(body: Buffer, sig: Buffer, keys: readonly PublicKey[]): Promise<string | null> {
  let signature: openpgp.Signature;
  try {
    const text = sig.toString('utf8');
    signature = text.includes('-----BEGIN PGP SIGNATURE') ? await openpgp.readSignature({ armoredSignature: text }) : await openpgp.readSignature({ binarySignature: new Uint8Array(sig) });
  } catch (e) {
    return `its .asc is not an OpenPGP signature (${(e as Error).message.slice(0, 120)})`;
  }
  try {
    const v = await openpgp.verify({ message: await openpgp.createMessage({ binary: new Uint8Array(body) }), signature, verificationKeys: [...keys] });
    if (v.signatures.length === 0) return 'its .asc holds no signature';
    const reasons: string[] = [];
    for (const s of v.signatures) {
      try {
        await s.verified;
        return null;
      } catch (e) {
        reasons.push((e as Error).message.slice(0, 120));
      }
    }
    return `bad signature: ${reasons.join('; ')}`;
  } catch (e) {
    return `bad signature: ${(e as Error).message.slice(0, 120)}`;
  }
}
