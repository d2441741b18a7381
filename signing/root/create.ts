/**
 * Making roots: `createRoot` (version 1) and `rotateRoot` (version N+1).
 *
 * TUF's rule for a new root (spec 1.0 §5.3.4–5): version N+1 is trusted only
 * when it carries a threshold of signatures by the root keys of version N AND
 * a threshold by its own root keys. Both are checked here before a root is
 * handed back, so no command ever writes a root a site would refuse.
 * Version 1 needs its own threshold only (it is trusted by being pinned).
 *
 * The document is built as TUF JSON and parsed by @tufjs/models (its Role
 * type is not exported), then signed by Metadata.sign over the canonical form.
 */
import { Metadata, MetadataKind, type Key } from '@tufjs/models';
import { OukError } from '../../lib/errors.ts';
import type { SuiteKey } from '../suites/index.ts';
import { checkRoot, KIT_ROLE, ROOT_ROLE, TUF_MIRRORED_ROLES, type RootMetadata } from './document.ts';
import { keyidOfKey, tufKey } from './keys.ts';
import { describeSigners, meetsThreshold, signRoot } from './signatures.ts';

/** The TUF specification version written (major 1; the one @tufjs/models 4 implements). */
export const TUF_SPEC_VERSION = '1.0.31';

export interface RoleKeys {
  /** Public keys (a private key stands for its public half). */
  keys: SuiteKey[];
  threshold: number;
}

export interface CreateRootOptions {
  root: RoleKeys;
  kit: RoleKeys;
  expires: Date;
  /** Private keys that sign the new root: a threshold of its root keys. */
  signers: SuiteKey[];
}

export interface RotateRootOptions {
  /** Each omitted field keeps the current root's. */
  root?: Partial<RoleKeys>;
  kit?: Partial<RoleKeys>;
  expires: Date;
  /** Private keys that sign: a threshold of the current root's root keys and of the new root's. */
  signers: SuiteKey[];
}

/** `2027-01-31T00:00:00Z`: TUF's time format, at second precision. */
export function tufTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface RoleSpec {
  keys: Key[];
  threshold: number;
}

function roleSpec(name: string, r: RoleKeys): RoleSpec {
  const keys: Key[] = [];
  for (const k of r.keys) {
    const key = tufKey(k);
    if (keys.some((x) => x.keyID === key.keyID)) throw new OukError('USAGE', `the same ${name} key is given twice (key id ${key.keyID}): a threshold counts distinct keys`);
    keys.push(key);
  }
  if (keys.length === 0) throw new OukError('USAGE', `the ${name} role needs at least one key: pass --${name}-key PUB`);
  if (!Number.isSafeInteger(r.threshold) || r.threshold < 1 || r.threshold > keys.length) {
    throw new OukError('USAGE', `a ${name} threshold of ${r.threshold} with ${keys.length} ${name} key(s): it must be between 1 and the number of ${name} keys (--${name}-threshold N)`);
  }
  return { keys, threshold: r.threshold };
}

function build(version: number, expires: Date, root: RoleSpec, kit: RoleSpec): RootMetadata {
  const keys: Record<string, unknown> = {};
  for (const k of [...root.keys, ...kit.keys]) keys[k.keyID] = k.toJSON();
  const role = (r: RoleSpec) => ({ keyids: r.keys.map((k) => k.keyID), threshold: r.threshold });
  const roles: Record<string, unknown> = { [ROOT_ROLE]: role(root), [KIT_ROLE]: role(kit) };
  for (const name of TUF_MIRRORED_ROLES) roles[name] = role(kit);
  const md = Metadata.fromJSON(MetadataKind.Root, {
    signed: { _type: 'root', spec_version: TUF_SPEC_VERSION, version, expires: tufTime(expires), keys, roles, consistent_snapshot: false },
    signatures: [],
  } as Parameters<typeof Metadata.fromJSON>[1]);
  checkRoot(md, `root v${version}`);
  return md;
}

/** Every signer must hold a key of one of `roots`' root roles: anything else signs for nothing. */
function checkSigners(signers: SuiteKey[], roots: RootMetadata[]): void {
  const rootKeyids = new Set(roots.flatMap((r) => r.signed.roles[ROOT_ROLE]!.keyIDs));
  for (const s of signers) {
    const keyid = keyidOfKey(s);
    if (!rootKeyids.has(keyid)) {
      throw new OukError('USAGE', `--sign key ${keyid} is not a root key of ${roots.map((r) => `v${r.signed.version}`).join(' or ')}: sign with the root keys (a kit key does not sign roots)`);
    }
  }
}

function requireSigned(by: RootMetadata, md: RootMetadata): void {
  if (!meetsThreshold(by, ROOT_ROLE, md)) {
    const whose = by === md ? 'its own' : `root v${by.signed.version}'s`;
    throw new OukError(
      'SIGNATURE_THRESHOLD',
      `root v${md.signed.version} is signed by ${describeSigners(by, ROOT_ROLE, md)}, short of ${whose} root threshold: pass more --sign keys (each a root key of v${by.signed.version})`,
    );
  }
}

export function createRoot(opts: CreateRootOptions): RootMetadata {
  const md = build(1, opts.expires, roleSpec(ROOT_ROLE, opts.root), roleSpec(KIT_ROLE, opts.kit));
  checkSigners(opts.signers, [md]);
  signRoot(md, opts.signers);
  requireSigned(md, md);
  return md;
}

export function rotateRoot(current: RootMetadata, opts: RotateRootOptions): RootMetadata {
  const cur = current.signed;
  const keep = (name: string, next: Partial<RoleKeys> | undefined): RoleSpec => {
    const role = cur.roles[name]!;
    // New keys keep the current threshold unless one is given (roleSpec refuses one they cannot reach).
    if (next?.keys && next.keys.length > 0) return roleSpec(name, { keys: next.keys, threshold: next.threshold ?? role.threshold });
    const keys = role.keyIDs.map((id) => cur.keys[id]!);
    const threshold = next?.threshold ?? role.threshold;
    if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keys.length) {
      throw new OukError('USAGE', `--${name}-threshold ${threshold} with the ${keys.length} ${name} key(s) of v${cur.version}: it must be between 1 and the number of ${name} keys`);
    }
    return { keys, threshold };
  };
  const md = build(cur.version + 1, opts.expires, keep(ROOT_ROLE, opts.root), keep(KIT_ROLE, opts.kit));
  checkSigners(opts.signers, [current, md]);
  signRoot(md, opts.signers);
  requireSigned(current, md);
  requireSigned(md, md);
  return md;
}
