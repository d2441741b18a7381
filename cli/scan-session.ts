/**
 * A scan as the CLI runs it, for `stella scan FILE` and `stella scan image
 * REF` alike: the SBOM scanned against the active DB with the quota (Redis),
 * the --vex files and the --fail-on policy, and the result printed (the
 * table or JSON on stdout, warnings and the quota banner on stderr).
 */
import os from 'node:os';
import type { Redis } from 'ioredis';
import { OukError } from '../lib/errors.ts';
import { parseFailPolicy, policyFailures, renderTable, useColour } from '../scan/report.ts';
import { readSbomFile, type Sbom } from '../scan/sbom.ts';
import { type CountedScan, countedScan, resolveClient } from '../scan/service.ts';
import { MAX_VEX_STATEMENTS, readVexFile, type VexStatement } from '../scan/vex.ts';
import { terminalLines } from '../lib/terminal-text.ts';
import type { CliContext } from './context.ts';

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

