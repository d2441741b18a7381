/**
 * SM2 digital signatures (GB/T 32918.2-2016, GM/T 0003.2-2012) with SM3
 * (GB/T 32905-2016): the curve arithmetic is @noble/curves' short Weierstrass
 * points (audited, already the project's ECDSA verifier), SM3 is Node's
 * OpenSSL, the nonce comes from Node's CSPRNG. Node's own crypto cannot make
 * an SM2 signature (it signs plain ECDSA over the SM2 curve), so the
 * scheme's few lines are here:
 *
 *   Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)
 *   e   = SM3(Z_A ‖ M)
 *   sign:   k ∈ [1, n-1], (x1, y1) = kG, r = (e + x1) mod n (r ≠ 0, r + k ≠ n),
 *           s = (1 + d)⁻¹ (k − r·d) mod n (s ≠ 0)
 *   verify: r, s ∈ [1, n-1], t = (r + s) mod n ≠ 0, (x1, y1) = sG + tP_A,
 *           R = (e + x1) mod n = r
 *
 * A signature is ASN.1 DER SEQUENCE { INTEGER r, INTEGER s } (GM/T 0009),
 * what OpenSSL 3 writes. The curve is a parameter so the standard's worked
 * example (on its own test curve) can be checked with the same code.
 */
import { createHash, randomBytes } from 'node:crypto';
import { DER, weierstrassN, type WeierstrassPointCons } from '@noble/curves/abstract/weierstrass';

/** The distinguishing ID every SM2 implementation uses unless told otherwise. */
export const SM2_DEFAULT_ID = '1234567812345678';

export interface Sm2Curve {
  p: bigint;
  n: bigint;
  a: bigint;
  b: bigint;
  Gx: bigint;
  Gy: bigint;
}

/** The recommended curve of GB/T 32918.5 (OpenSSL's `SM2`, OID 1.2.156.10197.1.301). */
export const SM2_P256: Sm2Curve = {
  p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
  a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
  b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
  n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
  Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
};

type Point = ReturnType<WeierstrassPointCons<bigint>['fromBytes']>;
const points = new Map<Sm2Curve, WeierstrassPointCons<bigint>>();
function pointsOf(curve: Sm2Curve): WeierstrassPointCons<bigint> {
  let P = points.get(curve);
  if (!P) {
    P = weierstrassN({ ...curve, h: 1n });
    points.set(curve, P);
  }
  return P;
}

const be32 = (x: bigint): Buffer => Buffer.from(x.toString(16).padStart(64, '0'), 'hex');
const toBig = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`));
const mod = (a: bigint, n: bigint): bigint => ((a % n) + n) % n;
function invert(a: bigint, n: bigint): bigint {
  // Fermat: n is prime.
  let result = 1n;
  let base = mod(a, n);
  let e = n - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % n;
    base = (base * base) % n;
    e >>= 1n;
  }
  return result;
}

export const sm3 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sm3');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The public point (65 bytes, 04 ‖ x ‖ y) checked to lie on the curve; throws otherwise. */
export function sm2Point(publicKey: Uint8Array, curve: Sm2Curve = SM2_P256): Point {
  const P = pointsOf(curve).fromBytes(publicKey);
  P.assertValidity();
  return P;
}

export function sm2PublicKeyOf(d: bigint, curve: Sm2Curve = SM2_P256): Buffer {
  return Buffer.from(pointsOf(curve).BASE.multiply(d).toBytes(false));
}

/** A private scalar in [1, n-2] (d = n-1 has no (1 + d)⁻¹), uniformly by rejection. */
export function sm2RandomScalar(curve: Sm2Curve = SM2_P256, limit = curve.n - 1n): bigint {
  for (;;) {
    const k = toBig(randomBytes(32));
    if (k >= 1n && k < limit) return k;
  }
}

/** Z_A: the hash of the signer's identity and key. */
export function sm2Z(publicKey: Uint8Array, id: string = SM2_DEFAULT_ID, curve: Sm2Curve = SM2_P256): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  const bits = idBytes.length * 8;
  if (bits > 0xffff) throw new Error('sm2Z: the distinguishing ID is longer than 8191 bytes');
  const P = sm2Point(publicKey, curve);
  return sm3(Buffer.from([bits >> 8, bits & 0xff]), idBytes, be32(curve.a), be32(curve.b), be32(curve.Gx), be32(curve.Gy), be32(P.x), be32(P.y));
}

export interface Sm2SignOptions {
  id?: string;
  curve?: Sm2Curve;
  /** The nonce, for the standard's worked example only; fresh random otherwise. */
  k?: bigint;
}

/** The DER SM2 signature by private scalar `d` (public point `publicKey`) over message `msg`. */
export function sm2Sign(msg: Uint8Array, d: bigint, publicKey: Uint8Array, opts: Sm2SignOptions = {}): Buffer {
  const curve = opts.curve ?? SM2_P256;
  const { n } = curve;
  if (d < 1n || d >= n - 1n) throw new Error('sm2Sign: the private key is out of range');
  const e = toBig(sm3(sm2Z(publicKey, opts.id, curve), msg));
  const G = pointsOf(curve).BASE;
  const dInv = invert(1n + d, n);
  for (;;) {
    const k = opts.k ?? sm2RandomScalar(curve, n);
    const r = mod(e + G.multiply(k).x, n);
    if (r === 0n || r + k === n) {
      if (opts.k !== undefined) throw new Error('sm2Sign: the given k gives r = 0 or r + k = n');
      continue;
    }
    const s = mod(dInv * (k - r * d), n);
    if (s === 0n) {
      if (opts.k !== undefined) throw new Error('sm2Sign: the given k gives s = 0');
      continue;
    }
    return Buffer.from(DER.hexFromSig({ r, s }), 'hex');
  }
}

/** Whether `signature` (DER) is an SM2 signature over `msg` by the key with public point `publicKey`. Never throws. */
export function sm2Verify(signature: Uint8Array, msg: Uint8Array, publicKey: Uint8Array, opts: { id?: string; curve?: Sm2Curve } = {}): boolean {
  const curve = opts.curve ?? SM2_P256;
  const { n } = curve;
  try {
    const { r, s } = DER.toSig(signature);
    if (Buffer.from(DER.hexFromSig({ r, s }), 'hex').compare(Buffer.from(signature)) !== 0) return false; // strict DER only
    if (r < 1n || r >= n || s < 1n || s >= n) return false;
    const t = mod(r + s, n);
    if (t === 0n) return false;
    const PA = sm2Point(publicKey, curve);
    const e = toBig(sm3(sm2Z(publicKey, opts.id, curve), msg));
    const X = pointsOf(curve).BASE.multiply(s).add(PA.multiply(t));
    if (X.is0()) return false;
    return mod(e + X.x, n) === r;
  } catch {
    return false;
  }
}
