/**
 * SM2 keys in PEM as OpenSSL 3 writes them (`openssl genpkey -algorithm SM2`):
 * the private key PKCS#8 (`BEGIN PRIVATE KEY`: id-ecPublicKey, curve
 * 1.2.156.10197.1.301, an RFC 5915 ECPrivateKey with its public point), the
 * public key SPKI (`BEGIN PUBLIC KEY`). Read and written here, byte for byte
 * as OpenSSL lays them out, because Node's KeyObject cannot hold an SM2 key
 * safely (exporting one aborts the process): SM2 keys never become
 * KeyObjects. Encrypted SM2 private keys are not read (see docs/crypto.md).
 */
import { sm2Point, sm2PublicKeyOf, SM2_P256 } from './sm2.ts';

// SEQUENCE { OID id-ecPublicKey, OID sm2 }
const ALGORITHM = Buffer.from('301306072a8648ce3d020106082a811ccf5501822d', 'hex');
const SPKI_PREFIX = Buffer.concat([Buffer.from('3059', 'hex'), ALGORITHM, Buffer.from('034200', 'hex')]);
const PKCS8_PREFIX = Buffer.concat([Buffer.from('308187020100', 'hex'), ALGORITHM, Buffer.from('046d306b0201010420', 'hex')]);
const PKCS8_MIDDLE = Buffer.from('a144034200', 'hex');

/** Whether a DER SubjectPublicKeyInfo or PKCS#8 names the SM2 curve. */
export function namesSm2(der: Buffer): boolean {
  return der.includes(Buffer.from('06082a811ccf5501822d', 'hex'));
}

export function pemBody(text: string, label: string): Buffer | null {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : null;
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

export function sm2SpkiDer(publicPoint: Uint8Array): Buffer {
  return Buffer.concat([SPKI_PREFIX, publicPoint]);
}

export function sm2PublicPem(publicPoint: Uint8Array): string {
  return pem('PUBLIC KEY', sm2SpkiDer(publicPoint));
}

export function sm2PrivatePem(d: bigint, publicPoint: Uint8Array): string {
  return pem('PRIVATE KEY', Buffer.concat([PKCS8_PREFIX, Buffer.from(d.toString(16).padStart(64, '0'), 'hex'), PKCS8_MIDDLE, publicPoint]));
}

/** The public point of an SM2 SPKI DER; null when it is not exactly one. */
export function sm2PointFromSpki(der: Buffer): Buffer | null {
  if (der.length !== SPKI_PREFIX.length + 65 || !der.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX)) return null;
  const point = der.subarray(SPKI_PREFIX.length);
  try {
    sm2Point(point);
  } catch {
    return null;
  }
  return Buffer.from(point);
}

/**
 * The scalar and public point of an SM2 PKCS#8 DER, in OpenSSL's layout (with
 * or without the public point); null when it is not one. A public point
 * present must be the scalar's.
 */
export function sm2KeyFromPkcs8(der: Buffer): { d: bigint; publicPoint: Buffer } | null {
  const dStart = PKCS8_PREFIX.length;
  const withPoint = der.length === dStart + 32 + PKCS8_MIDDLE.length + 65;
  // Without the point: SEQUENCE 0x30 0x41 … 0x04 0x27 0x30 0x25: another prefix length, same algorithm.
  const noPointPrefix = Buffer.concat([Buffer.from('3041020100', 'hex'), ALGORITHM, Buffer.from('0427302502010104', 'hex'), Buffer.from('20', 'hex')]);
  let dBytes: Buffer;
  if (withPoint && der.subarray(0, dStart).equals(PKCS8_PREFIX) && der.subarray(dStart + 32, dStart + 32 + PKCS8_MIDDLE.length).equals(PKCS8_MIDDLE)) {
    dBytes = der.subarray(dStart, dStart + 32);
  } else if (der.length === noPointPrefix.length + 32 && der.subarray(0, noPointPrefix.length).equals(noPointPrefix)) {
    dBytes = der.subarray(noPointPrefix.length);
  } else {
    return null;
  }
  const d = BigInt(`0x${dBytes.toString('hex')}`);
  if (d < 1n || d >= SM2_P256.n - 1n) return null;
  const publicPoint = sm2PublicKeyOf(d);
  if (withPoint && !der.subarray(der.length - 65).equals(publicPoint)) return null;
  return { d, publicPoint };
}
