/**
 * What one mirror pull should fetch, as a pure function of the mirror's index,
 * the active DB and the imports this site already has (no I/O: the round in
 * functions/mirror/pull.ts reads them and carries the plan out).
 *
 *  - Candidates: kits newer than the newest version this site ever had active
 *    (a version rolled back is not pulled again; a newer kit is), not expired,
 *    not imported before (same sha256).
 *  - The chain of deltas from the active DB (base version AND DB digest, as the
 *    import policy checks) when it reaches the newest candidate version;
 *  - else the newest full kit, and the deltas that chain on top of it;
 *  - else, with no newer full kit, whatever part of the chain applies.
 *
 * Each step says what the round does with it: `pull` (download, verify, put
 * into the bucket), `wait` (an import of it is already under way), `retry` (it
 * was refused as a delta for another base, which is now active) or `blocked`
 * (an import of it failed; the operator retries it).
 *
 * A plan that can pull nothing says why, in its route: `up-to-date` only when
 * the mirror's newest kit is one this site has (or had); `ahead-of-mirror`
 * when the active DB — or a newer version this site had and rolled back, which
 * is the floor of what is pulled — is newer than anything the mirror offers (a
 * kit from the future got activated; a kit imported by hand the mirror never
 * got): nothing can be pulled until the mirror publishes a kit newer than that
 * floor; `nothing-applies` when newer kits exist but none can be applied.
 */
import type { MirrorIndex, MirrorIndexEntry } from '../../bundle/mirror-index.ts';
import { compareVersions } from '../../bundle/version.ts';
import { isFinished, isUnfinished } from '../../infra/import-records/states.ts';

/** The bucket key a pulled kit is put under. */
export const MIRROR_KEY_PREFIX = 'mirror/';

export function mirrorKeyFor(file: string): string {
  return `${MIRROR_KEY_PREFIX}${file}`;
}

/** An import this site has (its import record), as far as the plan needs it. */
export interface KnownImport {
  id: string;
  objectKey: string;
  digest: string | null;
  version: string | null;
  state: string;
  errorCode: string | null;
}

export interface PlanInput {
  index: MirrorIndex;
  active: { version: string; digest: string | null } | null;
  imports: KnownImport[];
  now: Date;
}

export type StepAction = 'pull' | 'wait' | 'retry' | 'blocked';

export interface MirrorStep {
  action: StepAction;
  entry: MirrorIndexEntry;
  /** The existing import of this kit (wait, retry, blocked). */
  importId?: string;
  why: string;
}

export type Route = 'up-to-date' | 'delta-chain' | 'full' | 'partial-chain' | 'nothing-applies' | 'ahead-of-mirror';

/** Routes of a plan that can pull nothing although the site is not up to date with the mirror. */
export const STUCK_ROUTES: ReadonlySet<Route> = new Set(['nothing-applies', 'ahead-of-mirror']);

export interface MirrorPlan {
  active: string | null;
  /** The newest version the mirror offers that this site does not have yet. */
  newest: string | null;
  /** The newest version the mirror's index lists at all (null: it lists none). */
  offered: string | null;
  /** Only kits newer than this are pulled: the newest version this site ever had active (null: none). */
  floor: string | null;
  route: Route;
  steps: MirrorStep[];
  notes: string[];
}

/** Refusals a retry lifts once the plan has made the kit applicable. */
const RETRYABLE = new Set(['DELTA_BASE_MISMATCH']);

function importOf(entry: MirrorIndexEntry, imports: KnownImport[]): KnownImport | undefined {
  const mine = imports.filter((i) => i.digest === entry.sha256 || (i.digest === null && i.objectKey === mirrorKeyFor(entry.file)));
  // The most telling first: one that made it, then one under way, then a failure.
  return mine.find((i) => isFinished(i.state)) ?? mine.find((i) => isUnfinished(i.state)) ?? mine[0];
}

function newestFirst(a: MirrorIndexEntry, b: MirrorIndexEntry): number {
  return compareVersions(b.version, a.version);
}

/** Deltas chaining from (version, digest) through `candidates`, newest next step first. */
function chainFrom(start: { version: string; digest: string | null }, candidates: MirrorIndexEntry[]): MirrorIndexEntry[] {
  const out: MirrorIndexEntry[] = [];
  let cur = start;
  for (;;) {
    const next = candidates
      .filter((c) => c.kind === 'delta' && c.base?.version === cur.version && c.base.dbDigest === cur.digest && !out.includes(c))
      .sort(newestFirst)[0];
    if (!next) return out;
    out.push(next);
    cur = { version: next.version, digest: next.dbDigest };
  }
}

function describe(e: MirrorIndexEntry): string {
  return e.kind === 'delta' ? `delta ${e.version} (on ${e.base!.version})` : `full ${e.version}`;
}

