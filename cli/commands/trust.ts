/**
 * `stella trust init|rotate|show`: the root of trust a site pins (TUF root
 * metadata; signing/root/, docs/trust.md).
 *
 *   stella trust init --out root.json --root-key PUB... [--root-threshold N]
 *        --kit-key PUB... [--kit-threshold N] [--expires-days D] --sign KEY... [--force]
 *   stella trust rotate --root CURRENT.json --out NEXT.json [--root-key PUB...]
 *        [--root-threshold N] [--kit-key PUB...] [--kit-threshold N] [--expires-days D] --sign KEY... [--force]
 *   stella trust show [FILE] [--json]   (without FILE: the site's current root, from PostgreSQL)
 *
 * init writes root version 1, signed by a threshold of its root keys; rotate
 * writes version N+1, signed by a threshold of N's root keys and of its own
 * (a role not given keeps N's keys and threshold; a key left out of the kit
 * role is revoked from N+1 on). Neither writes a root a site would refuse.
 * The --sign keys are private (STELLA_KEY_PASSWORD decrypts encrypted ones).
 */
import { createHash } from 'node:crypto';
import type { Pkcs11Defaults, SuiteKey } from '../../signing/suites/index.ts';
import { lstat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CliContext } from '../context.ts';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { OukError } from '../../lib/errors.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import { keyHint, loadPrivateKey, loadTrustedKeys } from '../../signing/index.ts';
import {
  createRoot,
  KIT_ROLE,
  pinnedTrust,
  publicKeyOf,
  readRootFile,
  ROOT_ROLE,
  rootSigners,
  rotateRoot,
  serializeRoot,
  TUF_MIRRORED_ROLES,
  type RoleKeys,
  type RootMetadata,
} from '../../signing/root/index.ts';

/** A root that is not renewed for a year stops every import: rotate (or re-sign) before that. */
export const DEFAULT_ROOT_EXPIRES_DAYS = 365;

interface RoleCliOptions {
  rootKey: string[];
  rootThreshold?: number;
  kitKey: string[];
  kitThreshold?: number;
  expiresDays: number;
  sign: string[];
  out: string;
  force?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('a whole number, 1 or more');
  return Number(value);
}

function days(value: string): number {
  const n = positiveInt(value);
  if (n > 3650) throw new InvalidArgumentError('at most 3650 days');
  return n;
}

async function publicKeys(paths: string[]): Promise<SuiteKey[]> {
  const keys: SuiteKey[] = [];
  // One at a time: loadTrustedKeys drops a duplicate silently, a root refuses it (create.ts).
  for (const p of paths) keys.push((await loadTrustedKeys([p]))[0]!.key);
  return keys;
}

/** The private root keys of --sign; `password`: STELLA_KEY_PASSWORD (`config.keyPassword`) for encrypted ones. */
async function signers(paths: string[], password: string | undefined, pkcs11: Pkcs11Defaults = {}): Promise<SuiteKey[]> {
  if (paths.length === 0) throw new OukError('USAGE', 'no --sign key: a root is signed by (a threshold of) its root keys — pass each private root key with --sign KEY');
  const keys: SuiteKey[] = [];
  for (const p of paths) keys.push(await loadPrivateKey(p, password, pkcs11));
  return keys;
}

async function role(keys: string[], threshold: number | undefined): Promise<Partial<RoleKeys> | undefined> {
  if (keys.length === 0 && threshold === undefined) return undefined;
  return { ...(keys.length ? { keys: await publicKeys(keys) } : {}), ...(threshold !== undefined ? { threshold } : {}) };
}

async function writeRoot(out: string, md: RootMetadata, force: boolean | undefined): Promise<void> {
  if (!force && (await lstat(out).then(() => true, () => false))) {
    throw new OukError('OUTPUT_EXISTS', `${out} already exists: refusing to overwrite a root of trust — choose another --out, or pass --force`);
  }
  await writeFile(out, serializeRoot(md), { flag: force ? 'w' : 'wx', mode: 0o644 });
}

