/**
 * Verifying a release attestation, layer by layer (in-toto's order): the
 * envelope (DSSE: an in-toto payload type, then a threshold of the trusted
 * root's kit keys over the PAE — the same threshold as the kit's), then the
 * statement (its subject must be this tarball's sha256, ATTESTATION_MISMATCH
 * otherwise), then the predicate (SLSA provenance v1), whose feeds are handed
 * back for the operator to see. The payload is parsed only once its
 * signatures hold.
 */
import { OukError } from '../../lib/errors.ts';
import { requireKitThreshold, type ThresholdResult } from '../root/threshold.ts';
import type { TrustState } from '../root/trust-state.ts';
import { type DsseEnvelope, verifyEnvelopeSignature } from './dsse.ts';
import { INTOTO_PAYLOAD_TYPE, type KitStatement, readKitStatement } from './statement.ts';

export interface AttestationVerification extends KitStatement {
  source: string;
  signatures: ThresholdResult;
}

export function verifyAttestation(env: DsseEnvelope, opts: { sha256: string; trust: TrustState; source: string }): AttestationVerification {
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) {
    throw new OukError('ATTESTATION_MISMATCH', `${opts.source} holds a ${env.payloadType} payload, not an in-toto statement (${INTOTO_PAYLOAD_TYPE}): it is not a release attestation — re-download the kit's .intoto.json`);
  }
  const signatures = requireKitThreshold(
    opts.trust,
    env.signatures.map((s) => ({ keyid: s.keyid || undefined, source: opts.source, verify: (key) => verifyEnvelopeSignature(env, s.sig, key) })),
    `the attestation ${opts.source}`,
  );
  return { ...readKitStatement(env.payload, opts.sha256, opts.source), source: opts.source, signatures };
}
