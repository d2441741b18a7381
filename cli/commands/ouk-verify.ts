/**
 * `stella ouk verify FILE [--key PUB ...] [--signature SIG] [--sigstore-bundle PATH] [--json]`:
 * checks a bundle tarball against a trusted key while reading it once (signature,
 * gzip/tar structure, manifest, every member's size and sha256, and
 * FILE.sigstore.json when present). Prints `Verified OK` and `sha256:<hex>`, then
 * a short summary; any failure is one `error[CODE]: ...` line and its exit code.
 */
import type { Command } from 'commander';
import { loadTrustedKeys, verifyBundleFile, type BundleVerification } from '../../signing/index.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

interface VerifyCliOptions {
  key: string[];
  signature?: string;
  sigstoreBundle?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',')];

export function summarise(file: string, r: BundleVerification & { signaturePath: string; sigstorePath: string | null }, now = new Date()): string {
  const m = r.manifest;
  const expired = Date.parse(m.expires) < now.getTime();
  const bytes = m.members.reduce((n, x) => n + x.size, 0);
  const lines = [
    'Verified OK',
    `sha256:${r.sha256}`,
    `file:      ${file} (${r.size} bytes)`,
    `signed by: ${r.key.path} (hint ${r.key.hint})${r.sigstorePath ? `; ${r.sigstorePath} verified` : ''}`,
    `bundle:    ${m.bundleVersion} (${m.kind}${m.base ? ` on ${m.base.version}` : ''}), format ${m.formatVersion}`,
    `created:   ${m.created}`,
    `expires:   ${m.expires}${expired ? '  (EXPIRED: an import will refuse it)' : ''}`,
    `members:   ${m.members.length} + manifest.json, ${bytes} bytes uncompressed, every sha256 matches`,
  ];
  for (const f of m.feeds) lines.push(`feed:      ${f.name}: ${f.records} records${f.skipped ? ` (${f.skipped} skipped)` : ''}, snapshot ${f.snapshot ?? 'unknown'}`);
  return terminalLines(lines); // the manifest is signed, and still outside input
}

export function registerOukVerify(ouk: Command, cli: CliContext): void {
  ouk
    .command('verify')
    .description('verify a bundle tarball: signature by a trusted key, structure, manifest and every member checksum, in one read')
    .argument('<file>', 'the bundle tarball (FILE.tar.gz)')
    .option('--key <pub>', 'trusted public key (PEM); repeatable or comma-separated (default: OUK_TRUSTED_KEYS)', collect, [])
    .option('--signature <sig>', 'the cosign signature (default: FILE.sig)')
    .option('--sigstore-bundle <path>', 'the Sigstore bundle (default: FILE.sigstore.json, checked when present)')
    .option('--json', 'print the result as JSON', false)
    .action(async (file: string, opts: VerifyCliOptions) => {
      const keyPaths = opts.key.length ? opts.key : cli.config.trustedKeys;
      const keys = await loadTrustedKeys(keyPaths);
      const r = await verifyBundleFile(file, { keys, signaturePath: opts.signature, sigstorePath: opts.sigstoreBundle });
      if (opts.json) {
        const out = {
          verified: true,
          file,
          sha256: r.sha256,
          size: r.size,
          key: { path: r.key.path, hint: r.key.hint },
          signature: r.signaturePath,
          sigstoreBundle: r.sigstorePath,
          manifestSha256: r.manifestSha256,
          manifest: r.manifest,
        };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } else {
        process.stdout.write(summarise(file, r));
      }
    });
}
