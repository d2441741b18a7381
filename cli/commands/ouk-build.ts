/**
 * `stella ouk build --feeds DIR --key KEY [--key KEY2 ...] --out FILE.tar.gz [--version TAG]
 *  [--image NAME[:TAG]=PATH ...] [--root NEXT.json ...] [--expires-days N] [--compression-level N]
 *  [--base PREV.tar.gz [--full-out FULL.tar.gz]] [--index]`
 *
 * Builds a full bundle from NVD, OSV and GHSA feeds and signs it with every
 * --key: FILE.sigs.json (every key's signature), FILE.sig and
 * FILE.sigstore.json (the first key's, as before), and the release
 * attestation FILE.intoto.json. --root carries newer roots of trust as
 * trust/root.<N>.json members (docs/trust.md). With --base (the previous FULL bundle), builds
 * a delta against it instead: only the advisories added, changed or removed
 * since, and only new or changed images; --full-out also writes the full bundle
 * of the same version, the base of the next delta. Malformed records are reported on stderr and
 * skipped; the summary goes to stdout. The key's password comes from
 * STELLA_KEY_PASSWORD; SOURCE_DATE_EPOCH overrides the `created` time.
 *
 * With --index, or whenever the --out directory already holds an index.json,
 * the kits written into that directory are added to its index.json (an
 * intranet mirror's table of contents, bundle/mirror-index.ts).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { DEFAULT_ZSTD_LEVEL } from '../../bundle/member-codec.ts';
import { platformLabel } from '../../bundle/oci.ts';
import { type BuildResult, buildBundle, DEFAULT_EXPIRES_DAYS, type WrittenBundle } from '../../builder/build.ts';
import { indexPathFor, updateMirrorIndex, wantsIndex } from '../../builder/mirror-index-file.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

interface BuildCliOptions {
  feeds: string;
  key: string[];
  root: string[];
  out: string;
  version?: string;
  image: string[];
  expiresDays: number;
  compressionLevel: number;
  base?: string;
  fullOut?: string;
  index: boolean;
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

function short(digest: string): string {
  return `${digest.slice(0, 12)}…`;
}

function rowCounts(rows: WrittenBundle['rows']): string {
  return Object.entries(rows).map(([t, n]) => `${t} ${n}`).join(', ');
}

function fileLines(label: string, r: WrittenBundle): string[] {
  return [
    `  ${label}${r.out} ${mb(r.size)} sha256:${r.sha256}`,
    `  signature ${r.sigPath}`,
    `  sigstore bundle ${r.sigstorePath ?? 'none (its first key is not ECDSA P-256)'}`,
    `  signatures ${r.sigsPath} (${r.keyids.length} kit key${r.keyids.length === 1 ? '' : 's'}: ${r.keyids.map((k) => `${k.slice(0, 12)}…`).join(', ')})`,
    `  attestation ${r.attestationPath} (in-toto, SLSA provenance v1)`,
  ];
}

export function formatSummary(r: BuildResult, seconds: number): string {
  const m = r.manifest;
  const lines = [`built ${path.basename(r.out)}: version ${m.bundleVersion}, kind ${m.kind}, expires ${m.expires} (${seconds.toFixed(1)} s)`];
  for (const f of m.feeds) {
    lines.push(`  feed ${f.name.padEnd(5)} ${String(f.records).padStart(8)} records, ${f.skipped} skipped, snapshot ${f.snapshot ?? 'unknown'}`);
  }
  const roots = m.members.filter((x) => x.role === 'trust').map((x) => x.path);
  if (roots.length) lines.push(`  carries the roots of trust ${roots.join(', ')}`);
  const images = m.images ?? [];
  const imageList = images.map((i) => `${i.name}:${i.tag} ${i.indexDigest} (${i.platforms.map(platformLabel).join(', ')})`).join('; ');
  if (m.kind === 'delta' && m.base && m.db.changes) {
    const c = m.db.changes;
    if (c.added + c.changed + c.removed === 0) lines.push(`  delta is empty: the feeds have not changed since ${m.base.version}`);
    else lines.push(`  delta against ${m.base.version} (db ${short(m.base.dbDigest)}): ${c.added} added, ${c.changed} changed, ${c.removed} removed advisories`);
    lines.push(`  rows in the delta: ${rowCounts(r.rows)}; yields ${m.db.advisories} advisories, db ${short(m.db.digest)}`);
    lines.push(`  images new or changed since the base: ${images.length ? imageList : 'none'}`);
  } else {
    lines.push(`  advisories ${m.db.advisories} (rows: ${rowCounts(r.rows)}), db ${short(m.db.digest)}`);
    if (images.length) lines.push(`  images ${imageList}`);
  }
  lines.push(...fileLines('', r));
  if (r.full) lines.push(...fileLines(`full bundle of ${r.full.manifest.bundleVersion} (the next delta's base): `, r.full));
  return terminalLines(lines); // feed snapshots and image names come from upstream data
}

export function registerOukBuild(ouk: Command, cli: CliContext): void {
  ouk
    .command('build')
    .description('build a signed full bundle from NVD, OSV and GHSA feeds, or a delta against the previous full bundle (--base)')
    .requiredOption('--feeds <dir>', 'directory holding nvd/, osv/ and ghsa/')
    .requiredOption('--key <key>', 'kit signing key (PKCS#8 PEM of ECDSA P-256, Ed25519 or SM2; STELLA_KEY_PASSWORD decrypts it; or a pkcs11: URI, RFC 7512, for a key in a hardware module); repeat it for each kit key: all sign (FILE.sigs.json, FILE.intoto.json), the first also writes FILE.sig', collect, [])
    .requiredOption('--out <file>', 'bundle to write, e.g. stella-ouk-2026-11-28.tar.gz')
    .option('--version <tag>', 'bundle version, YYYY-MM-DD[.N] (default: today, UTC)')
    .option('--image <name=path>', 'OCI image layout (multi-platform index) to carry as images/<name>/, NAME[:TAG]=PATH, PATH its directory or an OCI archive .tar (repeatable)', collect, [])
    .option('--root <root.json>', 'a newer root of trust to carry as trust/root.<N>.json (repeatable: consecutive versions; see stella trust rotate)', collect, [])
    .option('--expires-days <n>', 'days the bundle stays valid', positiveInt, DEFAULT_EXPIRES_DAYS)
    .option('--compression-level <n>', 'zstd level of the DB members, 1-19 (19: smallest, slowest)', positiveInt, DEFAULT_ZSTD_LEVEL)
    .option('--base <prev>', 'previous FULL bundle: build a delta against it (only what changed since)')
    .option('--full-out <file>', 'with --base: also write the full bundle of the same version here (the base of the next delta)')
    .option('--index', "add the kit(s) to index.json in the --out directory (an intranet mirror's index; always done when one exists there)", false)
    .action(async (opts: BuildCliOptions) => {
      const t0 = process.hrtime.bigint();
      const { config } = cli;
      const result = await buildBundle({
        feedsDir: opts.feeds,
        keyPath: opts.key,
        roots: opts.root,
        out: opts.out,
        version: opts.version,
        images: opts.image,
        expiresDays: opts.expiresDays,
        compressionLevel: opts.compressionLevel,
        base: opts.base,
        fullOut: opts.fullOut,
        password: config.keyPassword,
        pkcs11: { module: config.pkcs11Module, pin: config.pkcs11Pin },
        sourceDateEpoch: config.sourceDateEpoch,
      });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      process.stdout.write(formatSummary(result, seconds));
      if (await wantsIndex(opts.out, opts.index)) {
        const written = await updateMirrorIndex(indexPathFor(opts.out), result.full ? [result, result.full] : [result]);
        process.stdout.write(`  index ${written.path}: ${written.files.join(', ')}\n`);
      }
    });
}
