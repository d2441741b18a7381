/**
 * Walking roots forward (TUF spec 1.0 §5.3): from the trusted root N, a
 * candidate is accepted only as version N+1 exactly, signed by a threshold of
 * N's root keys and by a threshold of its own; then it is the trusted root and
 * the next candidate must be N+2. A kit carries `trust/root.<N>.json` members;
 * those at or below the trusted version are ignored (a site that is ahead has
 * them already), a gap is refused. Roots in the middle of a chain may have
 * expired (a site offline for a year still catches up); the root reached at
 * the end must not have (requireUnexpired) — which is how a kit that carries
 * the next root is accepted while the site's own root has expired.
 */
import { OukError } from '../../lib/errors.ts';
import { KIT_ROLE, parseRoot, ROOT_ROLE, type RootMetadata } from './document.ts';
import { describeSigners, meetsThreshold } from './signatures.ts';
import type { TrustState } from './trust-state.ts';

export interface CarriedRoot {
  /** The version its name gives (`trust/root.<N>.json`), checked against the document's. */
  version: number;
  raw: Buffer;
  /** Where it was found, for messages: `kit.tar.gz:trust/root.3.json`. */
  source: string;
}

/** Trust in a pinned root: it must carry a threshold of its own root keys (as python-tuf checks its trusted root). */
export function pinnedTrust(md: RootMetadata, source: string): TrustState {
  if (!meetsThreshold(md, ROOT_ROLE, md)) {
    throw new OukError('ROOT_INVALID', `${source}: root v${md.signed.version} is signed by ${describeSigners(md, ROOT_ROLE, md)}, short of its own root threshold: it is not a root anyone can trust — get the root the publisher signed`);
  }
  return { root: md, revoked: new Map(), chain: [md.signed.version], source, implicit: false };
}

/** One step N → N+1 (see the header), or ROOT_INVALID. */
export function stepTrust(state: TrustState, next: RootMetadata, source: string): TrustState {
  const cur = state.root;
  const want = cur.signed.version + 1;
  if (next.signed.version !== want) throw new OukError('ROOT_INVALID', `${source} is root v${next.signed.version}, the step after v${cur.signed.version} must be v${want}`);
  if (!meetsThreshold(cur, ROOT_ROLE, next)) {
    throw new OukError('ROOT_INVALID', `${source}: root v${want} is signed by ${describeSigners(cur, ROOT_ROLE, next)}, short of v${cur.signed.version}'s root threshold: it is not the publisher's next root — do not use this kit, get one from the publisher`);
  }
  if (!meetsThreshold(next, ROOT_ROLE, next)) {
    throw new OukError('ROOT_INVALID', `${source}: root v${want} is signed by ${describeSigners(next, ROOT_ROLE, next)}, short of its own root threshold: the rotation was not completed by the new root keys — the publisher must sign it again`);
  }
  const revoked = new Map(state.revoked);
  const nextKit = new Set(next.signed.roles[KIT_ROLE]!.keyIDs);
  for (const keyid of cur.signed.roles[KIT_ROLE]!.keyIDs) if (!nextKit.has(keyid)) revoked.set(keyid, cur.signed.keys[keyid]!);
  // A key the newest root lists again is trusted again: the newest root decides.
  for (const keyid of nextKit) revoked.delete(keyid);
  return { root: next, revoked, chain: [...state.chain, want], source: state.source, implicit: false };
}

/**
 * Follows the roots a kit carries from `state` (see the header). An implicit
 * root (bare trusted keys) follows none: the result says which were ignored.
 */
export function advanceTrust(state: TrustState, carried: CarriedRoot[]): { state: TrustState; ignored: number[] } {
  const sorted = [...carried].sort((a, b) => a.version - b.version);
  if (state.implicit) return { state, ignored: sorted.map((c) => c.version) };
  let cur = state;
  const ignored: number[] = [];
  for (const c of sorted) {
    if (c.version <= cur.root.signed.version) {
      ignored.push(c.version);
      continue;
    }
    if (c.version !== cur.root.signed.version + 1) {
      throw new OukError('ROOT_INVALID', `the kit carries root v${c.version} but not v${cur.root.signed.version + 1}: the chain from the trusted root v${cur.root.signed.version} (${state.source}) has a gap — get the kit that carries the missing root, or a newer root from the publisher`);
    }
    const md = parseRoot(c.raw, c.source);
    if (md.signed.version !== c.version) throw new OukError('ROOT_INVALID', `${c.source} holds root v${md.signed.version}, not v${c.version} as its name says`);
    cur = stepTrust(cur, md, c.source);
  }
  return { state: cur, ignored };
}

/** ROOT_EXPIRED when the root reached has expired at `now` (the verifier's clock, injected). */
export function requireUnexpired(state: TrustState, now: Date): void {
  const root = state.root.signed;
  if (!root.isExpired(now)) return;
  throw new OukError(
    'ROOT_EXPIRED',
    `the root of trust v${root.version} (${state.source}${state.chain.length > 1 ? `, reached through v${state.chain.join(' → v')}` : ''}) expired at ${root.expires}: ` +
      `nothing is accepted on it except a kit that carries the next root (trust/root.${root.version + 1}.json) — get such a kit, or check the publisher's root v${root.version + 1} with \`stella trust show\` and pin it`,
  );
}

/** Days until the root expires at `now` (negative once expired). */
export function daysToExpiry(state: TrustState, now: Date): number {
  return (Date.parse(state.root.signed.expires) - now.getTime()) / 86_400_000;
}
