/**
 * The freshness of the active DB as PostgreSQL records it (lib/freshness.ts
 * judges it): the active-DB pointer (infra/active-db.ts), the feeds' snapshot
 * times of its signed manifest (the import record, infra/import-records/index.ts),
 * and the newest signed time this site has seen (infra/signed-time.ts). The
 * active kit's own `created` counts as a signed time too, so a site whose kit
 * was verified before the signed time was kept still has one.
 *
 * Pass a transaction's client to read all of it from one snapshot.
 */
import type pg from 'pg';
import type { Queryable } from './db.ts';
import { assessFreshness, type Freshness, type FreshnessRule } from '../lib/freshness.ts';
import { readActivePointer } from './active-db.ts';
import { withTransaction } from './db.ts';
import { getImport } from './import-records/index.ts';
import { readSignedTime } from './signed-time.ts';


export async function readFreshness(q: Queryable, rule: FreshnessRule, hostNow: Date = new Date()): Promise<Freshness> {
  const pointer = await readActivePointer(q);
  const recorded = await readSignedTime(q);
  const rec = pointer.activeImport ? await getImport(q, pointer.activeImport) : null;
  const manifest = rec?.manifest ?? null;
  const created = manifest ? Date.parse(manifest.created) : NaN;
  let signedTime = recorded.newest;
  if (!Number.isNaN(created) && (signedTime === null || created > signedTime.getTime())) signedTime = new Date(created);
  return assessFreshness({
    hostNow,
    signedTime,
    active:
      pointer.activeImport && pointer.activeVersion
        ? { version: pointer.activeVersion, activatedAt: pointer.activatedAt, feeds: manifest?.feeds ?? [] }
        : null,
    rule,
  });
}

/** readFreshness in one REPEATABLE READ, READ ONLY snapshot of its own (DATABASE_UNAVAILABLE when PostgreSQL is unreachable). */
export function readFreshnessSnapshot(pool: pg.Pool, rule: FreshnessRule, hostNow: Date = new Date()): Promise<Freshness> {
  return withTransaction(pool, (client) => readFreshness(client, rule, hostNow), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}
