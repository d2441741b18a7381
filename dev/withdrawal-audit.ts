/**
 * Withdrawal audit of a feeds directory: every OSV-schema record of its ghsa/
 * and osv/ folders, read in place and normalised by the builder's own adapter
 * (builder/feeds/osv.ts), sorted into
 *
 * - withdrawn by its `withdrawn` field;
 * - withdrawn in words only (builder/feeds/withdrawn-in-words.ts), by wording;
 * - standing, its summary or details still mentioning a withdrawal, a
 *   duplicate or a rejected CVE: what the rule may have missed, for a person
 *   to decide (test/withdrawn-in-words.test.ts holds the decisions for
 *   ../shared/feeds).
 *
 *   npm run audit:withdrawn -- [FEEDS_DIR] [--json]     (default ../shared/feeds)
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MalformedRecord } from '../builder/feeds/fields.ts';
import { normaliseOsv } from '../builder/feeds/osv.ts';
import { walkJson } from '../builder/feeds/walk.ts';
import { withdrawalWording, type WithdrawalWording } from '../builder/feeds/withdrawn-in-words.ts';

/** Text that speaks of a withdrawal, a duplicate or a rejected CVE, in any sense. */
export const MENTION = /withdr|duplicat|\*\*\s*REJECT\s*\*\*|rejected reason|DO NOT USE THIS CANDIDATE/i;

export interface AuditedRecord {
  /** path under the feeds directory, e.g. ghsa/GHSA-3hrr-xwvg-hxvr.json */
  file: string;
  id: string;
  summary: string | null;
  /** the text around the first mention */
  excerpt: string;
}

export interface WithdrawnInWords extends AuditedRecord {
  wording: WithdrawalWording;
  /** the withdrawal time the builder gives it (its `modified`) */
  withdrawn: string | null;
}

export interface WithdrawalAudit {
  feedsDir: string;
  /** every file of ghsa/ and osv/ read */
  records: number;
  malformed: { file: string; reason: string }[];
  /** withdrawn by their `withdrawn` field */
  byField: number;
  /** of those, how many say it in words too */
  byFieldAndWords: number;
  /** withdrawn by the rule alone */
  inWords: WithdrawnInWords[];
  /** standing, yet their text mentions a withdrawal, a duplicate or a rejection */
  standingMentions: AuditedRecord[];
}

function excerpt(summary: string | null, details: string | null): string {
  const text = [summary, details].filter((t) => t).join('\n');
  const at = text.search(MENTION);
  const from = Math.max(0, at - 60);
  return `${from > 0 ? '…' : ''}${text.slice(from, Math.max(at, 0) + 100).replace(/\s+/g, ' ').trim()}…`;
}

export async function auditWithdrawal(feedsDir: string): Promise<WithdrawalAudit> {
  const audit: WithdrawalAudit = { feedsDir, records: 0, malformed: [], byField: 0, byFieldAndWords: 0, inWords: [], standingMentions: [] };
  for (const feed of ['ghsa', 'osv'] as const) {
    const dir = path.join(feedsDir, feed);
    if (!(await stat(dir).catch(() => null))?.isDirectory()) continue;
    for await (const full of walkJson(dir)) {
      const file = path.relative(feedsDir, full);
      audit.records++;
      let raw: { withdrawn?: unknown; summary?: unknown; details?: unknown };
      let rec: ReturnType<typeof normaliseOsv>;
      try {
        raw = JSON.parse(await readFile(full, 'utf8')) as typeof raw;
        rec = normaliseOsv(raw, feed);
      } catch (e) {
        if (!(e instanceof SyntaxError || e instanceof MalformedRecord)) throw e;
        audit.malformed.push({ file, reason: e.message });
        continue;
      }
      const wording = withdrawalWording(rec.summary, rec.details);
      const entry = { file, id: rec.source.id, summary: rec.summary, excerpt: excerpt(rec.summary, rec.details) };
      if (typeof raw.withdrawn === 'string' && raw.withdrawn !== '') {
        audit.byField++;
        if (wording) audit.byFieldAndWords++;
      } else if (rec.source.withdrawn !== null) {
        audit.inWords.push({ ...entry, wording: wording!, withdrawn: rec.source.withdrawn });
      } else if (MENTION.test(`${rec.summary ?? ''}\n${rec.details ?? ''}`)) {
        audit.standingMentions.push(entry);
      }
    }
  }
  return audit;
}

function printAudit(a: WithdrawalAudit): void {
  const byWording = new Map<string, number>();
  for (const r of a.inWords) byWording.set(r.wording, (byWording.get(r.wording) ?? 0) + 1);
  console.log(`${a.feedsDir}: ${a.records} OSV/GHSA records, ${a.malformed.length} malformed`);
  console.log(`withdrawn by their \`withdrawn\` field: ${a.byField} (${a.byFieldAndWords} say so in words too)`);
  console.log(`withdrawn in words only: ${a.inWords.length} (${[...byWording].map(([w, n]) => `${w} ${n}`).join(', ')})`);
  for (const r of a.inWords) console.log(`  ${r.wording.padEnd(12)} ${r.file}  ${r.excerpt}`);
  console.log(`standing, mentioning a withdrawal, duplicate or rejection: ${a.standingMentions.length}`);
  for (const r of a.standingMentions) console.log(`  ${r.file}  ${r.excerpt}`);
  for (const m of a.malformed) console.log(`  malformed ${m.file}: ${m.reason}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0); // `| head`
    throw e;
  });
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const dir = args.find((x) => x !== '--json') ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/feeds');
  const audit = await auditWithdrawal(path.resolve(dir));
  if (json) console.log(JSON.stringify(audit, null, 2));
  else printAudit(audit);
}
