/**
 * `stella sbom …`: SBOMs stored in PostgreSQL and re-scanned after every
 * activation (full, delta, rollback) by the workers (queue/rescan.ts).
 *
 *   stella sbom add FILE --name NAME [--replace] [--json]   store and scan once (no quota)
 *   stella sbom list [--json]                               the stored SBOMs
 *   stella sbom rm NAME                                     remove one (its results and diff go too)
 *   stella sbom diff NAME [--json]                          its newest diff: new, resolved, changed findings
 *   stella sbom status [--json]                             every SBOM: counts, DB version, newest changes
 *
 * Like `stella ouk status`, these talk to PostgreSQL directly (DATABASE_URL);
 * `add` scans with the same matcher as `stella scan`. `list`, `diff` and
 * `status` only read: they never change the schema (none: NOTHING_ACTIVE, an
 * old one: SCHEMA_OUTDATED); `add` and `rm` apply the migrations first.
 * Exit codes: 41 FILE missing, 60 SBOM_INVALID, 64 SBOM_TOO_LARGE, 2 USAGE (a
 * bad name), 66 SBOM_NOT_FOUND, 67 SBOM_EXISTS, 33 NOTHING_ACTIVE (no schema
 * yet, for the commands that only read).
 */
import type { Command } from 'commander';
import { deleteSbom } from '../../infra/sboms.ts';
import { OukError } from '../../lib/errors.ts';
import { SEVERITIES } from '../../lib/severity.ts';
import { addSbom, checkSbomName, sbomNotFound, type AddSbomResult, type FindingChange } from '../../functions/sboms/rescan.ts';
import { readDiff, readStatus, type SbomDiffReport, type SbomStatusReport } from '../../functions/sboms/report.ts';
import { storedSbomScanner } from '../../scan/stored.ts';
import type { Finding } from '../../scan/findings.ts';
import { parseSbomJson, readSbomFileText } from '../../scan/sbom.ts';
import { terminalText as t } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';
import { cliClientId } from './scan.ts';

/** The SBOM file as a JSON document, bounded like the scan API (STELLA_SCAN_MAX_BYTES). */
export async function readSbomDocument(file: string, maxBytes: number): Promise<{ document: unknown; bytes: number }> {
  const tooLarge = (size: number) => new OukError('SBOM_TOO_LARGE', `SBOM ${file} is ${size} bytes, above the ${maxBytes}-byte limit (STELLA_SCAN_MAX_BYTES): split it`);
  const { text, bytes } = await readSbomFileText(file, maxBytes, tooLarge);
  return { document: parseSbomJson(text, `SBOM ${file}`), bytes };
}

function severityLine(bySeverity: Record<string, number>): string {
  const parts = SEVERITIES.filter((s) => (bySeverity[s] ?? 0) > 0).map((s) => `${bySeverity[s]} ${s}`);
  return parts.length ? parts.join(', ') : 'none';
}

// Names, versions, package names and who added an SBOM come from outside (the SBOM, the kit, a
// token's subject): every one is printed through terminalText (t), so none reaches the terminal raw.

export function renderAdded(r: AddSbomResult): string {
  const head = `${r.state === 'replaced' ? 'replaced' : 'stored'} ${t(r.name)} (${t(r.format)} ${t(r.specVersion)}, ${r.components} components)`;
  if (!r.scan) return `${head}\nno DB is active yet: the first activation scans it\n`;
  return `${head}\nscanned against ${t(r.scan.dbVersion)}: ${r.scan.counts.findings} finding${r.scan.counts.findings === 1 ? '' : 's'} (${severityLine(r.scan.counts.bySeverity)}); re-scanned after every activation\n`;
}

/** `s` escaped (terminalText), then padded to `n` columns (one space at least). */
function pad(s: string, n: number): string {
  const e = t(s);
  return e.length >= n ? `${e} ` : e + ' '.repeat(n - e.length);
}

function findingLine(mark: string, f: Finding): string {
  const cve = f.aliases.find((a) => a.startsWith('CVE-'));
  const id = cve && cve !== f.advisoryId ? `${f.advisoryId} (${cve})` : f.advisoryId;
  return `  ${mark} ${pad(f.severity, 9)}${pad(`${f.package} ${f.installedVersion}`, 36)}${pad(id, 40)}${f.fixedVersion ? `fixed in ${t(f.fixedVersion)}` : ''}`.trimEnd();
}

function changeLine(c: FindingChange<Finding>): string {
  const what: string[] = [];
  if (c.before.severity !== c.after.severity) what.push(`severity ${t(c.before.severity)} → ${t(c.after.severity)}`);
  if (c.before.kev !== c.after.kev) what.push(c.after.kev ? 'now on CISA KEV' : 'off CISA KEV');
  if (c.before.epss !== c.after.epss) what.push(`EPSS ${c.before.epss ?? '-'} → ${c.after.epss ?? '-'}`);
  return `${findingLine('~', c.finding)}  [${what.join('; ')}]`;
}

export function renderDiff(d: SbomDiffReport<Finding>): string {
  if (d.state === 'not-scanned') return `${t(d.sbom)}: not scanned yet (no DB is active); the first activation scans it\n`;
  if (d.state === 'first-scan') return `${t(d.sbom)}: scanned once, against ${t(d.to)}; a diff appears after the next activation\n`;
  const out = [`${t(d.sbom)}: ${t(d.from)} → ${t(d.to)} (activation ${d.fromActivation} → ${d.toActivation}, ${d.computedAt})`];
  for (const f of d.added) out.push(findingLine('+', f));
  for (const f of d.removed) out.push(findingLine('-', f));
  for (const c of d.changed) out.push(changeLine(c));
  out.push(`${d.added.length} new, ${d.removed.length} resolved (fixed or withdrawn), ${d.changed.length} changed`);
  return out.join('\n') + '\n';
}

