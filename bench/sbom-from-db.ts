/**
 * The benchmarks' SBOMs: CycloneDX documents of real packages of the active
 * DB (npm, PyPI, Maven, Go), each at a version its ranges name, so that they
 * hit. `seed` picks another set of packages (bench/import.bench.ts,
 * bench/scan-profile.ts).
 */
import type pg from 'pg';
import { ident, withActiveSnapshot } from '../infra/db.ts';

/** A 1,000-component CycloneDX SBOM that hits the DB: packages of real affected rows at versions their ranges name. */
export async function sbomFromDb(pool: pg.Pool, n = 1000, seed = ''): Promise<unknown> {
  const rows = await withActiveSnapshot(pool, async (client, active) =>
    (
      await client.query<{ purl: string; ranges: string }>(
        `SELECT purl, ranges FROM ${ident(active.schema)}.affected WHERE purl LIKE 'pkg:npm/%' OR purl LIKE 'pkg:pypi/%' OR purl LIKE 'pkg:maven/%' OR purl LIKE 'pkg:golang/%' ORDER BY md5(advisory_id || purl || $2) LIMIT $1`,
        [n * 3, seed],
      )
    ).rows,
  );
  const seen = new Set<string>();
  const components: unknown[] = [];
  for (const r of rows) {
    if (components.length >= n || seen.has(r.purl)) continue;
    const events = (JSON.parse(r.ranges) as { events: Record<string, string>[] }[]).flatMap((x) => x.events);
    const version = events.map((e) => e.fixed ?? e.introduced ?? e.last_affected).find((v) => v && v !== '0') ?? '1.0.0';
    seen.add(r.purl);
    components.push({ type: 'library', 'bom-ref': `c${components.length}`, name: r.purl.split('/').pop(), version, purl: `${r.purl}@${version}` });
  }
  return { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components };
}
