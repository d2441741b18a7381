/**
 * Release notes beside each kit: `stella-ouk-V[-full].json` (for machines)
 * and `.md` (for people): version, kind, base, the tarball's sha256 and
 * size, each feed's snapshot, and the advisories added, modified and
 * withdrawn since the previous kit — ids up to a limit, counts always. The
 * sha256 here is the one the seed's "check the SHA-256 digest in the
 * release notes" means.
 */
import type { FeedSummary } from '../../bundle/manifest.ts';
import type { MirrorIndexEntry } from '../../bundle/mirror-index.ts';
import { terminalText } from '../../lib/terminal-text.ts';
import type { CatalogChanges } from './catalog.ts';

export const NOTES_FORMAT = 1;

export interface ReleaseNotes {
  formatVersion: number;
  file: string;
  version: string;
  kind: 'full' | 'delta';
  base: { version: string; dbDigest: string } | null;
  sha256: string;
  size: number;
  dbDigest: string;
  advisories: number;
  created: string;
  expires: string;
  feeds: { name: string; snapshot: string | null; records: number; skipped: number }[];
  /** The kit the changes are counted against: the mirror's newest before tonight (null: the first kit). */
  previous: string | null;
  changes: CatalogChanges & { idLimit: number };
  /** The files beside the kit. */
  files: { signatures: string[]; attestation: string; torrent: string | null };
}

export function notesFor(args: {
  entry: MirrorIndexEntry;
  feeds: FeedSummary[];
  advisories: number;
  previous: string | null;
  changes: CatalogChanges;
  idLimit: number;
  torrent: string | null;
}): ReleaseNotes {
  const e = args.entry;
  return {
    formatVersion: NOTES_FORMAT,
    file: e.file,
    version: e.version,
    kind: e.kind,
    base: e.base,
    sha256: e.sha256,
    size: e.size,
    dbDigest: e.dbDigest,
    advisories: args.advisories,
    created: e.created,
    expires: e.expires,
    feeds: args.feeds.map((f) => ({ name: f.name, snapshot: f.snapshot, records: f.records, skipped: f.skipped })),
    previous: args.previous,
    changes: { ...args.changes, idLimit: args.idLimit },
    files: { signatures: [`${e.file}.sig`, `${e.file}.sigstore.json`, `${e.file}.sigs.json`], attestation: `${e.file}.intoto.json`, torrent: args.torrent },
  };
}

/** Upstream text (ids, feed names) as plain Markdown-safe text. */
const md = (s: string): string => terminalText(s).replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`);

function idList(title: string, list: { count: number; ids: string[] }, limit: number): string[] {
  const lines = [`### ${title}: ${list.count}`, ''];
  if (list.count === 0) return [...lines, 'none', ''];
  lines.push(...list.ids.map((id) => `- ${md(id)}`));
  if (list.count > list.ids.length) lines.push(`- … and ${list.count - list.ids.length} more (the first ${limit} are listed)`);
  return [...lines, ''];
}

export function notesMarkdown(n: ReleaseNotes): string {
  const lines = [
    `# Stella OUK ${n.version} (${n.kind})`,
    '',
    `- file: \`${n.file}\``,
    `- sha256: \`${n.sha256}\``,
    `- size: ${n.size} bytes`,
    `- kind: ${n.kind}${n.base ? `, on ${n.base.version} (DB \`${n.base.dbDigest}\`)` : ''}`,
    `- yields DB \`${n.dbDigest}\`: ${n.advisories} advisories`,
    `- created ${n.created}, expires ${n.expires}`,
    `- signatures: ${n.files.signatures.map((f) => `\`${f}\``).join(', ')}; attestation \`${n.files.attestation}\`${n.files.torrent ? `; torrent \`${n.files.torrent}\`` : ''}`,
    '',
    'Check it: `sha256sum ' + n.file + '` must print the sha256 above; `stella ouk verify ' + n.file + '` checks the signatures.',
    '',
    '## Feeds',
    '',
    '| feed | snapshot | records | skipped |',
    '|---|---|---|---|',
    ...n.feeds.map((f) => `| ${md(f.name)} | ${md(f.snapshot ?? 'unknown')} | ${f.records} | ${f.skipped} |`),
    '',
    `## Advisories since ${n.previous ?? 'nothing (the first kit)'}`,
    '',
    ...idList('Added', n.changes.added, n.changes.idLimit),
    ...idList('Modified', n.changes.modified, n.changes.idLimit),
    ...idList(`Withdrawn${n.changes.removed ? ` (${n.changes.removed} of them gone from every feed)` : ''}`, n.changes.withdrawn, n.changes.idLimit),
  ];
  return `${lines.join('\n')}\n`;
}