export function planMirror(input: PlanInput): MirrorPlan {
  const active = input.active?.version ?? null;
  const notes: string[] = [];
  let floor = active;
  for (const i of input.imports) {
    if (i.version && isFinished(i.state) && (floor === null || compareVersions(i.version, floor) > 0)) floor = i.version;
  }
  if (floor !== null && floor !== active) notes.push(`this site had ${floor} before (rolled back since): only kits newer than ${floor} are pulled`);

  const now = input.now.getTime();
  const candidates = input.index.kits.filter((k) => {
    if (floor !== null && compareVersions(k.version, floor) <= 0) return false;
    if (Date.parse(k.expires) <= now) {
      notes.push(`${k.file} expired at ${k.expires}: skipped`);
      return false;
    }
    const known = importOf(k, input.imports);
    return !(known && isFinished(known.state));
  });
  const newest = candidates.length ? [...candidates].sort(newestFirst)[0]!.version : null;
  const offered = input.index.kits.length ? [...input.index.kits].sort(newestFirst)[0]!.version : null;
  const head = { active, newest, offered, floor };
  if (newest === null) {
    if (floor !== null && (offered === null || compareVersions(offered, floor) < 0)) {
      const mirrorHas = offered === null ? 'the mirror offers no kit' : `the mirror's newest kit is ${offered}`;
      notes.push(
        floor === active
          ? `the active DB ${active} is newer than anything the mirror offers (${mirrorHas}): nothing can be pulled until the mirror publishes a kit newer than ${active} — check the mirror, and whether ${active} is a real version (a kit dated in the future freezes updates: \`stella ouk rollback\`)`
          : `this site had ${floor} (active now: ${active ?? 'none'}), newer than anything the mirror offers (${mirrorHas}): only kits newer than ${floor} are pulled, so nothing can be — import the kit you want by hand (\`stella ouk import FILE\`)`,
      );
      return { ...head, route: 'ahead-of-mirror', steps: [], notes };
    }
    if (floor === null) {
      notes.push(offered === null ? 'the mirror offers no kit: publish a full kit' : 'every kit the mirror offers has expired: publish a newer full kit');
      return { ...head, route: 'nothing-applies', steps: [], notes };
    }
    return { ...head, route: 'up-to-date', steps: [], notes };
  }

  let route: Route;
  let chosen: MirrorIndexEntry[];
  const chain = input.active ? chainFrom(input.active, candidates) : [];
  const full = candidates.filter((c) => c.kind === 'full').sort(newestFirst)[0];
  if (chain.length && chain[chain.length - 1]!.version === newest) {
    route = 'delta-chain';
    chosen = chain;
  } else if (full) {
    route = 'full';
    chosen = [full, ...chainFrom({ version: full.version, digest: full.dbDigest }, candidates)];
    if (input.active) {
      const reached = chain.length ? chain[chain.length - 1]!.version : active;
      notes.push(`the chain of deltas from the active ${active} stops at ${reached} (no delta on the mirror applies to it): the newest full kit ${full.version} instead`);
    }
  } else if (chain.length) {
    route = 'partial-chain';
    chosen = chain;
    notes.push(`the chain of deltas stops at ${chain[chain.length - 1]!.version} and the mirror has no newer full kit: applying what applies`);
  } else {
    route = 'nothing-applies';
    chosen = [];
    notes.push(
      input.active
        ? `no delta on the mirror applies to the active ${active} and it has no newer full kit: publish a full kit (or the missing deltas)`
        : 'no DB is active and the mirror has no full kit to start from: publish a full kit',
    );
  }

  const steps: MirrorStep[] = chosen.map((entry) => {
    const known = importOf(entry, input.imports);
    if (!known) return { action: 'pull', entry, why: `${describe(entry)}: download, verify, put into the bucket` };
    if (isUnfinished(known.state)) return { action: 'wait', entry, importId: known.id, why: `${describe(entry)}: import ${known.id} is under way (${known.state})` };
    if (known.state === 'quarantined' || known.state === 'removed') {
      return { action: 'blocked', entry, importId: known.id, why: `${describe(entry)}: import ${known.id} is ${known.state} (${known.errorCode ?? 'refused'}): see \`stella ouk quarantine show ${known.id}\`` };
    }
    if (known.errorCode && RETRYABLE.has(known.errorCode)) {
      return { action: 'retry', entry, importId: known.id, why: `${describe(entry)}: import ${known.id} was refused (${known.errorCode}) before its base was active: retried` };
    }
    return {
      action: 'blocked',
      entry,
      importId: known.id,
      why: `${describe(entry)}: import ${known.id} failed (${known.errorCode ?? known.state}): fix the cause and run \`stella ouk retry ${known.id}\``,
    };
  });
  return { ...head, route, steps, notes };
}
