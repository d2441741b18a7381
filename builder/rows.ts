/**
 * One merged advisory as rows of the DB members (bundle/tables.ts), encoded in
 * COPY text format. Cells are produced by column name and laid out in the
 * column order tables.ts defines, so the two cannot drift apart. Within an
 * advisory, rows are sorted by their encoded bytes and exact duplicates dropped:
 * the same advisory always gives the same lines.
 */
import { createHash } from 'node:crypto';
import { EXTRA_TABLES } from '../bundle/extra-tables.ts';
import { canonicalJson } from '../bundle/manifest.ts';
import { packageKey } from '../bundle/package-name.ts';
import { type TableName, TABLES } from '../bundle/tables.ts';
import { type Cell, encodeRow } from '../bundle/tsv.ts';
import { pickHeadline } from './cvss.ts';
import { byteCompare } from './merge.ts';
import type { Advisory } from './model.ts';

export type AdvisoryRows = Record<TableName, string[]>;

export interface AdvisoryDoc {
  /** What no other column or table carries, as canonical JSON: the `doc` column. */
  doc: string;
  /** sha256 hex of the whole merged advisory as canonical JSON: the `content_hash` column, what a delta compares. */
  contentHash: string;
}

/**
 * The `doc` column: the parts of an advisory its own columns (summary,
 * headline severity, times) and the aliases, affected and cpes tables do not
 * carry — the details text, references, every severity vector, database
 * severities, CWEs, related and upstream ids, and the sources. Everything is
 * carried once; the content hash still covers the whole advisory.
 */
export type AdvisoryDetail = Pick<Advisory, 'details' | 'references' | 'severity' | 'databaseSeverity' | 'cwes' | 'related' | 'upstream' | 'sources'>;

export function advisoryDetail(adv: Advisory): AdvisoryDetail {
  const { details, references, severity, databaseSeverity, cwes, related, upstream, sources } = adv;
  return { details, references, severity, databaseSeverity, cwes, related, upstream, sources };
}

export function advisoryDoc(adv: Advisory): AdvisoryDoc {
  return {
    doc: canonicalJson(advisoryDetail(adv)),
    contentHash: createHash('sha256').update(canonicalJson(adv), 'utf8').digest('hex'),
  };
}

function encode(table: TableName, cells: Record<string, Cell>): string {
  const def = TABLES.find((t) => t.name === table)!;
  return encodeRow(
    def.columns.map((c) => {
      const v = cells[c.name];
      if ((v === null || v === undefined) && !c.nullable) throw new Error(`rows: ${table}.${c.name} may not be null`);
      return v;
    }),
  );
}

function sortedLines(lines: string[]): string[] {
  return [...new Set(lines)].sort(byteCompare);
}

export function advisoryRows(adv: Advisory): AdvisoryRows {
  const { doc, contentHash } = advisoryDoc(adv);
  const headline = pickHeadline(adv.severity, adv.databaseSeverity);
  const advisories = [
    encode('advisories', {
      advisory_id: adv.id,
      summary: adv.summary,
      severity: headline.severity,
      cvss_score: headline.score,
      cvss_vector: headline.vector,
      published: adv.published,
      modified: adv.modified,
      withdrawn: adv.withdrawn,
      sources: [...new Set(adv.sources.map((s) => s.feed))].sort().join(','),
      content_hash: contentHash,
      doc,
    }),
  ];
  const aliases = sortedLines(adv.aliases.map((alias) => encode('aliases', { advisory_id: adv.id, alias })));
  const affected = sortedLines(
    adv.affected.map((a) =>
      encode('affected', {
        advisory_id: adv.id,
        ecosystem: a.ecosystem,
        package: packageKey(a.ecosystem, a.name),
        purl: a.purl ?? null,
        ranges: canonicalJson(a.ranges),
        versions: JSON.stringify(a.versions),
        ecosystem_specific: a.ecosystem_specific === undefined ? null : canonicalJson(a.ecosystem_specific),
      }),
    ),
  );
  const cpes = sortedLines(
    adv.cpes.map((c) =>
      encode('cpes', {
        advisory_id: adv.id,
        part: c.part,
        vendor: c.vendor,
        product: c.product,
        criteria: c.criteria,
        vulnerable: c.vulnerable,
        version_start_including: c.versionStartIncluding ?? null,
        version_start_excluding: c.versionStartExcluding ?? null,
        version_end_including: c.versionEndIncluding ?? null,
        version_end_excluding: c.versionEndExcluding ?? null,
      }),
    ),
  );
  return { advisories, aliases, affected, cpes };
}

const VEX = EXTRA_TABLES.find((t) => t.name === 'vex')!;

/** The advisory's VEX statements as rows of the kit's `vex` table (bundle/extra-tables.ts), sorted. */
export function vexRows(adv: Advisory): string[] {
  return sortedLines(
    (adv.vex ?? []).map((v) => {
      const cells: Record<string, string | null> = {
        advisory_id: adv.id,
        vulnerability_id: v.vulnerability,
        product_purl: v.purl,
        product_cpe: v.cpe,
        status: v.status,
        justification: v.justification,
        impact_statement: v.impact,
        publisher: v.publisher,
        document: v.document,
        released: v.released,
      };
      return encodeRow(VEX.columns.map((c) => cells[c.name] ?? null));
    }),
  );
}
