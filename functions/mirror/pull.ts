/**
 * One round of the intranet-mirror pull (OUK_MIRROR_URL): the `mirror` job of
 * the maintenance queue runs it on OUK_MIRROR_SCHEDULE, `stella ouk mirror
 * pull` by hand. All I/O comes in through `MirrorDeps`.
 *
 *  1. GET index.json (bounded, schema-checked: bundle/mirror-index.ts);
 *  2. wait (bounded) until no import is under way, so the plan sees a settled
 *     site; read the active DB and the imports PostgreSQL knows;
 *  3. plan (functions/mirror/plan.ts): the delta chain from the active DB if it
 *     reaches the newest kit, else the newest full kit and the deltas on it;
 *  4. for each step, in order:
 *       download the kit and the files beside it (.sig, .sigs.json,
 *       .sigstore.json, .intoto.json; each but the kit optional — an older
 *       mirror has only the .sig) into a temporary directory (deadline, size
 *       ceiling = the index's size);
 *       check sha256 and size against the index (MIRROR_DIGEST_MISMATCH);
 *       verify it as `stella ouk verify` does, against the site's trust (the
 *       pinned root moved forward through the roots PostgreSQL holds, or the
 *       keys of OUK_TRUSTED_KEYS: `trust`), structure, every member, the
 *       attestation when present, and that the signed
 *       manifest says what the index says (MIRROR_INDEX_INVALID);
 *     only then put it into the bucket (`mirror/<file>`: the files beside it,
 *     then the tarball), start its import (`ingest`, as the webhook would), and
 *     wait until it is active before the next step: the pipeline refuses a
 *     delta whose base is not active yet, so a chain goes in one kit at a time.
 *
 * A step still importing after OUK_MIRROR_WAIT_SECONDS ends the round (`done`
 * false); the next round waits for it and continues. A failed import stops the
 * round with its error; nothing after it is pulled. A `retry` step whose
 * import someone else retried first (the reconciler, once a delta's base is
 * active) is waited for like any other: NOTHING_TO_RETRY is no failure there.
 *
 * Bounds: every download has a deadline and a minimum rate
 * (functions/mirror/fetch.ts; index.json and the signature files
 * OUK_MIRROR_INDEX_TIMEOUT_SECONDS, a kit OUK_MIRROR_TIMEOUT_SECONDS); a kit
 * whose index entry announces more than OUK_MIRROR_MAX_KIT_BYTES, or more than
 * the temporary directory has free, is refused before a byte is fetched. A
 * scheduled round runs under its deadline (`signal`, OUK_MIRROR_ROUND_SECONDS):
 * when it fires, a download under way is cut, a wait ends, and the round ends
 * pending (nothing half-put: a kit goes into the bucket only whole and
 * verified); the next round continues from where the site is.
 *
 * One round at a time in the whole cluster: a round holds a PostgreSQL
 * advisory lock from its plan to its end. A scheduled round that finds
 * another under way (another worker's, or `stella ouk mirror pull`) ends at
 * once, pending; `stella ouk mirror pull` waits for it
 * (`lockWaitMs`). Two rounds would otherwise download and put the same kits
 * and count them twice.
 */
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { entryMismatch, MAX_MIRROR_INDEX_BYTES, MIRROR_INDEX_FILE, parseMirrorIndex, type MirrorIndexEntry } from '../../bundle/mirror-index.ts';
import type { MirrorConfig } from '../../lib/config.ts';
import { isOukError, OukError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { readActivePointer } from '../../infra/active-db.ts';
import { connect, type Pool } from '../../infra/db.ts';
import { getImport, importsOfBundles, unfinishedImportIds } from '../../infra/import-records/index.ts';
import { uploadStream, type ObjectStore } from '../../infra/store.ts';
import { verifyKitFile, type TrustedKey } from '../../signing/index.ts';
import type { CryptoPolicy } from '../../lib/crypto-policy.ts';
import { implicitTrust, type TrustState } from '../../signing/root/index.ts';
import { downloadSmall, downloadToFile, type FetchFn, type FetchLimits } from './fetch.ts';
import { mirrorKeyFor, planMirror, type KnownImport, type MirrorPlan, type MirrorStep } from './plan.ts';

export { mirrorKeyFor, planMirror, STUCK_ROUTES, type MirrorPlan, type MirrorStep } from './plan.ts';

const MAX_SIG_BYTES = 64 * 1024;
const MAX_SIGSTORE_BYTES = 1024 * 1024;
const MAX_SIGS_BYTES = 256 * 1024;
const MAX_ATTESTATION_BYTES = 4 * 1024 * 1024;
/** Room kept free in the temporary directory beyond a kit's own size. */
const TMP_MARGIN_BYTES = 64 * 1024 * 1024;

export interface MirrorDeps {
  pool: Pool;
  store: ObjectStore;
  bucket: string;
  mirror: Pick<MirrorConfig, 'url' | 'downloadTimeoutSeconds' | 'indexTimeoutSeconds' | 'minBytesPerSecond' | 'stallSeconds' | 'maxKitBytes' | 'waitSeconds'>;
  trustedKeys(): Promise<TrustedKey[]>;
  /**
   * The site's trust (functions/common/site-trust.ts); absent: the implicit
   * root of `trustedKeys` (OUK_TRUSTED_KEYS).
   */
  trust?(): Promise<TrustState>;
  /** OUK_REQUIRE_ATTESTATION: a kit without its .intoto.json is not pulled. */
  requireAttestation?: boolean;
  /** The crypto policy in force (STELLA_CRYPTO_POLICY): a kit outside it is not pulled. */
  cryptoPolicy?: CryptoPolicy;
  /** Starts the import of an object put into the bucket (queue/ingest.ts ingestObject). */
  ingest(obj: { bucket: string; key: string; etag: string; size: number }): Promise<{ importId: string }>;
  /** Retries an import from its failed stage (queue/retry.ts retryImport). */
  retry(importId: string): Promise<void>;
  logger: Logger;
  now(): Date;
  fetch?: FetchFn;
  /** Parent of the download directory (default os.tmpdir()). */
  tmpDir?: string;
  /** How often an import record is polled (default 500 ms). */
  pollMs?: number;
  /** Ends the round early (a scheduled round's deadline): downloads are cut, waits end, the round ends pending. */
  signal?: AbortSignal;
}

export interface PulledKit {
  file: string;
  version: string;
  kind: 'full' | 'delta';
  action: MirrorStep['action'];
  importId: string;
  sha256: string;
}

export interface MirrorPullResult {
  mirror: string;
  dryRun: boolean;
  plan: MirrorPlan;
  /** Steps carried out, in order, each now active. */
  applied: PulledKit[];
  /** Every step of the plan is active (false: one is still importing; the next round continues). */
  done: boolean;
  /** The active version when the round ended. */
  activeAfter: string | null;
  /** Why the round stopped early, when it did. */
  pending?: string;
  /**
   * ok (everything pulled, or up to date), pending (the next round continues),
   * or why it could pull nothing although the site is not up to date with the
   * mirror: ahead-of-mirror, nothing-applies (the plan's route, its notes say why).
   */
  outcome: RoundOutcome;
}

export type RoundOutcome = 'ok' | 'pending' | 'ahead-of-mirror' | 'nothing-applies';

function outcomeOf(r: Omit<MirrorPullResult, 'outcome'>): RoundOutcome {
  if (r.plan.route === 'ahead-of-mirror' || r.plan.route === 'nothing-applies') return r.plan.route;
  return r.done ? 'ok' : 'pending';
}

function urlOf(deps: MirrorDeps, file: string): string {
  return new URL(encodeURIComponent(file), deps.mirror.url).toString();
}

/** The bounds of one download: index.json and signature files (`small`) or a kit. */
function limitsFor(deps: Pick<MirrorDeps, 'mirror' | 'signal'>, maxBytes: number, what: 'small' | 'kit'): FetchLimits {
  const m = deps.mirror;
  return {
    maxBytes,
    timeoutMs: (what === 'kit' ? m.downloadTimeoutSeconds : m.indexTimeoutSeconds) * 1000,
    timeoutSetting: what === 'kit' ? 'OUK_MIRROR_TIMEOUT_SECONDS' : 'OUK_MIRROR_INDEX_TIMEOUT_SECONDS',
    minRate: { bytesPerSecond: m.minBytesPerSecond, windowMs: m.stallSeconds * 1000 },
    signal: deps.signal,
  };
}

export async function fetchMirrorIndex(deps: Pick<MirrorDeps, 'mirror' | 'fetch' | 'signal'>): Promise<ReturnType<typeof parseMirrorIndex>> {
  const url = new URL(MIRROR_INDEX_FILE, deps.mirror.url).toString();
  let raw: Buffer | null;
  try {
    raw = await downloadSmall(deps.fetch ?? fetch, url, limitsFor(deps, MAX_MIRROR_INDEX_BYTES, 'small'));
  } catch (e) {
    if (isOukError(e) && e.code === 'MIRROR_TOO_LARGE') throw new OukError('MIRROR_INDEX_INVALID', `the mirror's ${MIRROR_INDEX_FILE} is larger than ${MAX_MIRROR_INDEX_BYTES} bytes: refused`, { cause: e });
    throw e;
  }
  if (!raw) {
    throw new OukError('MIRROR_INDEX_INVALID', `${url} does not exist: the mirror directory needs an ${MIRROR_INDEX_FILE} (\`stella ouk build --index\` writes it beside the kits)`);
  }
  return parseMirrorIndex(raw);
}

async function knownImports(pool: Pool, index: ReturnType<typeof parseMirrorIndex>): Promise<KnownImport[]> {
  const found = await importsOfBundles(pool, index.kits.map((k) => k.sha256), index.kits.map((k) => mirrorKeyFor(k.file)));
  return found.map((x) => ({ id: x.id, objectKey: x.objectKey, digest: x.digest, version: x.version, state: x.state, errorCode: x.errorCode }));
}

async function unfinishedImports(pool: Pool): Promise<string[]> {
  return unfinishedImportIds(pool);
}

/** Plans a round without changing anything (what `--dry-run` prints). */
export async function planMirrorPull(deps: MirrorDeps): Promise<MirrorPlan> {
  const index = await fetchMirrorIndex(deps);
  const pointer = await readActivePointer(deps.pool);
  const active = pointer.activeVersion ? { version: pointer.activeVersion, digest: pointer.activeDigest } : null;
  return planMirror({ index, active, imports: await knownImports(deps.pool, index), now: deps.now() });
}

/**
 * Refuses a kit the round must not download: announced larger than
 * OUK_MIRROR_MAX_KIT_BYTES (the index is hostile input), or larger than what
 * the temporary directory has free. Nothing is fetched before this passes.
 */
async function checkRoom(deps: MirrorDeps, entry: MirrorIndexEntry, dir: string): Promise<void> {
  if (entry.size > deps.mirror.maxKitBytes) {
    throw new OukError(
      'MIRROR_TOO_LARGE',
      `the mirror's index announces ${entry.file} as ${entry.size} bytes, above OUK_MIRROR_MAX_KIT_BYTES (${deps.mirror.maxKitBytes}): refused before downloading — raise the limit if the kit is really that large`,
    );
  }
  const free = await statfs(dir).then((s) => Number(s.bavail) * Number(s.bsize), () => null);
  if (free !== null && free < entry.size + TMP_MARGIN_BYTES) {
    throw new OukError(
      'INSUFFICIENT_SPACE',
      `${entry.file} (${entry.size} bytes) does not fit in ${path.dirname(dir)} (${free} bytes free): free space there or point TMPDIR at a larger disk`,
      { retryable: true },
    );
  }
}

/** The files beside a kit, optional on the mirror, with their bounds. */
const SIBLINGS = [
  { suffix: '.sig', max: MAX_SIG_BYTES },
  { suffix: '.sigs.json', max: MAX_SIGS_BYTES },
  { suffix: '.sigstore.json', max: MAX_SIGSTORE_BYTES },
  { suffix: '.intoto.json', max: MAX_ATTESTATION_BYTES },
] as const;

/** Downloads and verifies one kit into `dir`; nothing reaches the bucket here. Returns the kit and the sibling files it has, by suffix. */
async function fetchVerified(deps: MirrorDeps, entry: MirrorIndexEntry, dir: string): Promise<{ file: string; siblings: string[] }> {
  const fetchFn = deps.fetch ?? fetch;
  const file = path.join(dir, entry.file);
  await checkRoom(deps, entry, dir);
  const siblings: string[] = [];
  for (const s of SIBLINGS) {
    if (await downloadToFile(fetchFn, urlOf(deps, `${entry.file}${s.suffix}`), `${file}${s.suffix}`, limitsFor(deps, s.max, 'small'))) siblings.push(s.suffix);
  }
  const trust = deps.trust ? await deps.trust() : implicitTrust(await deps.trustedKeys());
  if (!siblings.includes('.sig') && (trust.implicit || !siblings.includes('.sigs.json'))) {
    throw new OukError('SIGNATURE_MISSING', `the mirror has no ${entry.file}.sig${trust.implicit ? '' : ' nor .sigs.json'}: a kit is pulled only with its signature — publish it beside the kit`);
  }
  const got = await downloadToFile(fetchFn, urlOf(deps, entry.file), file, limitsFor(deps, entry.size, 'kit'));
  if (!got) throw new OukError('MIRROR_INDEX_INVALID', `the mirror's index lists ${entry.file} but the mirror has no such file (HTTP 404)`);
  if (got.size !== entry.size || got.sha256 !== entry.sha256) {
    throw new OukError(
      'MIRROR_DIGEST_MISMATCH',
      `${entry.file} from the mirror is not the kit its index describes (sha256 ${got.sha256.slice(0, 16)}…, ${got.size} bytes; index: ${entry.sha256.slice(0, 16)}…, ${entry.size} bytes): altered or half-copied on the mirror — nothing was put into the bucket`,
    );
  }
  // As `stella ouk verify` does: against the site's trust, the structure, every member, the attestation when present.
  const verified = await verifyKitFile(file, { trust, now: deps.now(), requireAttestation: deps.requireAttestation ?? false, ...(deps.cryptoPolicy ? { policy: deps.cryptoPolicy } : {}) });
  const differs = entryMismatch(entry, verified.manifest);
  if (differs) throw new OukError('MIRROR_INDEX_INVALID', `the mirror's index entry for ${entry.file} disagrees with the kit's signed manifest (${differs}): refused`);
  return { file, siblings };
}

async function put(deps: MirrorDeps, local: string, key: string): Promise<{ etag: string; size: number }> {
  const size = (await stat(local)).size;
  return uploadStream(deps.store, deps.bucket, key, createReadStream(local, { highWaterMark: 1 << 20 }), size);
}

/** Downloads, verifies and puts one kit (signature files first); returns the started import. */
async function pullStep(deps: MirrorDeps, entry: MirrorIndexEntry): Promise<string> {
  const dir = await mkdtemp(path.join(deps.tmpDir ?? os.tmpdir(), 'stella-mirror-'));
  try {
    const got = await fetchVerified(deps, entry, dir);
    const key = mirrorKeyFor(entry.file);
    for (const suffix of got.siblings) await put(deps, `${got.file}${suffix}`, `${key}${suffix}`);
    const up = await put(deps, got.file, key);
    const { importId } = await deps.ingest({ bucket: deps.bucket, key, etag: up.etag, size: up.size });
    deps.logger.info({ importId, file: entry.file, version: entry.version, kind: entry.kind }, 'mirror: kit verified and put into the bucket; import started');
    return importId;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Retries an import the plan found refused. Someone may have retried it since
 * the plan was read — the reconciler does once a delta's base is active, an
 * operator with `stella ouk retry` — and then the retry answers
 * NOTHING_TO_RETRY: the import is on its way, which is what the round wanted,
 * so the round goes on and waits for it. Only while the record still says
 * failed (or rolled back) is NOTHING_TO_RETRY the round's error.
 */
async function retryStep(deps: MirrorDeps, importId: string): Promise<void> {
  try {
    await deps.retry(importId);
  } catch (e) {
    if (!isOukError(e) || e.code !== 'NOTHING_TO_RETRY') throw e;
    const rec = await getImport(deps.pool, importId);
    if (!rec || rec.state === 'failed' || rec.state === 'rolled-back') throw e;
    deps.logger.info({ importId, state: rec.state }, 'mirror: the import was already retried (by the reconciler or an operator): waiting for it');
  }
}

type Settled = { state: 'active' } | { state: 'pending'; why: string };

/** Why the round's signal fired (its reason's message), or null while it has not. */
function stoppedWhy(deps: Pick<MirrorDeps, 'signal'>): string | null {
  const s = deps.signal;
  if (!s?.aborted) return null;
  return s.reason instanceof Error ? s.reason.message : 'the round was stopped';
}

/** Waits `ms`, or less when the round's signal fires (the caller checks `stoppedWhy`). */
async function pause(deps: Pick<MirrorDeps, 'signal' | 'pollMs'>, ms = deps.pollMs ?? 500): Promise<void> {
  await sleep(ms, undefined, deps.signal ? { signal: deps.signal } : undefined).catch(() => undefined);
}

/** Polls the import record until it is active (ok), failed (throws), the wait runs out or the round is stopped. */
async function waitActive(deps: MirrorDeps, importId: string, what: string): Promise<Settled> {
  const end = Date.now() + deps.mirror.waitSeconds * 1000;
  for (;;) {
    const rec = await getImport(deps.pool, importId);
    if (rec?.state === 'active' || rec?.state === 'superseded') return { state: 'active' };
    if (rec?.state === 'quarantined' || rec?.state === 'removed') {
      throw new OukError('IMPORT_FAILED', `the import of ${what} from the mirror (${importId}) was refused and quarantined: ${rec.errorCode ?? rec.quarantineCode}: ${rec.error ?? ''} — see \`stella ouk quarantine show ${importId}\``);
    }
    if (rec?.state === 'failed' || rec?.state === 'rolled-back') {
      throw new OukError('IMPORT_FAILED', `the import of ${what} from the mirror (${importId}) ${rec.state === 'failed' ? `failed: ${rec.errorCode}: ${rec.error}` : 'was rolled back'} — fix the cause and run \`stella ouk retry ${importId}\`; the mirror pull continues after it`);
    }
    const stopped = stoppedWhy(deps);
    if (stopped) return { state: 'pending', why: `${stopped} while ${what} (import ${importId}) was ${rec?.state ?? 'unknown'}: the next round continues from it` };
    if (Date.now() > end) return { state: 'pending', why: `${what} (import ${importId}) is still ${rec?.state ?? 'unknown'} after ${deps.mirror.waitSeconds} s: the next round continues from it` };
    await pause(deps);
  }
}

/** Waits (bounded) for imports under way, so the plan starts from a settled site. */
async function settle(deps: MirrorDeps): Promise<string | null> {
  const end = Date.now() + deps.mirror.waitSeconds * 1000;
  for (;;) {
    const busy = await unfinishedImports(deps.pool);
    if (!busy.length) return null;
    const stopped = stoppedWhy(deps);
    if (stopped) return `${stopped} while imports ${busy.join(', ')} were under way: the next round plans once they are done`;
    if (Date.now() > end) return `imports ${busy.join(', ')} are still under way after ${deps.mirror.waitSeconds} s: the next round plans once they are done`;
    await pause(deps);
  }
}

/** The advisory lock a round holds (one round at a time in the cluster). */
const ROUND_LOCK = 'ouk-mirror-round';

export interface MirrorPullOptions {
  dryRun?: boolean;
  /** How long to wait for a round under way elsewhere before ending as pending (default 0: at once). */
  lockWaitMs?: number;
}

export async function mirrorPull(deps: MirrorDeps, opts: MirrorPullOptions = {}): Promise<MirrorPullResult> {
  const r = await round(deps, opts);
  return { ...r, outcome: outcomeOf(r) };
}

type RoundResult = Omit<MirrorPullResult, 'outcome'>;

async function round(deps: MirrorDeps, opts: MirrorPullOptions): Promise<RoundResult> {
  const dryRun = Boolean(opts.dryRun);
  const base = { mirror: deps.mirror.url, dryRun };
  if (dryRun) {
    const plan = await planMirrorPull(deps);
    return { ...base, plan, applied: [], done: plan.steps.length === 0, activeAfter: plan.active };
  }
  await fetchMirrorIndex(deps); // an unreachable mirror or a bad index fails before anything waits
  const lock = await connect(deps.pool);
  try {
    const end = Date.now() + (opts.lockWaitMs ?? 0);
    for (;;) {
      const got = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [ROUND_LOCK]);
      if (got.rows[0]?.ok) break;
      const stopped = stoppedWhy(deps);
      if (stopped || Date.now() >= end) {
        return pendingRound(deps, base, `${stopped ? `${stopped}: ` : ''}another mirror round is under way (another worker, or \`stella ouk mirror pull\`): it goes on from where the site is`);
      }
      await pause(deps);
    }
    try {
      return await lockedRound(deps, base);
    } finally {
      await lock.query('SELECT pg_advisory_unlock(hashtext($1))', [ROUND_LOCK]).catch(() => undefined);
    }
  } finally {
    lock.release();
  }
}

/**
 * A round that pulls nothing now, and why: the plan as it stands. The plan is
 * read without the round's signal (it may have fired already), within the
 * index download's own bounds.
 */
async function pendingRound(deps: MirrorDeps, base: { mirror: string; dryRun: boolean }, why: string): Promise<RoundResult> {
  const plan = await planMirrorPull({ ...deps, signal: undefined });
  return { ...base, plan, applied: [], done: false, activeAfter: plan.active, pending: why };
}

/** A round, under the round lock: settle, plan, pull each step and wait for it. */
async function lockedRound(deps: MirrorDeps, base: { mirror: string; dryRun: boolean }): Promise<RoundResult> {
  const busy = await settle(deps);
  if (busy) return pendingRound(deps, base, busy);
  const plan = await planMirrorPull(deps);
  const applied: PulledKit[] = [];
  const pending = async (why: string): Promise<RoundResult> => ({ ...base, plan, applied, done: false, activeAfter: (await readActivePointer(deps.pool)).activeVersion, pending: why });
  for (const step of plan.steps) {
    const e = step.entry;
    const what = `${e.kind} ${e.version} (${e.file})`;
    let importId: string;
    if (step.action === 'blocked') throw new OukError('IMPORT_FAILED', `mirror pull stopped at ${step.why}`);
    try {
      if (step.action === 'pull') importId = await pullStep(deps, e);
      else {
        importId = step.importId!;
        if (step.action === 'retry') await retryStep(deps, importId);
      }
    } catch (err) {
      // Cut by the round's deadline (a download under way): nothing of this kit was put; the next round pulls it.
      const stopped = stoppedWhy(deps);
      if (stopped) return pending(`${stopped} while pulling ${what}: the kit did not go into the bucket; the next round pulls it`);
      throw err;
    }
    const settled = await waitActive(deps, importId, what);
    if (settled.state === 'pending') return pending(settled.why);
    applied.push({ file: e.file, version: e.version, kind: e.kind, action: step.action, importId, sha256: e.sha256 });
    deps.logger.info({ importId, version: e.version }, 'mirror: kit active');
  }
  return { ...base, plan, applied, done: true, activeAfter: (await readActivePointer(deps.pool)).activeVersion };
}
