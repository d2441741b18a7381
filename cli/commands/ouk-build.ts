/**
 * `stella ouk build --feeds DIR --key KEY --out FILE.tar.gz [--version TAG]
 *  [--image PATH ...] [--expires-days N] [--base PREV.tar.gz]`
 *
 * Builds a full bundle from NVD, OSV and GHSA feeds and signs it (FILE.sig and
 * FILE.sigstore.json beside it). Malformed records are reported on stderr and
 * skipped; the summary goes to stdout. The key's password comes from
 * STELLA_KEY_PASSWORD; SOURCE_DATE_EPOCH overrides the `created` time.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { type BuildResult, buildBundle, DEFAULT_EXPIRES_DAYS } from '../../builder/build.ts';

interface BuildCliOptions {
  feeds: string;
  key: string;
  out: string;
  version?: string;
  image: string[];
  expiresDays: number;
  base?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('a whole number of days, 1 or more');
  return Number(value);
}

function mb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

export function formatSummary(r: BuildResult, seconds: number): string {
  const m = r.manifest;
  const lines = [`built ${path.basename(r.out)}: version ${m.bundleVersion}, kind ${m.kind}, expires ${m.expires} (${seconds.toFixed(1)} s)`];
  for (const f of m.feeds) {
    lines.push(`  feed ${f.name.padEnd(5)} ${String(f.records).padStart(8)} records, ${f.skipped} skipped, snapshot ${f.snapshot ?? 'unknown'}`);
  }
  lines.push(`  advisories ${m.db.advisories} (rows: ${Object.entries(r.rows).map(([t, n]) => `${t} ${n}`).join(', ')})`);
  const images = m.members.filter((x) => x.role === 'image');
  if (images.length) lines.push(`  images ${images.map((i) => i.path).join(', ')}`);
  lines.push(`  ${r.out} ${mb(r.size)} sha256:${r.sha256}`);
  lines.push(`  signature ${r.sigPath}`, `  sigstore bundle ${r.sigstorePath}`);
  return lines.join('\n') + '\n';
}

export function registerOukBuild(ouk: Command): void {
  ouk
    .command('build')
    .description('build a signed full bundle from NVD, OSV and GHSA feeds')
    .requiredOption('--feeds <dir>', 'directory holding nvd/, osv/ and ghsa/')
    .requiredOption('--key <key>', 'signing key (PKCS#8 PEM; STELLA_KEY_PASSWORD decrypts it)')
    .requiredOption('--out <file>', 'bundle to write, e.g. stella-ouk-2026-11-28.tar.gz')
    .option('--version <tag>', 'bundle version, YYYY-MM-DD[.N] (default: today, UTC)')
    .option('--image <path>', 'OCI image archive to carry as images/<name> (repeatable)', collect, [])
    .option('--expires-days <n>', 'days the bundle stays valid', positiveInt, DEFAULT_EXPIRES_DAYS)
    .option('--base <prev>', 'previous bundle to build a delta against (not supported yet)')
    .action(async (opts: BuildCliOptions) => {
      const t0 = process.hrtime.bigint();
      const result = await buildBundle({
        feedsDir: opts.feeds,
        keyPath: opts.key,
        out: opts.out,
        version: opts.version,
        images: opts.image,
        expiresDays: opts.expiresDays,
        base: opts.base,
        password: process.env.STELLA_KEY_PASSWORD || undefined,
        sourceDateEpoch: process.env.SOURCE_DATE_EPOCH,
      });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      process.stdout.write(formatSummary(result, seconds));
    });
}