function describeRole(md: RootMetadata, name: string): string {
  const r = md.signed.roles[name]!;
  return `${name} keys ${r.keyIDs.length} (threshold ${r.threshold}): ${r.keyIDs.join(', ')}`;
}

function summary(out: string, md: RootMetadata, extra: string[] = []): string {
  const root = md.signed;
  return (
    [
      `wrote ${out}: root v${root.version}, expires ${root.expires}`,
      `  ${describeRole(md, ROOT_ROLE)}`,
      `  ${describeRole(md, KIT_ROLE)}`,
      ...extra,
      `  signed by ${Object.keys(md.signatures).length} key(s): ${Object.keys(md.signatures).join(', ')}`,
    ].join('\n') + '\n'
  );
}

/** One line a role; TUF's targets, snapshot and timestamp folded into one when they mirror the kit role, as Stella writes them. */
function roleLines(md: RootMetadata): string[] {
  const roles = md.signed.roles;
  const kit = roles[KIT_ROLE]!;
  const same = (n: string) => roles[n]!.threshold === kit.threshold && roles[n]!.keyIDs.join() === kit.keyIDs.join();
  const mirrored = TUF_MIRRORED_ROLES.filter((n) => roles[n] && same(n));
  const lines = Object.entries(roles)
    .filter(([n]) => !mirrored.includes(n as (typeof TUF_MIRRORED_ROLES)[number]))
    .map(([n, r]) => `role ${n.padEnd(9)} threshold ${r.threshold} of ${r.keyIDs.length}: ${r.keyIDs.join(', ')}`);
  if (mirrored.length) lines.push(`role ${mirrored.join(', ')}: as kit (TUF's format requires them; Stella decides nothing by them)`);
  return lines;
}

function expiresAt(d: number, now: Date): Date {
  return new Date(now.getTime() + d * 86_400_000);
}

function registerInit(trust: Command, cli: CliContext): void {
  trust
    .command('init')
    .description('write a new root of trust (version 1): its root keys sign roots, its kit keys sign kits')
    .requiredOption('--out <root.json>', 'the root document to write')
    .option('--root-key <pub>', 'a root key (PEM public key; repeatable): root keys sign the next root', collect, [])
    .option('--root-threshold <n>', 'root signatures a new root needs (default 1)', positiveInt)
    .option('--kit-key <pub>', 'a kit key (PEM public key; repeatable): kit keys sign kits', collect, [])
    .option('--kit-threshold <n>', 'kit signatures a kit needs (default 1)', positiveInt)
    .option('--expires-days <d>', 'days the root stays valid', days, DEFAULT_ROOT_EXPIRES_DAYS)
    .option('--sign <key>', 'a private root key that signs it (repeatable; a threshold of the root keys)', collect, [])
    .option('--force', 'overwrite --out if it exists', false)
    .action(async (opts: RoleCliOptions) => {
      if (opts.rootKey.length === 0) throw new OukError('USAGE', 'no --root-key: a root needs at least one root key (two or three, kept offline apart, with --root-threshold 2, are better)');
      if (opts.kitKey.length === 0) throw new OukError('USAGE', 'no --kit-key: a root needs at least one kit key (the publisher\'s cosign.pub)');
      const md = createRoot({
        root: { keys: await publicKeys(opts.rootKey), threshold: opts.rootThreshold ?? 1 },
        kit: { keys: await publicKeys(opts.kitKey), threshold: opts.kitThreshold ?? 1 },
        expires: expiresAt(opts.expiresDays, new Date()),
        signers: await signers(opts.sign, cli.config.keyPassword, { module: cli.config.pkcs11Module, pin: cli.config.pkcs11Pin }),
      });
      await writeRoot(opts.out, md, opts.force);
      process.stdout.write(summary(opts.out, md));
    });
}

