/**
 * FILE.sigs.json: every kit key's signature over the whole tarball, each
 * named by its TUF key id. Each `sig` is exactly what `FILE.sig` holds for one
 * key — base64 of an ASN.1 DER ECDSA P-256 signature over the SHA-256 of the
 * file, cosign's blob format — so any one entry can be checked alone with
 * `cosign verify-blob` or `openssl dgst -verify`. `sha256` names the tarball
 * the signatures are for (a file beside another tarball is refused at once).
 *
 *   {"mediaType": "application/vnd.stella-ouk.kit-signatures.v1+json",
 *    "sha256": "<hex>", "signatures": [{"keyid": "<hex>", "sig": "<base64>"}]}
 */
import { Ajv } from 'ajv';
import { OukError } from '../../lib/errors.ts';
import { parseSignature } from '../signature.ts';
import { readFailure, readSmallFile, SmallFileError } from '../small-file.ts';

export const KIT_SIGNATURES_MEDIA_TYPE = 'application/vnd.stella-ouk.kit-signatures.v1+json';

/** More signatures than any kit role has keys; a file past these bounds is not one. */
export const MAX_KIT_SIGNATURES = 64;
const MAX_SIGS_FILE_BYTES = 256 * 1024;

export const sigsPathFor = (file: string): string => `${file}.sigs.json`;

export interface KitSignature {
  keyid: string;
  signatureDer: Buffer;
}

export interface KitSignatures {
  sha256: string;
  signatures: KitSignature[];
}

interface KitSignaturesJson {
  mediaType: string;
  sha256: string;
  signatures: { keyid: string; sig: string }[];
}

const validate = new Ajv({ allErrors: true }).compile<KitSignaturesJson>({
  type: 'object',
  required: ['mediaType', 'sha256', 'signatures'],
  additionalProperties: false,
  properties: {
    mediaType: { type: 'string', const: KIT_SIGNATURES_MEDIA_TYPE },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    signatures: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_KIT_SIGNATURES,
      items: {
        type: 'object',
        required: ['keyid', 'sig'],
        additionalProperties: false,
        properties: { keyid: { type: 'string', pattern: '^[0-9a-f]{64}$' }, sig: { type: 'string', maxLength: 2048 } },
      },
    },
  },
});

export function serializeKitSignatures(s: KitSignatures): string {
  const json: KitSignaturesJson = {
    mediaType: KIT_SIGNATURES_MEDIA_TYPE,
    sha256: s.sha256,
    signatures: s.signatures.map((x) => ({ keyid: x.keyid, sig: x.signatureDer.toString('base64') })),
  };
  return JSON.stringify(json, null, 2) + '\n';
}

function garbled(source: string, why: string, cause?: unknown): OukError {
  return new OukError('SIGNATURE_MALFORMED', `${source} is garbled: ${why}. Re-download the .sigs.json published with the kit`, cause === undefined ? {} : { cause });
}

export function parseKitSignatures(raw: Buffer | string, source: string): KitSignatures {
  let data: unknown;
  try {
    data = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (e) {
    throw garbled(source, `not JSON (${(e as Error).message})`, e);
  }
  if (!validate(data)) throw garbled(source, (validate.errors ?? []).map((er) => `${er.instancePath || '/'} ${er.message}`).join('; '));
  const seen = new Set<string>();
  const signatures: KitSignature[] = [];
  for (const s of data.signatures) {
    if (seen.has(s.keyid)) throw garbled(source, `key ${s.keyid} signs twice`);
    seen.add(s.keyid);
    signatures.push({ keyid: s.keyid, signatureDer: parseSignature(s.sig) });
  }
  return { sha256: data.sha256, signatures };
}

/** Reads FILE.sigs.json; null when there is none. */
export async function readKitSignaturesFile(path: string): Promise<KitSignatures | null> {
  let raw: Buffer;
  try {
    raw = await readSmallFile(path, MAX_SIGS_FILE_BYTES);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (e instanceof SmallFileError) throw garbled(path, e.message, e);
    throw new OukError('SIGNATURE_MISSING', `cannot read ${path} (${readFailure(e)}): check its permissions`, { cause: e });
  }
  return parseKitSignatures(raw, path);
}