export function renderStatus(r: SbomStatusReport): string {
  if (r.sboms.length === 0) return 'No stored SBOMs: `stella sbom add FILE --name NAME` stores one.\n';
  const out = [`Active DB ${r.active ? `${t(r.active.dbVersion)} (activation ${r.active.activation})` : 'none'}`, ''];
  out.push(`${pad('SBOM', 24)}${pad('DB', 14)}${pad('FINDINGS', 10)}${pad('C/H/M/L', 14)}${pad('KEV', 5)}NEWEST CHANGES`);
  for (const s of r.sboms) {
    const l = s.latest;
    const b = l?.counts.bySeverity ?? {};
    const chl = l ? SEVERITIES.slice(0, 4).map((k) => b[k] ?? 0).join('/') : '-';
    const diff = s.diff
      ? t(`${s.diff.fromVersion} → ${s.diff.toVersion}: +${s.diff.added} -${s.diff.removed} ~${s.diff.changed}${s.diff.newest.length ? ` (${s.diff.newest.map((n) => `${n.severity} ${n.advisoryId} ${n.package}`).join(', ')}${s.diff.added > s.diff.newest.length ? ', …' : ''})` : ''}`)
      : l
        ? 'first scan'
        : '-';
    out.push(`${pad(s.name, 24)}${pad(l?.dbVersion ?? '-', 14)}${pad(l ? String(l.counts.findings) : '-', 10)}${pad(chl, 14)}${pad(l ? String(l.counts.kev) : '-', 5)}${diff}${s.pending ? '  [re-scan pending]' : ''}`);
  }
  return out.join('\n') + '\n';
}

export function registerSbomAdd(sbom: Command, cli: CliContext): void {
  sbom
    .command('add')
    .description('store a CycloneDX or SPDX JSON SBOM under a name and scan it once; it is re-scanned after every activation (not counted against the quota)')
    .argument('<file>', 'path of the SBOM (JSON)')
    .requiredOption('--name <name>', 'the name to store it under (letters, digits, . _ -)')
    .option('--replace', 'replace an SBOM stored under that name (its results and diff start over)', false)
    .option('--json', 'machine-readable result', false)
    .action(async (file: string, opts: { name: string; replace?: boolean; json?: boolean }) => {
      checkSbomName(opts.name);
      const pool = await cli.db({ migrate: true });
      const { document, bytes } = await readSbomDocument(file, cli.config.scanMaxBytes);
      const r = await addSbom({ pool, scanner: storedSbomScanner(pool), logger: await cli.logger(), now: () => new Date() }, { name: opts.name, document, bytes, maxBytes: cli.config.scanMaxBytes, replace: opts.replace, addedBy: cliClientId() });
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : renderAdded(r));
    });
}

export function registerSbomList(sbom: Command, cli: CliContext): void {
  sbom
    .command('list')
    .description('the stored SBOMs')
    .option('--json', 'machine-readable output', false)
    .action(async (opts: { json?: boolean }) => {
      const r = await readStatus(await cli.db());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ sboms: r.sboms.map((s) => ({ name: s.name, format: s.format, specVersion: s.specVersion, components: s.components, docBytes: s.docBytes, addedBy: s.addedBy, createdAt: s.createdAt })) }, null, 2)}\n`);
        return;
      }
      if (r.sboms.length === 0) {
        process.stdout.write('No stored SBOMs: `stella sbom add FILE --name NAME` stores one.\n');
        return;
      }
      const lines = [`${pad('NAME', 24)}${pad('FORMAT', 16)}${pad('COMPONENTS', 12)}ADDED`];
      for (const s of r.sboms) lines.push(`${pad(s.name, 24)}${pad(`${s.format} ${s.specVersion}`, 16)}${pad(String(s.components), 12)}${s.createdAt}${s.addedBy ? ` by ${t(s.addedBy)}` : ''}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}

export function registerSbomRm(sbom: Command, cli: CliContext): void {
  sbom
    .command('rm')
    .description('remove a stored SBOM, its results and its diff')
    .argument('<name>', 'the SBOM\'s name')
    .action(async (name: string) => {
      checkSbomName(name);
      if (!(await deleteSbom(await cli.db({ migrate: true }), name))) throw sbomNotFound(name);
      process.stdout.write(`removed ${name}\n`);
    });
}

export function registerSbomDiff(sbom: Command, cli: CliContext): void {
  sbom
    .command('diff')
    .description('the newest diff of a stored SBOM: findings new, resolved (fixed or withdrawn) and changed (severity, KEV, EPSS) since its previous re-scan')
    .argument('<name>', 'the SBOM\'s name')
    .option('--json', 'machine-readable output: {from, to, added, removed, changed}', false)
    .action(async (name: string, opts: { json?: boolean }) => {
      const d = await readDiff<Finding>(await cli.db(), name);
      process.stdout.write(opts.json ? `${JSON.stringify(d, null, 2)}\n` : renderDiff(d));
    });
}

export function registerSbomStatus(sbom: Command, cli: CliContext): void {
  sbom
    .command('status')
    .description('every stored SBOM with its counts, the DB version they were computed against and its newest changes')
    .option('--json', 'machine-readable output', false)
    .action(async (opts: { json?: boolean }) => {
      const r = await readStatus(await cli.db());
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : renderStatus(r));
    });
}