function registerRotate(trust: Command, cli: CliContext): void {
  trust
    .command('rotate')
    .description('write the next root (version N+1), signed by a threshold of the current root keys and of the new ones; keys left out are revoked')
    .requiredOption('--root <current.json>', 'the current root document')
    .requiredOption('--out <next.json>', 'the next root document to write')
    .option('--root-key <pub>', 'the new root keys (repeatable; default: the current ones)', collect, [])
    .option('--root-threshold <n>', 'root signatures a new root needs (default: the current threshold)', positiveInt)
    .option('--kit-key <pub>', 'the new kit keys (repeatable; default: the current ones); a kit key left out is revoked', collect, [])
    .option('--kit-threshold <n>', 'kit signatures a kit needs (default: the current threshold)', positiveInt)
    .option('--expires-days <d>', 'days the new root stays valid', days, DEFAULT_ROOT_EXPIRES_DAYS)
    .option('--sign <key>', 'a private root key that signs it (repeatable): a threshold of the current root keys and of the new ones', collect, [])
    .option('--force', 'overwrite --out if it exists', false)
    .action(async (opts: RoleCliOptions & { root: string }) => {
      const { md: current } = await readRootFile(opts.root, '--root');
      pinnedTrust(current, opts.root);
      const next = rotateRoot(current, {
        root: await role(opts.rootKey, opts.rootThreshold),
        kit: await role(opts.kitKey, opts.kitThreshold),
        expires: expiresAt(opts.expiresDays, new Date()),
        signers: await signers(opts.sign, cli.config.keyPassword, { module: cli.config.pkcs11Module, pin: cli.config.pkcs11Pin }),
      });
      const dropped = (name: string) => current.signed.roles[name]!.keyIDs.filter((id) => !next.signed.roles[name]!.keyIDs.includes(id));
      const extra = [
        ...(dropped(KIT_ROLE).length ? [`  revoked kit keys (worth nothing from v${next.signed.version} on): ${dropped(KIT_ROLE).join(', ')}`] : []),
        ...(dropped(ROOT_ROLE).length ? [`  dropped root keys: ${dropped(ROOT_ROLE).join(', ')}`] : []),
        `  carry it in the next kits: stella ouk build ... --root ${opts.out}`,
      ];
      await writeRoot(opts.out, next, opts.force);
      process.stdout.write(summary(opts.out, next, extra));
    });
}

interface Shown {
  md: RootMetadata;
  raw: Buffer;
  /** What the document is: a path, or where the site's current root came from. */
  label: string;
  /** Without FILE: where the site's current root is kept, and how it got there. */
  site?: { pinned: string | null; storedAt: string | null; from: string; importId: string | null; kitVersion: string | null };
}

/** The site's current root (read-only): the newest root PostgreSQL holds for the pinned root, else the pinned file. */
async function siteRoot(cli: CliContext): Promise<Shown> {
  const { readCurrentRoot } = await import('../../infra/trust-roots.ts');
  const pool = await cli.db();
  const pinnedPath = cli.config.trustRoot;
  const pinned = pinnedPath ? await readRootFile(pinnedPath, 'OUK_TRUST_ROOT') : null;
  const stored = await readCurrentRoot(pool, pinned ? createHash('sha256').update(pinned.raw).digest('hex') : undefined);
  if (stored && (!pinned || stored.version >= pinned.md.signed.version)) {
    const label = `the site's root (ouk_meta.trust_roots)`;
    const { parseRoot } = await import('../../signing/root/index.ts');
    return {
      md: parseRoot(stored.document, label),
      raw: stored.document,
      label,
      site: { pinned: pinnedPath ?? null, storedAt: stored.storedAt.toISOString(), from: stored.source, importId: stored.importId, kitVersion: stored.kitVersion },
    };
  }
  if (pinned && pinnedPath) {
    return { ...pinned, label: `OUK_TRUST_ROOT=${pinnedPath}`, site: { pinned: pinnedPath, storedAt: null, from: `OUK_TRUST_ROOT=${pinnedPath}`, importId: null, kitVersion: null } };
  }
  throw new OukError(
    'INPUT_NOT_FOUND',
    'this site has no root of trust: OUK_TRUST_ROOT is not set and no root is stored — it trusts the bare keys of OUK_TRUSTED_KEYS. Pin a root (OUK_TRUST_ROOT=root.json, docs/trust.md) or give FILE',
  );
}

