/**
 * DSSE, the Dead Simple Signing Envelope (github.com/secure-systems-lab/dsse,
 * protocol v1): a payload, its type, and signatures over the
 * Pre-Authentication Encoding
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * (LEN: the byte length in ASCII decimal, no leading zeros), never over the
 * payload alone, so a signature cannot be replayed under another type. Each
 * signature here is the signer's suite's signature over the PAE (ECDSA P-256:
 * over SHA-256, ASN.1 DER — what cosign writes in its attestations; Ed25519;
 * SM2 with SM3), base64, with the signer's
 * TUF key id. The envelope's JSON: {payloadType, payload (base64), signatures:
 * [{keyid, sig (base64)}]}.
 */

import { OukError } from '../../lib/errors.ts';
import type { KitSigner } from '../kit/sign.ts';
import { suiteOf, type SuiteKey } from '../suites/index.ts';

export interface DsseSignature {
  keyid: string;
  sig: Buffer;
}

export interface DsseEnvelope {
  payloadType: string;
  payload: Buffer;
  signatures: DsseSignature[];
}

/** DSSE v1 Pre-Authentication Encoding. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${payload.length} `, 'ascii'), payload]);
}

export function signEnvelope(payloadType: string, payload: Buffer, signers: readonly KitSigner[]): DsseEnvelope {
  const pae = preAuthEncoding(payloadType, payload);
  return { payloadType, payload, signatures: signers.map((s) => ({ keyid: s.keyid, sig: suiteOf(s.privateKey)!.signMessage(s.privateKey, pae) })) };
}

/** Whether `sig` is `key`'s signature over the envelope's PAE. */
export function verifyEnvelopeSignature(env: DsseEnvelope, sig: Buffer, key: SuiteKey): boolean {
  const suite = suiteOf(key);
  return suite !== null && suite.verifyMessage(sig, preAuthEncoding(env.payloadType, env.payload), key);
}

export function serializeEnvelope(env: DsseEnvelope): string {
  return (
    JSON.stringify(
      { payloadType: env.payloadType, payload: env.payload.toString('base64'), signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig.toString('base64') })) },
      null,
      2,
    ) + '\n'
  );
}

/** More signatures than any kit role has keys. */
const MAX_SIGNATURES = 64;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function garbled(source: string, why: string, cause?: unknown): OukError {
  return new OukError('SIGNATURE_MALFORMED', `${source} is not a DSSE envelope: ${why}. Re-download the .intoto.json published with the kit`, cause === undefined ? {} : { cause });
}

function base64Field(source: string, name: string, v: unknown): Buffer {
  if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64.test(v)) throw garbled(source, `${name} is not base64`);
  return Buffer.from(v, 'base64');
}

/** Parses an envelope's JSON (the caller bounds its size). Standard base64 only, as DSSE's JSON form specifies. */
export function parseEnvelope(raw: Buffer | string, source: string): DsseEnvelope {
  let data: unknown;
  try {
    data = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (e) {
    throw garbled(source, `not JSON (${(e as Error).message})`, e);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw garbled(source, 'not a JSON object');
  const o = data as Record<string, unknown>;
  if (typeof o.payloadType !== 'string' || o.payloadType.length === 0 || o.payloadType.length > 256) throw garbled(source, 'payloadType is missing');
  const payload = base64Field(source, 'payload', o.payload);
  if (!Array.isArray(o.signatures) || o.signatures.length === 0) throw garbled(source, 'it has no signatures');
  if (o.signatures.length > MAX_SIGNATURES) throw garbled(source, `${o.signatures.length} signatures, more than ${MAX_SIGNATURES}`);
  const signatures = o.signatures.map((s: unknown, i: number): DsseSignature => {
    if (!s || typeof s !== 'object') throw garbled(source, `signature ${i} is not an object`);
    const { keyid, sig } = s as Record<string, unknown>;
    if (keyid !== undefined && typeof keyid !== 'string') throw garbled(source, `signature ${i}'s keyid is not a string`);
    const der = base64Field(source, `signature ${i}'s sig`, sig);
    if (der.length === 0 || der.length > 1024) throw garbled(source, `signature ${i} is ${der.length} bytes, not an ECDSA signature`);
    return { keyid: keyid ?? '', sig: der };
  });
  return { payloadType: o.payloadType, payload, signatures };
}
