/**
 * A kit role's threshold over something signed: the tarball (each signature
 * over its SHA-256) or the attestation (each over the DSSE PAE). The caller
 * says how one candidate signature is checked against one public key; this
 * counts DISTINCT kit keys of the trusted root with a valid signature and
 * decides:
 *
 * - at least the threshold: accepted, with the key ids that signed;
 * - short, and a key a newer root dropped signed: KEY_REVOKED (that signature
 *   is worth nothing, also on a kit signed before the rotation);
 * - short, no valid signature at all: SIGNATURE_MISMATCH (damaged, or signed
 *   by keys this root does not list — the same advice as a bad `.sig`);
 * - short otherwise: SIGNATURE_THRESHOLD.
 *
 * A candidate's key id is a hint: when it names no known key, every kit key
 * and revoked key is tried (a DSSE keyid is optional and unauthenticated).
 */
import type { SuiteKey } from '../suites/index.ts';
import { OukError } from '../../lib/errors.ts';
import { KIT_ROLE } from './document.ts';
import { publicKeyOf, shortKeyid } from './keys.ts';
import type { TrustState } from './trust-state.ts';

export interface SignatureCandidate {
  /** The key id the signature claims, when it names one. */
  keyid?: string;
  /** Where it came from, for messages: `FILE.sigs.json`, `FILE.sig`. */
  source: string;
  /** Whether it is a valid signature by `key` over the signed thing. */
  verify(key: SuiteKey): boolean;
}

export interface ThresholdResult {
  /** Kit key ids with a valid signature, distinct, in the root's order. */
  keyids: string[];
  threshold: number;
  /** The trusted root's version the threshold is of. */
  rootVersion: number;
}

/** Checks `candidates` against the kit role of `trust.root`; `what` names the signed thing (`the kit`, `the attestation`). */
export function requireKitThreshold(trust: TrustState, candidates: SignatureCandidate[], what: string): ThresholdResult {
  const root = trust.root.signed;
  const role = root.roles[KIT_ROLE]!;
  const source = trust.implicit ? trust.source : `root v${root.version}`;
  const kit = new Map(role.keyIDs.map((id) => [id, publicKeyOf(root.keys[id]!, source)] as const));
  const revoked = new Map([...trust.revoked].filter(([id]) => !kit.has(id)).map(([id, key]) => [id, publicKeyOf(key, 'a revoked key')] as const));
  const valid = new Set<string>();
  const revokedHits = new Set<string>();
  const unknown = new Set<string>();
  for (const c of candidates) {
    const named = c.keyid !== undefined && (kit.has(c.keyid) || revoked.has(c.keyid));
    if (c.keyid !== undefined && !named) unknown.add(c.keyid);
    const tries = named ? [c.keyid!] : [...kit.keys(), ...revoked.keys()];
    for (const id of tries) {
      const key = kit.get(id) ?? revoked.get(id)!;
      if (!c.verify(key)) continue;
      (kit.has(id) ? valid : revokedHits).add(id);
      break;
    }
  }
  const result: ThresholdResult = { keyids: role.keyIDs.filter((id) => valid.has(id)), threshold: role.threshold, rootVersion: root.version };
  if (valid.size >= role.threshold) return result;

  const count = `${valid.size} valid signature(s) by distinct kit keys of ${source}, which requires ${role.threshold}`;
  const others = unknown.size ? ` (it also names key(s) ${[...unknown].map(shortKeyid).join(', ')}, which ${source} does not list: dropped by a rotation, or never trusted)` : '';
  if (revokedHits.size > 0) {
    throw new OukError(
      'KEY_REVOKED',
      `${what} is signed by key ${[...revokedHits].map(shortKeyid).join(', ')}, which a newer root dropped (root v${root.version} reached through v${trust.chain.join(' → v')}): it counts for nothing, also for kits signed before the rotation — ${count}. Get the kit signed again by the current kit keys (stella trust show)`,
    );
  }
  if (valid.size === 0) {
    throw new OukError(
      'SIGNATURE_MISMATCH',
      `${what}: no signature verifies with a kit key of ${source}${others}: file corrupted or not signed by these keys — re-download the tarball and its signature files, or check the root (stella trust show)`,
    );
  }
  throw new OukError('SIGNATURE_THRESHOLD', `${what} has ${count}${others}: get the kit with the signatures of more kit keys (its .sigs.json), or check the root (stella trust show)`);
}
