/**
 * The release attestation FILE.intoto.json: a DSSE envelope over an in-toto
 * Statement v1 whose predicate is SLSA provenance v1. One concern a file:
 *
 * - dsse.ts       the envelope: PAE, sign, parse, check one signature
 * - statement.ts  the statement and Stella's provenance predicate: write, read, check the subject
 * - file.ts       FILE.intoto.json: write beside a kit, read with a bound
 * - verify.ts     envelope → kit threshold → statement → predicate
 */
export { preAuthEncoding, parseEnvelope, serializeEnvelope, signEnvelope, verifyEnvelopeSignature, type DsseEnvelope, type DsseSignature } from './dsse.ts';
export {
  FEED_DIGEST_RULE,
  INTOTO_PAYLOAD_TYPE,
  KIT_BUILD_TYPE,
  KIT_BUILDER_ID,
  SLSA_PROVENANCE_V1,
  STATEMENT_V1,
  kitProvenanceStatement,
  readKitStatement,
  type AttestedFeed,
  type KitProvenanceInput,
  type KitStatement,
  type ResourceDescriptor,
  type Statement,
} from './statement.ts';
export { intotoPathFor, readAttestationFile, writeAttestationFile } from './file.ts';
export { verifyAttestation, type AttestationVerification } from './verify.ts';
