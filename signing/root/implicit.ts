/**
 * Today's trust, as a root: the bare public keys of OUK_TRUSTED_KEYS (or
 * `--key`) become an implicit, unsigned root in which each of them is a kit
 * key with threshold 1 — any one trusted key's signature suffices, as before
 * roots existed — that never expires. It has no root keys of its own, so a
 * rotation cannot start from it (carried roots are not followed: a site
 * adopts rotation by pinning a root, OUK_TRUST_ROOT).
 */
import { Metadata, MetadataKind } from '@tufjs/models';
import { OukError } from '../../lib/errors.ts';
import { NO_TRUSTED_KEY_MESSAGE, type TrustedKey } from '../trusted-keys.ts';
import { checkRoot, KIT_ROLE, ROOT_ROLE, TUF_MIRRORED_ROLES } from './document.ts';
import { TUF_SPEC_VERSION } from './create.ts';
import { tufKey } from './keys.ts';
import type { TrustState } from './trust-state.ts';

/** The implicit root's version (a signed root starts at 1) and expiry (never). */
export const IMPLICIT_ROOT_VERSION = 0;
const NEVER = '9999-12-31T23:59:59Z';

export function implicitTrust(keys: TrustedKey[], source = 'OUK_TRUSTED_KEYS'): TrustState {
  if (keys.length === 0) throw new OukError('KEY_NOT_TRUSTED', NO_TRUSTED_KEY_MESSAGE);
  const tuf = keys.map((k) => tufKey(k.key));
  const keyMap = Object.fromEntries(tuf.map((k) => [k.keyID, k.toJSON()]));
  const role = { keyids: [...new Set(tuf.map((k) => k.keyID))], threshold: 1 };
  const roles = Object.fromEntries([ROOT_ROLE, KIT_ROLE, ...TUF_MIRRORED_ROLES].map((name) => [name, role]));
  const root = Metadata.fromJSON(MetadataKind.Root, {
    signed: { _type: 'root', spec_version: TUF_SPEC_VERSION, version: IMPLICIT_ROOT_VERSION, expires: NEVER, keys: keyMap, roles, consistent_snapshot: false },
    signatures: [],
  } as Parameters<typeof Metadata.fromJSON>[1]);
  checkRoot(root, source);
  return { root, revoked: new Map(), chain: [IMPLICIT_ROOT_VERSION], source, implicit: true, trustedKeys: keys };
}
