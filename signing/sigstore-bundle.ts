/**
 * FILE.sigstore.json: a Sigstore bundle v0.3 holding a message signature over
 * the tarball's SHA-256, identified by a public-key hint (base64 SHA-256 of the
 * SPKI DER), with no transparency-log entries. Built with @sigstore/bundle's
 * own builder and serialiser, verified offline with @sigstore/verify's Verifier.
 *
 * Streaming: @sigstore/verify's MessageSignatureContent checks the signature
 * with crypto.verify(artifactBytes, ...), i.e. it needs the whole artifact in
 * memory, and it never reads the bundle's messageDigest. Bundles are hundreds
 * of MB, so instead of `toSignedEntity(bundle, artifact)`'s signature content we
 * hand the Verifier a SignatureContent (a public @sigstore/verify type) that
 * checks the ECDSA signature against the artifact's SHA-256, computed by the
 * caller while streaming the file once, and requires the bundle's messageDigest
 * to equal it (digest-signature.ts). Everything else (key lookup by hint,
 * thresholds, error codes) is the library's.
 */
import type { KeyObject } from 'node:crypto';
import {
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_LEGACY_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
  ValidationError,
  bundleFromJSON,
  bundleToJSON,
  isBundleWithMessageSignature,
  isBundleWithPublicKey,
  toMessageSignatureBundle,
  type Bundle,
  type BundleWithMessageSignature,
  type BundleWithPublicKey,
} from '@sigstore/bundle';
import { VerificationError, Verifier, toSignedEntity, toTrustMaterial, type SignedEntity } from '@sigstore/verify';
import { OukError } from '../lib/errors.ts';
import { SIGNATURE_MISMATCH_MESSAGE } from './blob.ts';
import { verifyDigestSignature } from './digest-signature.ts';
import { isPkcs11Key, isSm2Key, sameKey } from './suites/index.ts';
import { readFailure, readSmallFile, SmallFileError } from './small-file.ts';
import type { TrustedKey } from './trusted-keys.ts';

export const SIGSTORE_BUNDLE_V03_MEDIA_TYPE = BUNDLE_V03_MEDIA_TYPE;

/** Media types of keyed message-signature bundles this verifier accepts (it writes v0.3). */
const ACCEPTED_MEDIA_TYPES = new Set<string>([BUNDLE_V03_MEDIA_TYPE, BUNDLE_V03_LEGACY_MEDIA_TYPE, BUNDLE_V02_MEDIA_TYPE]);

/** A keyed bundle is a few hundred bytes; anything this large is not one. */
const MAX_BUNDLE_FILE_BYTES = 1024 * 1024;

export type KeyedMessageBundle = BundleWithMessageSignature & BundleWithPublicKey;
type SignatureContent = SignedEntity['signature'];
type TrustedRoot = Parameters<typeof toTrustMaterial>[0];

/** The bundle JSON for a signature over a file whose sha256 is `sha256Hex`. */
export function buildSigstoreBundleJson(sha256Hex: string, signatureDer: Buffer, hint: string): string {
  const bundle = toMessageSignatureBundle({
    digest: Buffer.from(sha256Hex, 'hex'),
    signature: signatureDer,
    keyHint: hint,
    certificateChain: false,
  });
  // No certificate chain means @sigstore/bundle labels it v0.3 already; say so explicitly.
  bundle.mediaType = BUNDLE_V03_MEDIA_TYPE;
  const json = bundleToJSON(bundle);
  // proto3 JSON drops empty lists; keep the explicit (empty) tlogEntries cosign's keyed bundles show.
  json.verificationMaterial.tlogEntries = [];
  return JSON.stringify(json);
}

function garbled(why: string, cause?: unknown): OukError {
  return new OukError('SIGNATURE_MALFORMED', `the .sigstore.json is garbled: ${why}. Re-download the .sigstore.json published with the tarball (or remove it: the .sig alone is enough)`, { cause });
}

