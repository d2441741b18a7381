/**
 * `stella ouk import FILE|URL --dry-run`: every check the import would make,
 * in the import's order, so the first refusal — and so the exit code — is the
 * import's own; nothing goes to the bucket, the queues or the DB.
 *
 *  1. the site's services answer (PostgreSQL, Redis, the bucket): wired by
 *     the caller (dry-run-deps.ts), read-only;
 *  2. the preflight: the unverified manifest's sizes against the free space
 *     of the store and of PostgreSQL (INSUFFICIENT_SPACE) — the import makes
 *     this check before it uploads;
 *  2b. this very object's earlier import (superseded, rolled back,
 *     quarantined), which the import answers from instead of starting afresh;
 *  3. the verify stage's check of the kit against the site's trust: with
 *     bare trusted keys the stage's own `.sig` check first, then the kit
 *     verifier `stella ouk verify` uses (the signatures and their threshold,
 *     the roots the kit carries, the .sigstore.json, the attestation when
 *     present or required), which reads the tarball with the bundle reader;
 *  4. the policy the verify stage applies next (functions/common/policy.ts:
 *     from the future, expiry, downgrade, a delta's base against the active
 *     DB; a delta whose base is on its way would wait for it);
 *  5. what the unpack stage's bundle reader finds (hostile entries, every
 *     member's size and sha256, missing or unexpected members): found in
 *     step 3's read, reported here, after the policy, as the import does.
 *
 * All I/O comes in through `DryRunDeps`; the decision and the words are here.
 */
import type { Manifest } from '../../bundle/manifest.ts';
import { checkPolicy, type PolicyFlags } from '../../functions/common/policy.ts';
import type { ActiveDbPointer } from '../../infra/active-db.ts';
import { isOukError, OukError } from '../../lib/errors.ts';
import type { KitVerification } from '../../signing/index.ts';
import { formatBytes, type SpaceCheck } from './preflight.ts';

/** Findings of the bundle reader: the unpack stage's refusals, after verify's. */
export const READER_CODES: ReadonlySet<string> = new Set(['UNSAFE_ENTRY', 'MANIFEST_INVALID', 'MEMBER_CHECKSUM_MISMATCH', 'MEMBER_MISSING', 'MEMBER_UNEXPECTED']);

export interface DryRunDeps {
  now: Date;
  maxSkewSeconds: number;
  flags: PolicyFlags;
  /** The manifest read from the start of the tarball, unverified (null: unreadable; the import then skips the space check). */
  peekManifest(): Promise<Manifest | null>;
  /** The import's preflight (throws INSUFFICIENT_SPACE). */
  space(manifest: Manifest): Promise<SpaceCheck>;
  /** The verify stage's check of the kit against the site's trust. */
  verify(): Promise<KitVerification>;
  /** The site's active DB (nothing active on a database never imported into). */
  activePointer(): Promise<ActiveDbPointer>;
  /** The object key and tarball sha256 of the active DB's import, when one is active. */
  activeKit(): Promise<{ key: string; sha256: string | null } | null>;
  /**
   * The import this very object (same bucket, key and bytes) already has, when there is one: the import would
   * not start afresh but answer from it (superseded or rolled back: DOWNGRADE_REFUSED without --allow-downgrade;
   * quarantined: its refusal again unless the flag that lifts it is given).
   */
  prior(): Promise<PriorImport | null>;
  /** Whether a delta's missing base is on its way (functions/common/policy.ts `pendingBase`), and how. */
  pendingBase(base: { version: string; dbDigest: string }): Promise<string | null>;
}

export interface PriorImport {
  id: string;
  state: string;
  version: string | null;
  /** The refusal it was quarantined with, as the import reports it. */
  failure: OukError | null;
  /** The flag that lifts that refusal, if one does. */
  liftedBy: keyof PolicyFlags | undefined;
}

export type DryRunOutcome = 'import' | 'already-active' | 'wait-for-base';

