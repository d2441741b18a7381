/**
 * Which refusals quarantine a kit — the one place that decides — and where a
 * quarantined kit goes in the bucket.
 *
 * Quarantined: a kit refused for integrity or policy, which no retry of the
 * same bytes can ever fix. Its tarball and siblings move to
 * `quarantine/<date>/<name>` with a `<name>.reason.json`; the import is never
 * retried (functions/quarantine/quarantine.ts). Not quarantined, and retried as before:
 * passing faults (the store, PostgreSQL or Redis down, INSUFFICIENT_SPACE,
 * a crash) and refusals that fix themselves:
 *
 *  - SIGNATURE_MISSING: the `.sig` is still on its way (it may land after the
 *    tarball); the import resumes once it arrives.
 *  - DELTA_BASE_MISMATCH when the base is simply not active (yet, or any
 *    more): it resumes once its base is active. Only a real wrong base — the
 *    delta names the active version but another DB digest — is quarantined.
 *  - DOWNGRADE_REFUSED and BUNDLE_EXPIRED are quarantined only without their
 *    override (with it the policy does not refuse them at all); importing the
 *    same kit again with `--allow-downgrade`/`--force --reason` releases it.
 */
import type { ErrorCode } from './errors.ts';

/** Refusals that come from the signature files beside a kit or from the site's trust, not from the tarball's bytes. */
const TRUST_REFUSALS: readonly ErrorCode[] = [
  'SIGNATURE_MISMATCH',
  'SIGNATURE_MALFORMED',
  'SIGNATURE_THRESHOLD',
  'KEY_NOT_TRUSTED',
  'KEY_REVOKED',
  'ROOT_EXPIRED',
  'ROOT_INVALID',
  'ATTESTATION_MISMATCH',
  'ALGORITHM_NOT_ALLOWED',
];

export const QUARANTINE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ...TRUST_REFUSALS,
  'ARCHIVE_CORRUPT',
  'MANIFEST_INVALID',
  'MEMBER_CHECKSUM_MISMATCH',
  'MEMBER_MISSING',
  'MEMBER_UNEXPECTED',
  'UNSAFE_ENTRY',
  'DELTA_BASE_MISMATCH',
  'DOWNGRADE_REFUSED',
  'BUNDLE_EXPIRED',
  'BUNDLE_FROM_FUTURE',
]);

/** What the decision needs beyond the code: the delta's base and the active DB, for DELTA_BASE_MISMATCH. */
export interface QuarantineFacts {
  base?: { version: string; dbDigest: string } | null;
  active?: { activeVersion: string | null; activeDigest: string | null } | null;
}

/** Whether a final failure with `code` quarantines the kit. */
export function shouldQuarantine(code: string, facts: QuarantineFacts = {}): boolean {
  if (!QUARANTINE_CODES.has(code as ErrorCode)) return false;
  if (code !== 'DELTA_BASE_MISMATCH') return true;
  const { base, active } = facts;
  return Boolean(base && active?.activeVersion && base.version === active.activeVersion && base.dbDigest !== active.activeDigest);
}

/**
 * Refusals that the files beside a kit or the site's trust decide, not the
 * tarball's bytes: a quarantined kit imported again (`stella ouk import`, with
 * the files beside it now — e.g. a `.sigs.json` with more signatures, as the
 * SIGNATURE_THRESHOLD message asks) is verified again rather than refused
 * from its record.
 */
export const REVERIFIED_ON_IMPORT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(TRUST_REFUSALS);

export const QUARANTINE_PREFIX = 'quarantine/';

/** What travels with a kit: each `<key><suffix>` is moved with it. */
export const SIBLING_SUFFIXES = ['.sig', '.sigstore.json', '.sigs.json', '.intoto.json'] as const;

export const REASON_SUFFIX = '.reason.json';

/** How the kit arrived, as reason.json says it (from the import record's started_by). */
export type Arrival = 'notification' | 'cli' | 'mirror' | 'bucket-listing' | 'unknown';

export function arrivalOf(startedBy: string | null): Arrival {
  switch (startedBy) {
    case 'webhook':
      return 'notification';
    case 'cli':
      return 'cli';
    case 'mirror':
      return 'mirror';
    case 'reconciler':
      return 'bucket-listing';
    default:
      return 'unknown';
  }
}

/**
 * Where a kit goes: `quarantine/<UTC date>/<key>` (the key keeps its folders,
 * so two kits of one name in different folders do not meet); `unique` adds the
 * import id's first 12 hex when that place is taken by another import.
 */
export function quarantineKeyFor(now: Date, key: string, importId: string, unique = false): string {
  const date = now.toISOString().slice(0, 10);
  if (!unique) return `${QUARANTINE_PREFIX}${date}/${key}`;
  const slash = key.lastIndexOf('/');
  return `${QUARANTINE_PREFIX}${date}/${key.slice(0, slash + 1)}${importId.slice(0, 12)}-${key.slice(slash + 1)}`;
}

/** The reason.json beside a quarantined kit. */
export interface QuarantineReason {
  importId: string;
  code: string;
  message: string;
  /** when it was quarantined (ISO) */
  at: string;
  via: Arrival;
  bucket: string;
  /** where it was before */
  key: string;
  etag: string;
  version: string | null;
  digest: string | null;
  /** the objects moved with it (their keys under quarantine/) */
  objects: string[];
}
