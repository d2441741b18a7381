/**
 * Stage 5, images: push the OCI images the kit carries (manifest `images[]`,
 * staged by unpack under images/<name>/) to the site's registry, as
 * `<OUK_REGISTRY_PREFIX><name>` (stella/scanner, stella/zastava).
 *
 * It runs after activate, as its own step of the flow: a registry outage
 * never keeps the new DB from going live; the step fails with
 * REGISTRY_UNAVAILABLE while the import stays active, and `stella ouk retry`
 * resumes it. Per image, from the index down:
 *
 *   1. every config and layer blob: HEAD, skipped when the registry holds it,
 *      else streamed from the object store in one monolithic upload — so a
 *      push retried after a failure carries on from the first blob missing;
 *   2. every platform manifest, by digest (skipped when held);
 *   3. the index, by tag; the digest the registry reports for each manifest
 *      and for the index must equal the kit's (REGISTRY_REJECTED otherwise).
 *
 * Without OUK_REGISTRY_URL (ctx.registry null) or without images the stage is
 * done with `skipped` saying why. When done, the staged members are removed
 * (activate leaves the image members for this stage). Idempotent: a done stage
 * returns its recorded result; a rerun pushes nothing the registry holds.
 */
import { createHash } from 'node:crypto';
import { blobMember, digestHex, INDEX_TYPES, type KitImage, MANIFEST_TYPES, MAX_OCI_JSON, type OciDescriptor, parseImageManifest, parseIndex } from '../bundle/oci.ts';
import { OukError } from '../lib/errors.ts';
import { type ImportRecord, requireImport, stageDone, stageIsDone } from '../infra/import-records/index.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { getStream, readSmallObject, removeObjectsUnder } from '../infra/store.ts';
import { membersStaged, requireVerified, stageMembers } from './common/staging.ts';
import { stagedPrefix, throttledProgress, type StageContext, type StagePayload } from './context.ts';

export interface ImagePushResult {
  name: string;
  /** registry repository, e.g. stella/scanner */
  repository: string;
  tag: string;
  indexDigest: string;
  platforms: string[];
  blobs: { pushed: number; skipped: number; bytesPushed: number };
  manifests: { pushed: number; skipped: number };
}

export interface ImagesResult {
  /** Why nothing was pushed, when nothing was. */
  skipped?: string;
  /** The registry pushed to (its origin). */
  registry?: string;
  images: ImagePushResult[];
}

export async function images(p: StagePayload, ctx: StageContext): Promise<ImagesResult> {
  const rec = await requireImport(ctx.pool, p.importId);
  if (stageIsDone(rec, 'images')) return rec.stages.images!.result as ImagesResult;
  const { digest, manifest } = requireVerified(rec);
  if (!stageIsDone(rec, 'activate')) {
    throw new OukError('IMPORT_FAILED', `import ${p.importId} has not been activated: retry it with \`stella ouk retry ${p.importId}\``, { retryable: true });
  }
  const prefix = stagedPrefix(digest, p.importId);
  const list = manifest.images ?? [];
  const finish = async (result: ImagesResult): Promise<ImagesResult> => {
    await stageDone(ctx.pool, p.importId, 'images', result);
    await removeObjectsUnder(ctx.store, p.bucket, prefix).catch((err: unknown) => ctx.logger.warn({ err }, 'could not remove staged members'));
    return result;
  };
  if (!list.length) return finish({ skipped: 'the kit carries no images', images: [] });
  if (!ctx.registry) return finish({ skipped: 'no registry configured (OUK_REGISTRY_URL): images not pushed', images: list.map((i) => notPushed(i, '')) });

  return finish({ registry: ctx.registry.client.url, images: await pushKitImages(p, rec, ctx.registry, ctx) });
}

/**
 * Pushes the images of one import's kit (all, or those named in `only`; its
 * members staged again from the verified tarball when they are gone), blob by
 * blob, then the manifests and the index by tag; what the registry holds is
 * skipped.
 */
