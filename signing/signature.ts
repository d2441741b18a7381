/**
 * The `.sig` file, as `cosign sign-blob --key` writes it: base64 of an ASN.1 DER
 * ECDSA P-256 signature over the SHA-256 of the file, with no trailing newline.
 * The DER is decoded by @noble/curves (strict DER, r and s in [1, n-1]); a
 * `.sig` it refuses is SIGNATURE_MALFORMED. The other suites' kit signatures
 * take the same form: SM2's is the same DER SEQUENCE {r, s} (its r and s are
 * below P-256's order too), Ed25519's the 64 bytes of R ‖ S.
 */
import { p256 } from '@noble/curves/nist';
import { OukError } from '../lib/errors.ts';

/** A DER ECDSA P-256 signature is at most 72 bytes; anything far longer is junk, refused before decoding. */
const MAX_SIGNATURE_BYTES = 1024;
const ED25519_SIGNATURE_BYTES = 64;

/** base64 (whitespace tolerated) of a DER ECDSA P-256 signature -> the DER bytes. */
export function parseSignature(text: string | Buffer): Buffer {
  const s = (typeof text === 'string' ? text : text.toString('latin1')).replace(/\s+/g, '');
  if (s.length === 0) throw malformed('it is empty');
  if (s.length > MAX_SIGNATURE_BYTES * 2) throw malformed(`it is ${s.length} characters, far longer than an ECDSA signature`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) throw malformed('it is not base64');
  const der = Buffer.from(s, 'base64');
  if (der.length === ED25519_SIGNATURE_BYTES) return der;
  try {
    // A structural check only; whether it verifies is blob.ts's business.
    p256.Signature.fromBytes(der, 'der');
  } catch (e) {
    throw malformed(`its DER does not decode as an ECDSA P-256 signature (${e instanceof Error ? e.message : String(e)})`, e);
  }
  return der;
}

/** The `.sig` text for a DER signature: base64, no newline (what cosign writes). */
export function formatSignature(der: Buffer): string {
  return der.toString('base64');
}

function malformed(why: string, cause?: unknown): OukError {
  return new OukError('SIGNATURE_MALFORMED', `the signature is garbled: ${why}, not the base64 ASN.1 ECDSA signature cosign writes. Re-download the .sig published with the tarball`, { cause });
}
