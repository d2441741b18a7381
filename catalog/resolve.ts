/**
 * From the reference's root document to the platform's manifest: an index
 * (possibly an index of indexes, as an OCI layout pointing at a
 * multi-platform index) is followed to the manifest for `platform`
 * (`os/arch[/variant]`); every child document's bytes are checked against
 * its digest and size.
 */
import { OukError } from '../lib/errors.ts';
import { type Descriptor, parseDocument, sha256 } from './documents.ts';
import type { ImageSource } from './source.ts';

export interface ResolvedImage {
  manifestDigest: string;
  platform: string;
  layers: Descriptor[];
}

const platformOf = (d: Descriptor): string => (d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : 'unknown');

function matches(d: Descriptor, want: string): boolean {
  if (!d.platform) return false;
  const [os, arch, variant] = want.split('/');
  return d.platform.os === os && d.platform.architecture === arch && (variant === undefined || d.platform.variant === variant);
}

export async function resolveImage(source: ImageSource, platform: string, maxJsonBytes: number): Promise<ResolvedImage> {
  const root = await source.root(maxJsonBytes);
  if (root.digest?.startsWith('sha256:') && sha256(root.body) !== root.digest) {
    throw new OukError('IMAGE_INVALID', `${source.name}: the document named ${root.digest} has other bytes (${sha256(root.body)}) — re-push the image`);
  }
  let doc = parseDocument(root.body, root.mediaType, source.name);
  let digest = root.digest ?? sha256(root.body);
  let chosen = 'unknown';
  for (let depth = 0; doc.kind === 'index'; depth++) {
    if (depth >= 3) throw new OukError('IMAGE_INVALID', `${source.name}: indexes nested more than 3 deep`);
    const candidates = doc.manifests.filter((m) => !(m.platform?.os === 'unknown'));
    const pick = candidates.find((m) => matches(m, platform)) ?? (candidates.length === 1 && !candidates[0]!.platform ? candidates[0] : undefined);
    if (!pick) {
      const have = candidates.map(platformOf).join(', ') || 'none';
      throw new OukError('IMAGE_PLATFORM_MISSING', `${source.name} has no manifest for ${platform} (it has: ${have}): pass --platform with one of them`);
    }
    if (pick.platform) chosen = platformOf(pick);
    const child = await source.document(pick.digest, Math.min(maxJsonBytes, Math.max(pick.size, 1)));
    if (child.body.length !== pick.size || sha256(child.body) !== pick.digest) {
      throw new OukError('IMAGE_INVALID', `${source.name}: the document ${pick.digest} does not have the digest and size (${pick.size}) its index names — re-push the image`);
    }
    doc = parseDocument(child.body, child.mediaType ?? pick.mediaType, source.name);
    digest = pick.digest;
  }
  return { manifestDigest: digest, platform: chosen === 'unknown' ? platform : chosen, layers: doc.layers };
}