async function pushKitImages(p: StagePayload, rec: ImportRecord, registry: NonNullable<StageContext['registry']>, ctx: StageContext, only?: ReadonlySet<string>): Promise<ImagePushResult[]> {
  const { digest, manifest } = requireVerified(rec);
  const prefix = stagedPrefix(digest, p.importId);
  const list = (manifest.images ?? []).filter((i) => !only || only.has(i.name));
  // The members vanished (removed by hand, an older gc): stage them again from the verified tarball.
  if (!(await membersStaged(ctx, p, digest))) await stageMembers(p, ctx, rec);

  const { client, prefix: repoPrefix } = registry;
  const totalBytes = manifest.members.filter((m) => m.role === 'image').reduce((n, m) => n + m.size, 0);
  const progress = throttledProgress(ctx.progress);
  let done = 0;
  const out: ImagePushResult[] = [];
  for (const img of list) {
    const repository = `${repoPrefix}${img.name}`;
    const r = notPushed(img, repository);
    const readJson = async (d: Pick<OciDescriptor, 'digest'>): Promise<Buffer> => {
      const key = prefix + blobMember(img.name, d.digest);
      const buf = await readSmallObject(ctx.store, p.bucket, key, MAX_OCI_JSON);
      if (!buf) throw new OukError('STORE_UNAVAILABLE', `${key} is not in the object store (removed while the import ran?): \`stella ouk retry ${p.importId}\``, { retryable: true });
      if (`sha256:${createHash('sha256').update(buf).digest('hex')}` !== d.digest) {
        throw new OukError('MEMBER_CHECKSUM_MISMATCH', `the staged ${key} does not match its digest: the object store changed it — \`stella ouk retry ${p.importId}\` after re-importing the kit`);
      }
      return buf;
    };
    const indexBuf = await readJson({ digest: img.indexDigest });
    const index = parseIndex(indexBuf, `${img.name} index ${img.indexDigest}`);
    const listed = index.manifests.map((d) => d.digest).sort();
    const named = img.platforms.map((x) => x.digest).sort();
    if (listed.join() !== named.join()) {
      throw new OukError('MANIFEST_INVALID', `the index of ${img.name} lists ${listed.join(', ')}, the manifest names ${named.join(', ')}: the kit is inconsistent — rebuild it`);
    }

    const manifests: Array<{ d: OciDescriptor; buf: Buffer }> = [];
    for (const d of index.manifests) {
      const buf = await readJson(d);
      const man = parseImageManifest(buf, `${img.name} manifest ${d.digest}`);
      manifests.push({ d, buf });
      for (const b of [man.config, ...man.layers]) {
        progress.update({ unit: 'bytes', done, total: totalBytes, current: `${repository}@${b.digest}` });
        if (await client.hasBlob(repository, b.digest)) {
          r.blobs.skipped++;
          done += b.size;
          continue;
        }
        digestHex(b.digest);
        const key = prefix + blobMember(img.name, b.digest);
        await client.pushBlob(repository, b.digest, b.size, () => getStream(ctx.store, p.bucket, key));
        r.blobs.pushed++;
        r.blobs.bytesPushed += b.size;
        done += b.size;
      }
    }
    for (const { d, buf } of manifests) {
      if ((await client.manifestDigest(repository, d.digest, MANIFEST_TYPES)) === d.digest) {
        r.manifests.skipped++;
        continue;
      }
      const got = await client.putManifest(repository, d.digest, d.mediaType, buf);
      if (got !== d.digest) throw mismatch(client.url, repository, d.digest, got);
      r.manifests.pushed++;
    }
    const tagged = await client.manifestDigest(repository, img.tag, INDEX_TYPES);
    if (tagged === img.indexDigest) r.manifests.skipped++;
    else {
      const got = await client.putManifest(repository, img.tag, index.mediaType ?? img.mediaType, indexBuf);
      if (got !== img.indexDigest) throw mismatch(client.url, `${repository}:${img.tag}`, img.indexDigest, got);
      r.manifests.pushed++;
    }
    ctx.logger.info({ repository, tag: img.tag, indexDigest: img.indexDigest, blobs: r.blobs, manifests: r.manifests }, 'image pushed to the registry');
    out.push(r);
  }
  progress.flush();
  return out;
}

function notPushed(img: KitImage, repository: string): ImagePushResult {
  return {
    name: img.name,
    repository,
    tag: img.tag,
    indexDigest: img.indexDigest,
    platforms: img.platforms.map((x) => `${x.os}/${x.architecture}${x.variant ? `/${x.variant}` : ''}`),
    blobs: { pushed: 0, skipped: 0, bytesPushed: 0 },
    manifests: { pushed: 0, skipped: 0 },
  };
}