/** Parses and checks a keyed message-signature Sigstore bundle. */
export function parseSigstoreBundle(text: string | Buffer): KeyedMessageBundle {
  let json: unknown;
  try {
    json = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch (e) {
    throw garbled(`not JSON (${(e as Error).message})`, e);
  }
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (e) {
    const fields = e instanceof ValidationError && e.fields?.length ? `: ${e.fields.join(', ')}` : '';
    throw garbled(`not a Sigstore bundle (${(e as Error).message}${fields})`, e);
  }
  if (!ACCEPTED_MEDIA_TYPES.has(bundle.mediaType)) throw garbled(`media type "${bundle.mediaType}" is not a Sigstore bundle v0.2/v0.3`);
  if (!isBundleWithMessageSignature(bundle)) throw garbled('it holds a DSSE envelope, not a message signature over the tarball');
  if (!isBundleWithPublicKey(bundle)) throw garbled('it names a certificate, not a public-key hint: stella verifies keyed signatures against locally trusted keys');
  const md = bundle.content.messageSignature.messageDigest;
  if (!md || md.digest.length !== 32 || bundleToJSON(bundle).messageSignature?.messageDigest?.algorithm !== 'SHA2_256') {
    throw garbled('its message digest is not a SHA-256');
  }
  return bundle as KeyedMessageBundle;
}

/** Signature content checked against the artifact's SHA-256 rather than its bytes (see the header). */
class DigestSignatureContent implements SignatureContent {
  readonly signature: Buffer;
  constructor(signature: Buffer, private readonly artifactDigest: Buffer) {
    this.signature = signature;
  }
  compareSignature(signature: Buffer): boolean {
    return Buffer.compare(signature, this.signature) === 0;
  }
  compareDigest(digest: Buffer): boolean {
    return Buffer.compare(digest, this.artifactDigest) === 0;
  }
  verifySignature(key: KeyObject): boolean {
    return verifyDigestSignature(this.signature, { sha256: this.artifactDigest }, key);
  }
}

const EMPTY_TRUSTED_ROOT: TrustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

/**
 * Verifies a parsed bundle for the artifact whose sha256 is `artifactSha256Hex`
 * against the host's trusted keys, offline. Transparency-log entries and
 * timestamps, if a bundle carries any, are not checked (there is no trusted root
 * offline; like `cosign verify-blob --insecure-ignore-tlog`): trust comes from
 * the locally configured key alone.
 */
export function verifySigstoreBundle(bundle: KeyedMessageBundle, artifactSha256Hex: string, keys: TrustedKey[]): { key: TrustedKey } {
  const artifactDigest = Buffer.from(artifactSha256Hex, 'hex');
  if (artifactDigest.length !== 32) throw new Error(`verifySigstoreBundle: "${artifactSha256Hex}" is not a sha256 hex digest`);
  const ms = bundle.content.messageSignature;
  if (!ms.messageDigest || !ms.messageDigest.digest.equals(artifactDigest)) {
    const theirs = ms.messageDigest ? ms.messageDigest.digest.toString('hex') : 'none';
    throw new OukError('SIGNATURE_MISMATCH', `the .sigstore.json is for another file (sha256 ${theirs}, this file is ${artifactSha256Hex}): ${SIGNATURE_MISMATCH_MESSAGE.replace(/\.sig$/, '.sigstore.json')}`);
  }
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const trusted = keys.find((k) => k.hint === hint);
  if (!trusted) {
    throw new OukError('KEY_NOT_TRUSTED', `the bundle was signed by a key this host does not trust (key hint ${hint || 'empty'}; trusted: ${keys.map((k) => `${k.path} ${k.hint}`).join(', ') || 'none'}): get the publisher's cosign.pub and add it to OUK_TRUSTED_KEYS, or re-download a tarball signed with a trusted key`);
  }
  const tm = toTrustMaterial(EMPTY_TRUSTED_ROOT, (h: string) => {
    const k = keys.find((t) => t.hint === h);
    if (!k) throw new VerificationError({ code: 'PUBLIC_KEY_ERROR', message: `key not found: ${h}` });
    if (isSm2Key(k.key)) throw new VerificationError({ code: 'PUBLIC_KEY_ERROR', message: `an SM2 key has no Sigstore bundle: ${h}` });
    return { publicKey: isPkcs11Key(k.key) ? k.key.publicKey : k.key, validFor: () => true };
  });
  const entity: SignedEntity = {
    ...toSignedEntity({ ...bundle, verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: undefined } }, Buffer.alloc(0)),
    signature: new DigestSignatureContent(ms.signature, artifactDigest),
  };
  let signerKey: KeyObject;
  try {
    signerKey = new Verifier(tm, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity).key;
  } catch (e) {
    if (e instanceof VerificationError && e.code === 'SIGNATURE_ERROR') {
      throw new OukError('SIGNATURE_MISMATCH', `the .sigstore.json ${SIGNATURE_MISMATCH_MESSAGE.replace(/\.sig$/, '.sigstore.json')}`, { cause: e });
    }
    throw new OukError('SIGNATURE_MALFORMED', `the .sigstore.json could not be verified (${(e as Error).message}): re-download it, or remove it (the .sig alone is enough)`, { cause: e });
  }
  const key = keys.find((k) => sameKey(k.key, signerKey)) ?? trusted;
  return { key };
}

/** Reads FILE.sigstore.json (small; size-capped) and verifies it offline for the artifact digest. */
export async function verifySigstoreBundleFile(bundlePath: string, artifactSha256Hex: string, keys: TrustedKey[]): Promise<{ key: TrustedKey }> {
  return verifySigstoreBundle(await readSigstoreBundleFile(bundlePath), artifactSha256Hex, keys);
}

export async function readSigstoreBundleFile(bundlePath: string): Promise<KeyedMessageBundle> {
  let raw: Buffer;
  try {
    raw = await readSmallFile(bundlePath, MAX_BUNDLE_FILE_BYTES);
  } catch (e) {
    if (e instanceof SmallFileError) throw garbled(`${bundlePath} is ${e.message}`, e);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new OukError('SIGNATURE_MISSING', `no Sigstore bundle at ${bundlePath}: copy the .sigstore.json published with the tarball beside it`, { cause: e });
    throw new OukError('SIGNATURE_MISSING', `cannot read ${bundlePath} (${readFailure(e)}): check its permissions`, { cause: e });
  }
  return parseSigstoreBundle(raw);
}
