/**
 * `stella scan SBOM [--json] [--fail-on SEVERITY|kev]... [--fail-on-epss N]
 * [--vex FILE]... [--show-suppressed]`: findings for a CycloneDX or SPDX JSON
 * SBOM against the active DB (with KEV and EPSS when the kit carries them;
 * VEX statements of --vex files and of the kit suppress findings), counted against the daily quota
 * (STELLA_JWT: a token's allowance; without one, this user@host's anonymous
 * one). Table by default (colour on a TTY), JSON with --json; the quota
 * banner goes to stderr (and into the JSON). Each feed's age against its
 * OUK_MAX_AGE budget heads the table (`feeds` in the JSON), and the freshness
 * warnings (a stale feed, a host clock behind the newest signed time) go to
 * stderr too; under OUK_STALE_POLICY=refuse-scans a stale DB exits DB_STALE
 * (100) without scanning. --fail-on exits
 * FINDINGS_AT_OR_ABOVE_THRESHOLD (62) when a finding is that severe or worse.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { printScan, runScan, type ScanCliOptions } from '../scan-session.ts';

export { cliClientId, readVexFiles, runScan, scanSbom, type ScanCliOptions } from '../scan-session.ts';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** The options of a scan, on `stella scan` and `stella scan image` alike. */
function withScanOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print the result as JSON', false)
    .option('--fail-on <severity|kev>', 'exit 62 when a finding is at or above CRITICAL, HIGH, MEDIUM, LOW, NONE or UNKNOWN (= any finding), or with `kev` when one is on CISA\'s KEV list (repeatable)', collect, [])
    .option('--fail-on-epss <score>', 'exit 62 when a finding has an EPSS score at or above this (0..1, e.g. 0.5)')
    .option('--vex <file>', 'an OpenVEX, CycloneDX VEX or CSAF VEX document: findings it marks not_affected or fixed leave the count and --fail-on (repeatable)', collect, [])
    .option('--show-suppressed', 'list the findings VEX statements suppress (the kit\'s and --vex)', false);
}

export function registerScan(program: Command, cli: CliContext): void {
  const scan = program
    .command('scan')
    .description('scan a CycloneDX (1.4-1.6) or SPDX 2.3 JSON SBOM against the active vulnerability DB (offline; counted against the daily quota); `scan image REF` catalogues an image first')
    .argument('<sbom>', 'path of the SBOM (JSON)');
  withScanOptions(scan).action(async (sbomPath: string, opts: ScanCliOptions) => {
    const out = await runScan(cli, sbomPath, opts);
    printScan(out);
    if (out.exitError) throw out.exitError;
  });
  const image = scan
    .command('image')
    .description('catalogue an image (a registry reference, an OCI layout directory or an OCI archive) from its layers into a CycloneDX SBOM and scan it; the scan options (--json, --fail-on, --vex, …) apply')
    .argument('<ref>', 'registry:5000/repo:tag, repo@sha256:… (the site registry, OUK_REGISTRY_URL), ./layout[:tag] or image.tar[:tag]')
    .option('--platform <os/arch>', 'the platform of a multi-platform image (default: linux and this host\'s architecture)')
    .option('--sbom-out <file>', 'also write the SBOM (CycloneDX 1.5 JSON) to this file')
    .option('--sbom-only', 'write the SBOM (to --sbom-out, else stdout) and scan nothing: no DB, no quota', false);
  withScanOptions(image).action(async (ref: string, imageOpts: ScanCliOptions & { platform?: string; sbomOut?: string; sbomOnly?: boolean }) => {
    const { runScanImage } = await import('./scan-image.ts');
    await runScanImage(cli, ref, imageOpts);
  });
}
