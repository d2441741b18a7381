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
import os from 'node:os';
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { OukError } from '../../lib/errors.ts';
import { parseFailPolicy, policyFailures, renderTable, useColour } from '../../scan/report.ts';
import { readSbomFile, type Sbom } from '../../scan/sbom.ts';
import { type CountedScan, countedScan, resolveClient } from '../../scan/service.ts';
import { MAX_VEX_STATEMENTS, readVexFile, type VexStatement } from '../../scan/vex.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

export interface ScanCliOptions {
  json?: boolean;
  /** severities and/or `kev` (repeatable, or comma-separated) */
  failOn?: string | string[];
  /** an EPSS score in 0..1 */
  failOnEpss?: string;
  /** OpenVEX, CycloneDX VEX or CSAF VEX documents */
  vex?: string[];
  /** list the findings VEX statements suppress */
  showSuppressed?: boolean;
}

/** The anonymous client id of a CLI user (hashed before it reaches Redis). */
export function cliClientId(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `cli:${user}@${os.hostname()}`;
}

/** The quota's Redis connection (the context's, failing fast), or QUOTA_UNAVAILABLE. */
async function quotaRedis(cli: CliContext): Promise<Redis> {
  try {
    return await cli.redis();
  } catch (e) {
    const cause = e instanceof OukError && e.cause instanceof Error ? e.cause : e;
    throw new OukError('QUOTA_UNAVAILABLE', `Redis (the scan quota) is unreachable (${(cause as Error).message}): check REDIS_URL and that redis-server is running`, { cause, retryable: true });
  }
}

/**
 * The statements of every --vex file, in order, each file bounded and
 * checked (scan/vex.ts: VEX_INVALID names the file), all of them together at
 * most MAX_VEX_STATEMENTS; a file that suppresses nothing is a warning.
 */
export async function readVexFiles(files: string[], warnings: string[]): Promise<VexStatement[]> {
  const vex: VexStatement[] = [];
  for (const f of files) {
    const got = await readVexFile(f, { maxStatements: MAX_VEX_STATEMENTS - vex.length, onWarning: (m) => warnings.push(m) });
    for (const s of got) vex.push(s);
  }
  return vex;
}

export async function runScan(
  cli: CliContext,
  sbomPath: string,
  opts: ScanCliOptions,
): Promise<{ result: CountedScan; output: string; exitError: OukError | null; warnings: string[] }> {
  parseFailOptions(opts);
  return scanSbom(cli, await readSbomFile(sbomPath), opts);
}

function parseFailOptions(opts: ScanCliOptions): ReturnType<typeof parseFailPolicy> {
  return parseFailPolicy(opts.failOn === undefined ? [] : typeof opts.failOn === 'string' ? [opts.failOn] : opts.failOn, opts.failOnEpss);
}

/** Scans an SBOM already read (a file's, or one the image cataloguer made) as `stella scan` does: quota, VEX, --fail-on. */
export async function scanSbom(
  cli: CliContext,
  sbom: Sbom,
  opts: ScanCliOptions,
): Promise<{ result: CountedScan; output: string; exitError: OukError | null; warnings: string[] }> {
  const { config } = cli;
  const policy = parseFailOptions(opts);
  const warnings: string[] = [];
  const vex = await readVexFiles(opts.vex ?? [], warnings);
  const who = await resolveClient(config, config.jwt, cliClientId());
  const redis = await quotaRedis(cli);
  const pool = await cli.db();
  const result = await countedScan({ pool, redis, config }, sbom, who, { vex });
  const output = opts.json ? JSON.stringify(result, null, 2) + '\n' : renderTable(result, { colour: useColour(process.stdout, config), showSuppressed: opts.showSuppressed });
  let exitError: OukError | null = null;
  const bad = policyFailures(result.findings, policy);
  if (bad.findings.length > 0) {
    exitError = new OukError('FINDINGS_AT_OR_ABOVE_THRESHOLD', `${bad.why.join('; ')}: fix or upgrade the listed packages`);
  }
  return { result, output, exitError, warnings };
}

/** What `stella scan` and `stella scan image` print around the result. */
export function printScan(out: { result: CountedScan; output: string; warnings: string[] }): void {
  for (const w of out.warnings) process.stderr.write(terminalLines([`warning: ${w}`])); // a VEX file's path and contents, escaped
  for (const w of out.result.freshness.warnings) process.stderr.write(terminalLines([`warning: ${w}`]));
  process.stdout.write(out.output);
  if (out.result.quota.banner) process.stderr.write(`${out.result.quota.banner}\n`);
}

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