function registerShow(trust: Command, cli: CliContext): void {
  trust
    .command('show')
    .description("print a root of trust: version, expiry, roles and thresholds, keys, who signed it; without FILE, the site's current root (the newest PostgreSQL holds for OUK_TRUST_ROOT)")
    .argument('[file]', "the root document (root.json); default: the site's current root")
    .option('--json', 'print it as JSON', false)
    .action(async (file: string | undefined, opts: { json?: boolean }) => {
      const shown: Shown = file !== undefined ? { ...(await readRootFile(file, 'stella trust show')), label: file } : await siteRoot(cli);
      const { md, raw, label } = shown;
      const now = new Date();
      const root = md.signed;
      const valid = rootSigners(md, ROOT_ROLE, md);
      const threshold = root.roles[ROOT_ROLE]!.threshold;
      const daysLeft = (Date.parse(root.expires) - now.getTime()) / 86_400_000;
      const keys = Object.values(root.keys).map((k) => ({
        keyid: k.keyID,
        keytype: k.keyType,
        scheme: k.scheme,
        hint: keyHint(publicKeyOf(k, label)),
        roles: Object.entries(root.roles).filter(([, r]) => r.keyIDs.includes(k.keyID)).map(([n]) => n),
      }));
      if (opts.json) {
        const out = {
          file: file ?? null,
          ...(shown.site ? { site: shown.site } : {}),
          sha256: createHash('sha256').update(raw).digest('hex'),
          version: root.version,
          specVersion: root.specVersion,
          expires: root.expires,
          expired: root.isExpired(now),
          consistentSnapshot: root.consistentSnapshot,
          roles: Object.fromEntries(Object.entries(root.roles).map(([n, r]) => [n, { threshold: r.threshold, keyids: r.keyIDs }])),
          keys,
          signatures: { valid, threshold, selfSigned: valid.length >= threshold },
          document: md.toJSON(),
        };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } else {
        const site = shown.site;
        const lines = [
          `root v${root.version} (TUF spec ${root.specVersion}) in ${file !== undefined ? path.basename(file) : label}, sha256:${createHash('sha256').update(raw).digest('hex')}`,
          ...(site
            ? [`site:       pinned ${site.pinned ?? '(OUK_TRUST_ROOT not set here)'}; ${site.storedAt ? `stored ${site.storedAt} from ${site.from}${site.kitVersion ? ` (kit ${site.kitVersion}, import ${site.importId})` : ''}` : 'no kit verified against it yet'}`]
            : []),
          `expires:    ${root.expires}${root.isExpired(now) ? '  EXPIRED: a site on this root accepts only a kit that carries the next root' : `  (in ${Math.floor(daysLeft)} days)`}`,
          ...roleLines(md),
          ...keys.map((k) => `key ${k.keyid}  ${k.scheme}, hint ${k.hint}, roles ${k.roles.join(', ') || '(none)'}`),
          `signatures: ${valid.length} valid by its root keys (threshold ${threshold})${valid.length ? `: ${valid.join(', ')}` : ''}`,
        ];
        process.stdout.write(terminalLines(lines));
      }
      // The description printed, a root that is not self-signed is refused like everywhere else (exit code).
      // (A stored root was checked against its predecessor when stored; a self-signature is required of it too.)
      pinnedTrust(md, label);
    });
}

export function registerTrust(program: Command, cli: CliContext): void {
  const trust = program.command('trust').description('the root of trust a site pins: create, rotate and show TUF root documents (docs/trust.md)');
  registerInit(trust, cli);
  registerRotate(trust, cli);
  registerShow(trust, cli);
}
