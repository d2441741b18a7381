/**
 * `stella ouk verify FILE [--root ROOT.json | --key PUB ...] [--signature SIG]
 *  [--sigstore-bundle PATH] [--attestation PATH] [--require-attestation] [--json]`:
 * checks a kit offline while reading it once (signing/kit/verify.ts).
 *
 * The trust it starts from: --root (a pinned root of trust: the roots the kit
 * carries are followed from it, then the kit role's threshold of signatures
 * is required), else --key, else OUK_TRUST_ROOT, else OUK_TRUSTED_KEYS (bare
 * keys: one signature, FILE.sig, by any of them, as before roots). The
 * release attestation FILE.intoto.json is checked when present (mandatory
 * with --require-attestation or OUK_REQUIRE_ATTESTATION=true) and its feed
 * snapshots printed. Prints `Verified OK` and `sha256:<hex>`, then a summary;
 * any failure is one `error[CODE]: ...` line and its exit code.
 */
import type { Command } from 'commander';
import { OukError } from '../../lib/errors.ts';
import { loadTrust, verifyKitFile, type KitVerification, type TrustSource } from '../../signing/index.ts';
import { daysToExpiry, shortKeyid } from '../../signing/root/index.ts';
import type { Config } from '../../lib/config.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

interface VerifyCliOptions {
  key: string[];
  root?: string;
  signature?: string;
  sigstoreBundle?: string;
  attestation?: string;
  requireAttestation?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',')];

/** Days left under which the summary warns that the root of trust expires soon. */
const ROOT_EXPIRY_WARNING_DAYS = 30;

function trustLines(r: KitVerification, now: Date): string[] {
  const t = r.trust;
  if (t.implicit) {
    return r.ignoredRoots.length
      ? [`roots:     the kit carries root v${r.ignoredRoots.join(', v')}: not followed — the trust is ${t.source} (bare keys); pin a root (--root, OUK_TRUST_ROOT) to follow rotations`]
      : [];
  }
  const root = t.root.signed;
  const days = daysToExpiry(t, now);
  const soon = days < ROOT_EXPIRY_WARNING_DAYS ? `  (expires in ${Math.max(0, Math.floor(days))} days: get the next root from the publisher)` : '';
  const walked = t.chain.length > 1 ? `, reached v${t.chain.join(' → v')} through the roots the kit carries` : '';
  return [`trust:     root v${root.version} (${t.source}${walked}), expires ${root.expires}${soon}`];
}

function signerLine(r: KitVerification): string {
  if (r.key) return `signed by: ${r.key.path} (hint ${r.key.hint})${r.files.sigstore ? `; ${r.files.sigstore} verified` : ''}`;
  const s = r.signatures;
  return `signed by: ${s.keyids.length} kit key(s) of root v${s.rootVersion} (threshold ${s.threshold}): ${s.keyids.map(shortKeyid).join(', ')}${r.sigstoreBundleVerified ? `; ${r.files.sigstore} verified` : ''}`;
}

function attestationLines(r: KitVerification): string[] {
  const a = r.attestation;
  if (!a) return ['attested:  no attestation (FILE.intoto.json) beside the kit'];
  const lines = [
    `attested:  ${a.source}: in-toto statement for ${a.subjectName}, SLSA provenance v1 by ${a.builder.id}${a.builder.version ? ` (${a.builder.version})` : ''}, signed by ${a.signatures.keyids.length} kit key(s) (threshold ${a.signatures.threshold})`,
  ];
  for (const f of a.feeds) {
    lines.push(`attested:  feed ${f.name}: snapshot ${f.snapshot ?? 'unknown'}, ${f.records ?? '?'} records${f.files !== null ? ` from ${f.files} files` : ''}, inputs sha256:${f.sha256 ?? 'none'}${f.uri ? `, from ${f.uri}` : ''}`);
  }
  return lines;
}