export interface DryRunReport {
  key: string;
  outcome: DryRunOutcome;
  version: string;
  kind: Manifest['kind'];
  base: string | null;
  activeVersion: string | null;
  sha256: string;
  size: number;
  members: number;
  unpackedBytes: number;
  /** Null when the manifest could not be read ahead (the import skips the space check too). */
  space: SpaceCheck | null;
  trust: { source: string; implicit: boolean; rootVersion: number; chain: number[]; keyids: string[]; threshold: number };
  attestation: { source: string; builder: string; feeds: string[] } | null;
  /** What a pending base is waiting on (outcome wait-for-base). */
  waitingFor: string | null;
  /** The checks passed, in order. */
  checks: string[];
  notes: string[];
}

/** A refusal, with the checks passed before it. */
export class DryRunRefusal extends Error {
  constructor(readonly error: OukError, readonly checks: string[]) {
    super(error.message);
  }
}

/** `soFar`: the checks passed and notes made before (the site's services), carried into the report. */
export async function dryRunImport(key: string, deps: DryRunDeps, soFar: { checks: string[]; notes: string[] } = { checks: [], notes: [] }): Promise<DryRunReport> {
  const checks = [...soFar.checks];
  try {
    return await run(key, deps, checks, [...soFar.notes]);
  } catch (e) {
    if (isOukError(e)) throw new DryRunRefusal(e, checks);
    throw e;
  }
}

async function run(key: string, deps: DryRunDeps, checks: string[], notes: string[]): Promise<DryRunReport> {
  const peeked = await deps.peekManifest();
  let space: SpaceCheck | null = null;
  if (peeked) {
    space = await deps.space(peeked);
    notes.push(...space.notes.map((n) => `preflight: ${n}`));
    checks.push('space');
  } else {
    notes.push('preflight: could not read the manifest ahead; space not checked (as the import would not)');
  }

  const prior = await deps.prior();
  if (prior && (prior.state === 'superseded' || prior.state === 'rolled-back') && !deps.flags.allowDowngrade) {
    throw new OukError(
      'DOWNGRADE_REFUSED',
      `bundle ${prior.version ?? key} was imported before (import ${prior.id}) and is now ${prior.state}: the import would NOT activate it — pass --allow-downgrade to make it the active DB again (or use \`stella ouk rollback\`)`,
    );
  }
  if (prior?.state === 'quarantined') {
    if (!prior.liftedBy || !deps.flags[prior.liftedBy]) throw prior.failure ?? new OukError('IMPORT_FAILED', `import ${prior.id} of ${key} is quarantined: see \`stella ouk quarantine show ${prior.id}\``);
    notes.push(`import ${prior.id} of this kit is quarantined; ${prior.liftedBy === 'force' ? '--force' : '--allow-downgrade'} lifts its refusal: the import would release it and check it again`);
  }
  checks.push('history');

  // The verify stage: the signature material first; a reader finding waits for the policy (unpack comes after verify).
  let verified: KitVerification | null = null;
  let readerFinding: OukError | null = null;
  try {
    verified = await deps.verify();
  } catch (e) {
    if (!isOukError(e) || !READER_CODES.has(e.code) || !peeked) throw e;
    readerFinding = e; // the signature held (the verifier reports it first): the peeked manifest is the signed one
  }
  checks.push('signature');
  const manifest = verified?.manifest ?? peeked!;

  const pointer = await deps.activePointer();
  let outcome: DryRunOutcome = 'import';
  let waitingFor: string | null = null;
  try {
    checkPolicy(manifest, pointer, deps.flags, deps.now, deps.maxSkewSeconds);
  } catch (e) {
    if (!isOukError(e)) throw e;
    if (e.code === 'DOWNGRADE_REFUSED' && verified && (prior?.state === 'active' || (await isActiveKit(key, verified.sha256, deps)))) outcome = 'already-active';
    else if (e.code === 'DELTA_BASE_MISMATCH' && manifest.base && (waitingFor = await deps.pendingBase(manifest.base))) outcome = 'wait-for-base';
    else throw e;
  }
  checks.push('policy');
  if (readerFinding) throw readerFinding;
  checks.push('members');
  const v = verified!;
  if (v.attestation) checks.push('attestation');

  return {
    key,
    outcome,
    version: manifest.bundleVersion,
    kind: manifest.kind,
    base: manifest.base?.version ?? null,
    activeVersion: pointer.activeVersion,
    sha256: v.sha256,
    size: v.size,
    members: manifest.members.length,
    unpackedBytes: manifest.members.reduce((n, m) => n + m.size, 0),
    space,
    trust: {
      source: v.trust.source,
      implicit: v.trust.implicit,
      rootVersion: v.trust.root.signed.version,
      chain: v.trust.chain,
      keyids: v.signatures.keyids,
      threshold: v.signatures.threshold,
    },
    attestation: v.attestation ? { source: v.attestation.source, builder: v.attestation.builder.id, feeds: v.attestation.feeds.map((f) => f.name) } : null,
    waitingFor,
    checks,
    notes,
  };
}

