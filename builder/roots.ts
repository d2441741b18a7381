/**
 * The roots a kit is asked to carry (`stella ouk build --root NEXT.json`),
 * checked before anything is built: each a valid root (ROOT_INVALID), no
 * version twice, consecutive versions each signed by the rule (N → N+1, the
 * same check a site makes), the newest not expired at `now` (ROOT_EXPIRED),
 * and the kit's signing keys meeting the newest root's kit threshold
 * (SIGNATURE_THRESHOLD): a site that follows the chain verifies the kit
 * against that root, so a kit that would fail there is not built.
 */
import { MAX_CARRIED_ROOTS } from '../bundle/trust.ts';
import { OukError } from '../lib/errors.ts';
import {
  KIT_ROLE,
  pinnedTrust,
  readRootFile,
  requireUnexpired,
  shortKeyid,
  stepTrust,
} from '../signing/root/index.ts';

export interface CarriedRootFile {
  version: number;
  raw: Buffer;
  path: string;
}

export async function readCarriedRoots(paths: readonly string[], signerKeyids: readonly string[], now: Date): Promise<CarriedRootFile[]> {
  if (paths.length === 0) return [];
  if (paths.length > MAX_CARRIED_ROOTS) throw new OukError('USAGE', `${paths.length} --root files: a kit carries at most ${MAX_CARRIED_ROOTS} roots (a site older than that pins a newer root)`);
  const roots = [];
  for (const p of paths) roots.push({ path: p, ...(await readRootFile(p, '--root')) });
  roots.sort((a, b) => a.md.signed.version - b.md.signed.version);
  for (let i = 1; i < roots.length; i++) {
    const [a, b] = [roots[i - 1]!, roots[i]!];
    if (a.md.signed.version === b.md.signed.version) throw new OukError('USAGE', `--root ${a.path} and --root ${b.path} are both root v${a.md.signed.version}: carry each version once`);
    if (b.md.signed.version !== a.md.signed.version + 1) {
      throw new OukError('USAGE', `--root gives v${a.md.signed.version} and v${b.md.signed.version} but not the versions between: a site walks the chain one version at a time — carry every version from the oldest a site may still trust`);
    }
  }
  let state = pinnedTrust(roots[0]!.md, roots[0]!.path);
  for (const r of roots.slice(1)) state = stepTrust(state, r.md, r.path);
  requireUnexpired(state, now);
  const kit = state.root.signed.roles[KIT_ROLE]!;
  const signing = kit.keyIDs.filter((id) => signerKeyids.includes(id));
  if (signing.length < kit.threshold) {
    throw new OukError(
      'SIGNATURE_THRESHOLD',
      `the kit would be signed by ${signing.length} of the kit keys of root v${state.root.signed.version} (${kit.keyIDs.map(shortKeyid).join(', ')}), which requires ${kit.threshold}: a site that follows the carried roots would refuse it — sign with more of its kit keys (--key)`,
    );
  }
  return roots.map((r) => ({ version: r.md.signed.version, raw: r.raw, path: r.path }));
}
