/**
 * The `.sig` file, as `cosign sign-blob --key` writes it: base64 of an ASN.1 DER
 * ECDSA signature over the SHA-256 of the file, with no trailing newline.
 */
import { OukError } from '../lib/errors.ts';

/** A DER ECDSA P-256 signature is at most 72 bytes; allow slack for other curves, refuse junk. */
const MAX_SIGNATURE_BYTES = 1024;

/** base64 (whitespace tolerated) of a DER ECDSA signature -> the DER bytes. */
export function parseSignature(text: string | Buffer): Buffer {
  const s = (typeof text === 'string' ? text : text.toString('latin1')).replace(/\s+/g, '');
  if (s.length === 0) throw malformed('it is empty');
  if (s.length > MAX_SIGNATURE_BYTES * 2) throw malformed(`it is ${s.length} characters, far longer than an ECDSA signature`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) throw malformed('it is not base64');
  const der = Buffer.from(s, 'base64');
  const why = derEcdsaProblem(der);
  if (why) throw malformed(why);
  return der;
}

/** The `.sig` text for a DER signature: base64, no newline (what cosign writes). */
export function formatSignature(der: Buffer): string {
  return der.toString('base64');
}

function malformed(why: string): OukError {
  return new OukError('SIGNATURE_MALFORMED', `the signature is garbled: ${why}, not the base64 ASN.1 ECDSA signature cosign writes. Re-download the .sig published with the tarball`);
}

/**
 * Why `der` is not `SEQUENCE { INTEGER r, INTEGER s }` in strict DER, or null.
 * A structural check only; whether it verifies is blob.ts's business.
 */
function derEcdsaProblem(der: Buffer): string | null {
  let i = 0;
  const readLen = (): number | null => {
    if (i >= der.length) return null;
    const b = der[i++];
    if (b < 0x80) return b;
    const n = b & 0x7f;
    if (n === 0 || n > 2 || i + n > der.length) return null;
    let len = 0;
    for (let k = 0; k < n; k++) len = (len << 8) | der[i++];
    return len < 0x80 ? null : len; // non-minimal length encoding
  };
  if (der[i++] !== 0x30) return 'it does not start with an ASN.1 SEQUENCE';
  const seqLen = readLen();
  if (seqLen === null || i + seqLen !== der.length) return 'its ASN.1 SEQUENCE length is wrong';
  for (const name of ['r', 's']) {
    if (der[i++] !== 0x02) return `its ${name} value is not an ASN.1 INTEGER`;
    const len = readLen();
    if (len === null || len === 0 || i + len > der.length) return `its ${name} INTEGER length is wrong`;
    if (der[i] & 0x80) return `its ${name} value is negative`;
    if (len > 1 && der[i] === 0 && !(der[i + 1] & 0x80)) return `its ${name} value is not minimally encoded`;
    i += len;
  }
  if (i !== der.length) return 'it has trailing bytes after the signature';
  return null;
}