export function summarise(file: string, r: KitVerification, now = new Date()): string {
  const m = r.manifest;
  const expired = Date.parse(m.expires) < now.getTime();
  const bytes = m.members.reduce((n, x) => n + x.size, 0);
  const lines = [
    'Verified OK',
    `sha256:${r.sha256}`,
    `file:      ${file} (${r.size} bytes)`,
    ...trustLines(r, now),
    signerLine(r),
    `bundle:    ${m.bundleVersion} (${m.kind}${m.base ? ` on ${m.base.version}` : ''}), format ${m.formatVersion}`,
    `created:   ${m.created}`,
    `expires:   ${m.expires}${expired ? '  (EXPIRED: an import will refuse it)' : ''}`,
    `members:   ${m.members.length} + manifest.json, ${bytes} bytes uncompressed, every sha256 matches`,
  ];
  for (const f of m.feeds) lines.push(`feed:      ${f.name}: ${f.records} records${f.skipped ? ` (${f.skipped} skipped)` : ''}, snapshot ${f.snapshot ?? 'unknown'}`);
  lines.push(...attestationLines(r));
  return terminalLines(lines); // the manifest is signed, and still outside input
}

/** --root, else --key, else OUK_TRUST_ROOT, else OUK_TRUSTED_KEYS; a warning when the configuration names both. */
function trustSource(opts: VerifyCliOptions, config: Config): TrustSource {
  if (opts.root !== undefined && opts.key.length) throw new OukError('USAGE', '--root and --key name two different trusts: give one (a root of trust, or bare trusted keys)');
  if (opts.root !== undefined) return { root: opts.root, label: opts.root };
  if (opts.key.length) return { keys: opts.key, label: '--key' };
  if (config.trustRoot) {
    if (config.trustedKeys.length) process.stderr.write('warning: OUK_TRUST_ROOT and OUK_TRUSTED_KEYS are both set: the root of trust is the only trust, OUK_TRUSTED_KEYS is ignored\n');
    return { root: config.trustRoot, label: 'OUK_TRUST_ROOT' };
  }
  return { keys: config.trustedKeys, label: 'OUK_TRUSTED_KEYS' };
}

export function registerOukVerify(ouk: Command, cli: CliContext): void {
  ouk
    .command('verify')
    .description('verify a kit offline: the roots it carries, a threshold of kit keys (or one trusted key), structure, manifest, every member checksum and the release attestation, in one read')
    .argument('<file>', 'the kit tarball (FILE.tar.gz)')
    .option('--root <root.json>', 'the root of trust to start from (TUF root.json; default: OUK_TRUST_ROOT): the roots the kit carries are followed from it')
    .option('--key <pub>', 'trusted public key (PEM) instead of a root; repeatable or comma-separated (default: OUK_TRUSTED_KEYS)', collect, [])
    .option('--signature <sig>', 'the cosign signature (default: FILE.sig; with a root, FILE.sigs.json is read as well)')
    .option('--sigstore-bundle <path>', 'the Sigstore bundle (default: FILE.sigstore.json, checked when present)')
    .option('--attestation <path>', 'the release attestation (default: FILE.intoto.json, checked when present)')
    .option('--require-attestation', 'refuse a kit without its release attestation (default: OUK_REQUIRE_ATTESTATION)')
    .option('--json', 'print the result as JSON', false)
    .action(async (file: string, opts: VerifyCliOptions) => {
      const config = cli.config;
      const now = new Date();
      const trust = await loadTrust(trustSource(opts, config));
      const r = await verifyKitFile(file, {
        trust,
        now,
        requireAttestation: opts.requireAttestation ?? config.requireAttestation,
        policy: config.cryptoPolicy,
        signaturePath: opts.signature,
        sigstorePath: opts.sigstoreBundle,
        attestationPath: opts.attestation,
      });
      if (!opts.json) {
        process.stdout.write(summarise(file, r, now));
        return;
      }
      const root = r.trust.root.signed;
      const out = {
        verified: true,
        file,
        sha256: r.sha256,
        size: r.size,
        key: r.key ? { path: r.key.path, hint: r.key.hint } : null,
        trust: { source: r.trust.source, implicit: r.trust.implicit, rootVersion: root.version, chain: r.trust.chain, expires: r.trust.implicit ? null : root.expires },
        carriedRoots: r.carriedRoots,
        ignoredRoots: r.ignoredRoots,
        signatures: { keyids: r.signatures.keyids, threshold: r.signatures.threshold, rootVersion: r.signatures.rootVersion },
        signature: r.files.signature,
        signatureSet: r.files.signatures,
        sigstoreBundle: r.files.sigstore,
        attestation: r.attestation
          ? { path: r.attestation.source, subject: r.attestation.subjectName, builder: r.attestation.builder, parameters: r.attestation.parameters, feeds: r.attestation.feeds, keyids: r.attestation.signatures.keyids }
          : null,
        manifestSha256: r.manifestSha256,
        manifest: r.manifest,
      };
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    });
}
