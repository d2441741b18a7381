/**
 * Which kits the mirror keeps (pure): every kit of the last `keepDays`, the
 * newest full kit, and whatever older kits a kept delta needs to stay
 * reachable from a kept full kit — following each delta's base (version and
 * DB digest, as a site's mirror pull does), preferring a full kit of that
 * version over an older delta. A roll-up night's delta (its version also a
 * kept full kit) pulls no chain: a site that has its base applies it as it
 * is, any other takes the full kit. Everything else goes.
 */
import type { MirrorIndexEntry } from '../../bundle/mirror-index.ts';
import { compareVersions, versionEpoch } from '../../bundle/version.ts';

const DAY = 86_400_000;

const isBaseOf = (p: MirrorIndexEntry, d: MirrorIndexEntry): boolean => d.base !== null && p.version === d.base.version && p.dbDigest === d.base.dbDigest;

function reachable(kept: Set<MirrorIndexEntry>): Set<MirrorIndexEntry> {
  const ok = new Set([...kept].filter((k) => k.kind === 'full'));
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of kept) {
      if (!ok.has(d) && [...ok].some((p) => isBaseOf(p, d))) {
        ok.add(d);
        grew = true;
      }
    }
  }
  return ok;
}

export interface PruneDecision {
  keep: MirrorIndexEntry[];
  drop: MirrorIndexEntry[];
}

export function planPrune(kits: readonly MirrorIndexEntry[], now: Date, keepDays: number): PruneDecision {
  const cut = now.getTime() - keepDays * DAY;
  const keep = new Set(kits.filter((k) => versionEpoch(k.version).getTime() >= cut));
  const fulls = kits.filter((k) => k.kind === 'full').sort((a, b) => compareVersions(b.version, a.version));
  if (fulls[0]) keep.add(fulls[0]);
  for (let grew = true; grew; ) {
    grew = false;
    const ok = reachable(keep);
    for (const d of [...keep]) {
      if (ok.has(d)) continue;
      // A delta whose version a kept full kit gives as well needs no chain: new sites take the full kit,
      // and a site that has its base applies it directly.
      if ([...keep].some((f) => f.kind === 'full' && f.version === d.version && f.dbDigest === d.dbDigest)) continue;
      const parents = kits.filter((p) => isBaseOf(p, d));
      const parent = parents.find((p) => p.kind === 'full') ?? parents[0];
      if (parent && !keep.has(parent)) {
        keep.add(parent);
        grew = true;
      }
    }
  }
  return { keep: kits.filter((k) => keep.has(k)), drop: kits.filter((k) => !keep.has(k)) };
}
