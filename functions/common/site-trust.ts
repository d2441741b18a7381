/**
 * The site's root of trust as the pipeline uses it (verify stage, mirror pull):
 *
 * - OUK_TRUST_ROOT set: the pinned file (signed by its own root threshold),
 *   then the chain PostgreSQL holds for it (infra/trust-roots.ts), walked
 *   again step by step with the same checks a kit's carried roots go through
 *   (signing/root/chain.ts stepTrust) — so the keys each newer root dropped
 *   are known as revoked, and a row changed behind the site's back is
 *   ROOT_INVALID, not trust. OUK_TRUSTED_KEYS (and the local stack's dev key)
 *   are then ignored, with a warning when both are set.
 * - else OUK_TRUSTED_KEYS as the implicit one-key root (today's behaviour).
 *
 * `recordReachedRoots` stores what a verified kit moved the site to: the
 * pinned root first, then each carried root the walk followed, each with its
 * audit row in the same transaction (`trust.pin` for the pinned root — a
 * first pin or a re-pin to another file —, `trust.advance` for a carried
 * one; target `root vN`). Call it only once the kit verified (and passed the
 * import policy).
 */
import { createHash } from 'node:crypto';
import { readCurrentRoot, readTrustChain, storeTrustRoots, type RootToStore } from '../../infra/trust-roots.ts';
import { OukError } from '../../lib/errors.ts';
import { appendAudit } from '../../infra/audit.ts';
import { withTransaction, type Pool } from '../../infra/db.ts';
import { configuredTrustSource, type ConfiguredTrust, type TrustedKey } from '../../signing/index.ts';
import { implicitTrust, parseRoot, pinnedTrust, readRootFile, stepTrust, type CarriedRoot, type TrustState } from '../../signing/root/index.ts';

export interface SiteTrust {
  state: TrustState;
  /** The pinned root file (absent: bare trusted keys). */
  pinned: { path: string; sha256: string; version: number; raw: Buffer } | null;
  /** The highest version PostgreSQL holds for the pinned root (0: none stored yet). */
  storedVersion: number;
  /** Said once per load: the configuration names both trusts. */
  warning: string | null;
}

export interface SiteTrustIo {
  pool: Pool;
  /** The host's bare trusted keys (OUK_TRUSTED_KEYS), loaded only when no root is pinned. */
  trustedKeys(): Promise<TrustedKey[]>;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export async function loadSiteTrust(config: ConfiguredTrust, io: SiteTrustIo): Promise<SiteTrust> {
  const { source, warning } = configuredTrustSource(config);
  if (!('root' in source)) return { state: implicitTrust(await io.trustedKeys(), source.label), pinned: null, storedVersion: 0, warning };
  const label = `${source.label}=${source.root}`;
  const { md, raw } = await readRootFile(source.root, source.label);
  let state = pinnedTrust(md, label);
  const pinned = { path: source.root, sha256: sha256(raw), version: md.signed.version, raw };
  const chain = await readTrustChain(io.pool, pinned.sha256);
  let storedVersion = 0;
  for (const row of chain) {
    storedVersion = Math.max(storedVersion, row.version);
    if (row.version <= state.root.signed.version) continue;
    const where = `the site's stored root v${row.version} (ouk_meta.trust_roots, from ${row.source})`;
    state = stepTrust(state, parseRoot(row.document, where), where);
  }
  return { state, pinned, storedVersion, warning };
}

/** What the site's current root is, for status, health and metrics: null with bare keys. */
export interface CurrentRootSummary {
  version: number;
  expires: string;
  source: string;
}

/**
 * The current root as stored, without checking signatures (a status read):
 * the newest stored version for the pinned file, or the pinned file itself
 * before any kit verified. Null with bare keys (no expiry).
 */
export async function currentRootSummary(config: ConfiguredTrust, pool: Pool): Promise<CurrentRootSummary | null> {
  const { source } = configuredTrustSource(config);
  if (!('root' in source)) return null;
  const { md, raw } = await readRootFile(source.root, source.label);
  const stored = await readCurrentRoot(pool, sha256(raw));
  if (stored && stored.version > md.signed.version) return { version: stored.version, expires: stored.expires.toISOString(), source: stored.source };
  return { version: md.signed.version, expires: new Date(md.signed.expires).toISOString(), source: `${source.label}=${source.root}` };
}

/**
 * Stores the roots a verified kit moved the site to (see the header); returns
 * the versions added. `reached` is the trust the kit was verified against.
 */
export async function recordReachedRoots(
  pool: Pool,
  site: SiteTrust,
  reached: TrustState,
  carried: readonly CarriedRoot[],
  from: { importId: string; kitVersion: string; actor: string },
  hostNow: Date,
): Promise<number[]> {
  if (!site.pinned || reached.implicit) return [];
  const top = reached.root.signed.version;
  const toStore: RootToStore[] = [];
  if (site.storedVersion === 0) {
    const md = parseRoot(site.pinned.raw, site.pinned.path);
    toStore.push({ version: site.pinned.version, document: site.pinned.raw, sha256: site.pinned.sha256, expires: new Date(md.signed.expires), source: `OUK_TRUST_ROOT=${site.pinned.path}` });
  }
  for (const c of carried) {
    if (c.version <= Math.max(site.storedVersion, site.pinned.version) || c.version > top) continue;
    const md = parseRoot(c.raw, c.source);
    toStore.push({ version: c.version, document: c.raw, sha256: sha256(c.raw), expires: new Date(md.signed.expires), source: c.source });
  }
  if (!toStore.length) return [];
  const pinned = site.pinned;
  // The roots and their audit rows together: a root the site moved to is always on the record (and never twice).
  const r = await withTransaction(pool, async (client) => {
    const before = site.storedVersion === 0 ? await readCurrentRoot(client) : null;
    const stored = await storeTrustRoots(client, pinned.sha256, toStore, { importId: from.importId, kitVersion: from.kitVersion }, hostNow);
    if (stored.conflict) return stored;
    for (const version of stored.added) {
      const pin = version === pinned.version && site.storedVersion === 0;
      const replaced = pin && before && before.pinnedSha256 !== pinned.sha256 ? `; it replaces the pin whose chain reached root v${before.version} (${before.source})` : '';
      await appendAudit(client, {
        at: hostNow,
        actor: from.actor,
        action: pin ? 'trust.pin' : 'trust.advance',
        target: `root v${version}`,
        reason: pin
          ? `pinned OUK_TRUST_ROOT=${pinned.path} (sha256 ${pinned.sha256.slice(0, 16)}…), first kit verified against it: ${from.kitVersion} (import ${from.importId})${replaced}`
          : `carried by kit ${from.kitVersion} (import ${from.importId})`,
        outcome: 'ok',
      });
    }
    return stored;
  });
  if (r.conflict) {
    const c = r.conflict;
    throw new OukError(
      'ROOT_INVALID',
      `the kit carries a root v${c.version} (sha256 ${c.offered.slice(0, 16)}…) other than the v${c.version} this site stored (sha256 ${c.stored.slice(0, 16)}…), both signed by the root keys: the publisher's root keys signed two different roots of one version — do not use this kit, and ask the publisher which root v${c.version} is theirs`,
    );
  }
  return r.added;
}