function mismatch(registry: string, ref: string, want: string, got: string): OukError {
  return new OukError('REGISTRY_REJECTED', `the registry ${registry} reports ${ref} as ${got}, the kit's digest is ${want}: it rewrote the manifest — use a registry that stores manifests as pushed`);
}

/** One image of the active kit chain, as `stella ouk images` lists it. */
export interface SiteImage extends KitImage {
  /** The import (and kit version) that carried this image last. */
  importId: string;
  version: string;
  /** That import's images stage: done | failed | running | retrying | (none yet). */
  pushState: string | null;
  pushError: string | null;
}

/**
 * The images the active DB's kit chain carries: the active import's, then —
 * for a delta — those of the import it was applied on (its base), and so on
 * back to a full kit; the newest kit naming an image wins. An image a delta
 * does not carry stays as the earlier kit pushed it.
 */
export async function activeKitImages(pool: StageContext['pool']): Promise<{ version: string | null; images: SiteImage[] }> {
  const pointer = await readActivePointer(pool);
  const seen = new Map<string, SiteImage>();
  let cur = pointer.activeImport;
  for (let hops = 0; cur && hops < 10_000; hops++) {
    const rec = await requireImport(pool, cur);
    for (const img of rec.manifest?.images ?? []) {
      if (!seen.has(img.name)) {
        seen.set(img.name, { ...img, importId: rec.id, version: rec.version ?? '', pushState: rec.stages.images?.state ?? null, pushError: rec.stages.images?.error ?? null });
      }
    }
    if (rec.kind !== 'delta') break;
    cur = (rec.stages.activate?.result as { previousImport?: string | null } | undefined)?.previousImport ?? null;
  }
  return { version: pointer.activeVersion, images: [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1)) };
}

export interface ImagesPushed {
  importId: string;
  version: string;
  result: ImagesResult;
}

/**
 * `stella ouk images --push`: the images of the active kit chain that the
 * configured registry does not hold (by index digest, and the tag pointing
 * at it) are pushed now, each by the import that carries it: a kit imported
 * while no registry was configured (its images step done as `skipped`), a
 * registry replaced or wiped since, a push that failed. The push is the
 * images step's own (members staged again from the verified tarball, what
 * the registry holds skipped), for the images the chain takes from that kit
 * only; its result becomes that import's images result, so an images step
 * that had failed is done (the CLI then clears its failed job). Nothing
 * missing and no images step failed: nothing done.
 */
export async function pushActiveImages(ctx: StageContext): Promise<ImagesPushed[]> {
  const registry = ctx.registry;
  if (!registry) throw new OukError('USAGE', 'no registry is configured: set OUK_REGISTRY_URL (and OUK_REGISTRY_USERNAME / OUK_REGISTRY_PASSWORD_FILE if it requires a login), then push');
  const { images: chain } = await activeKitImages(ctx.pool);
  // import → the names of the images it carries for the chain that the registry lacks
  const owed = new Map<string, Set<string>>();
  for (const img of chain) {
    const repository = `${registry.prefix}${img.name}`;
    const byDigest = await registry.client.manifestDigest(repository, img.indexDigest, INDEX_TYPES);
    const byTag = byDigest === img.indexDigest ? await registry.client.manifestDigest(repository, img.tag, INDEX_TYPES) : null;
    // Lacking, or held while the import's images step is recorded failed: pushed (what is held is skipped) and recorded done.
    if (byTag !== img.indexDigest || img.pushState === 'failed') owed.set(img.importId, (owed.get(img.importId) ?? new Set()).add(img.name));
  }
  const out: ImagesPushed[] = [];
  for (const [importId, names] of owed) {
    const rec = await requireImport(ctx.pool, importId);
    const p: StagePayload = { importId, bucket: rec.bucket, key: rec.objectKey, etag: rec.etag };
    // A failure is the command's (its exit code says which): the import's record keeps what its
    // images step did, and the next --push starts over, skipping what the registry holds by then.
    const result: ImagesResult = { registry: registry.client.url, images: await pushKitImages(p, rec, registry, ctx, names) };
    await stageDone(ctx.pool, importId, 'images', result);
    await removeObjectsUnder(ctx.store, p.bucket, stagedPrefix(requireVerified(rec).digest, importId)).catch((err: unknown) => ctx.logger.warn({ err }, 'could not remove staged members'));
    out.push({ importId, version: rec.version ?? '', result });
  }
  return out;
}