async function isActiveKit(key: string, sha256: string, deps: DryRunDeps): Promise<boolean> {
  const active = await deps.activeKit();
  return active !== null && active.key === key && active.sha256 === sha256;
}

/** What the import would do, in words (one line each; the caller escapes them for the terminal). */
export function dryRunLines(r: DryRunReport): string[] {
  const unpacked = `${formatBytes(r.unpackedBytes)} unpacked in ${r.members} members`;
  const onto = r.kind === 'delta' ? `as a delta onto ${r.base}` : 'as full';
  const replacing = r.activeVersion ? `, replacing ${r.activeVersion}` : '';
  const what =
    r.outcome === 'already-active'
      ? `would import nothing: ${r.key} (${r.version}) is already the active DB`
      : r.outcome === 'wait-for-base'
        ? `would import ${r.version} ${onto} once its base is active (${r.waitingFor}), then activate it; ${unpacked}`
        : `would import ${r.version} ${onto}, activating it${replacing}; ${unpacked}`;
  const signers = r.trust.implicit
    ? `signature by a trusted key (${r.trust.source})`
    : `${r.trust.keyids.length} kit signature(s), threshold ${r.trust.threshold}, root v${r.trust.chain.join(' → v')} (${r.trust.source})`;
  return [
    what,
    `checked:  ${r.checks.join(', ')}`,
    `sha256:${r.sha256} (${r.size} bytes)`,
    `trust:    ${signers}`,
    r.attestation ? `attested: ${r.attestation.builder}, feeds ${r.attestation.feeds.join(', ') || 'none'}` : 'attested: no attestation beside the kit',
    ...r.notes,
    'dry run: nothing was uploaded, queued or written',
  ];
}

/** The `--json` document of a dry run that passed. */
export function dryRunJson(r: DryRunReport): Record<string, unknown> {
  return {
    dryRun: true,
    ok: true,
    outcome: r.outcome,
    key: r.key,
    version: r.version,
    kind: r.kind,
    base: r.base,
    activeVersion: r.activeVersion,
    wouldActivate: r.outcome !== 'already-active',
    waitingFor: r.waitingFor,
    sha256: r.sha256,
    size: r.size,
    members: r.members,
    unpackedBytes: r.unpackedBytes,
    space: r.space ? { need: r.space.need, storeFree: r.space.storeFree, databaseFree: r.space.databaseFree } : null,
    trust: r.trust,
    attestation: r.attestation,
    checks: r.checks,
    notes: r.notes,
  };
}

/** The `--json` document of a refusal (the process exits with the error's code). */
export function dryRunRefusalJson(r: DryRunRefusal, exitCode: number): Record<string, unknown> {
  return { dryRun: true, ok: false, error: { code: r.error.code, exitCode, message: r.error.message }, checks: r.checks };
}
