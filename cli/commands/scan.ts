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
import { readSbomFile } from '../../scan/sbom.ts';
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
  const { config } = cli;
  const policy = parseFailPolicy(opts.failOn === undefined ? [] : typeof opts.failOn === 'string' ? [opts.failOn] : opts.failOn, opts.failOnEpss);
  const sbom = await readSbomFile(sbomPath);
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

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerScan(program: Command, cli: CliContext): void {
  program
    .command('scan')
    .description('scan a CycloneDX (1.4-1.6) or SPDX 2.3 JSON SBOM against the active vulnerability DB (offline; counted against the daily quota)')
    .argument('<sbom>', 'path of the SBOM (JSON)')
    .option('--json', 'print the result as JSON', false)
    .option('--fail-on <severity|kev>', 'exit 62 when a finding is at or above CRITICAL, HIGH, MEDIUM, LOW, NONE or UNKNOWN (= any finding), or with `kev` when one is on CISA\'s KEV list (repeatable)', collect, [])
    .option('--fail-on-epss <score>', 'exit 62 when a finding has an EPSS score at or above this (0..1, e.g. 0.5)')
    .option('--vex <file>', 'an OpenVEX, CycloneDX VEX or CSAF VEX document: findings it marks not_affected or fixed leave the count and --fail-on (repeatable)', collect, [])
    .option('--show-suppressed', 'list the findings VEX statements suppress (the kit\'s and --vex)', false)
    .action(async (sbomPath: string, opts: ScanCliOptions) => {
      const { result, output, exitError, warnings } = await runScan(cli, sbomPath, opts);
      for (const w of warnings) process.stderr.write(terminalLines([`warning: ${w}`])); // a VEX file's path and contents, escaped
      for (const w of result.freshness.warnings) process.stderr.write(terminalLines([`warning: ${w}`]));
      process.stdout.write(output);
      if (result.quota.banner) process.stderr.write(`${result.quota.banner}\n`);
      if (exitError) throw exitError;
    });
}
