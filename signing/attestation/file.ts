/**
 * FILE.intoto.json beside a kit: the DSSE envelope of its release attestation,
 * one signature per kit key. Written to a temporary name and renamed; read
 * with a size bound (the statement names a handful of feeds: kilobytes).
 */
import { OukError } from '../../lib/errors.ts';
import type { KitSigner } from '../kit/sign.ts';
import { readFailure, readSmallFile, SmallFileError } from '../small-file.ts';
import { writeAtomic } from '../write.ts';
import { type DsseEnvelope, parseEnvelope, serializeEnvelope, signEnvelope } from './dsse.ts';
import { INTOTO_PAYLOAD_TYPE, type Statement } from './statement.ts';

export const intotoPathFor = (file: string): string => `${file}.intoto.json`;

const MAX_ATTESTATION_BYTES = 4 * 1024 * 1024;

/** Signs the statement with every kit key and writes the envelope to `path`. */
export async function writeAttestationFile(path: string, statement: Statement, signers: readonly KitSigner[]): Promise<DsseEnvelope> {
  const env = signEnvelope(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement), 'utf8'), signers);
  await writeAtomic(path, serializeEnvelope(env));
  return env;
}

/** The envelope at `path`, or null when there is no such file. */
export async function readAttestationFile(path: string): Promise<DsseEnvelope | null> {
  let raw: Buffer;
  try {
    raw = await readSmallFile(path, MAX_ATTESTATION_BYTES);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (e instanceof SmallFileError) throw new OukError('SIGNATURE_MALFORMED', `${path} is not an attestation (${e.message}): re-download the .intoto.json published with the kit`, { cause: e });
    throw new OukError('SIGNATURE_MISSING', `cannot read ${path} (${readFailure(e)}): check its permissions`, { cause: e });
  }
  return parseEnvelope(raw, path);
}
