/**
 * Staging a verified bundle's members in the object store, shared by the
 * unpack stage and by load (which re-stages members that vanished between
 * retries; a stage never calls another stage).
 *
 * The tarball is streamed through the bundle reader (bundle/reader.ts refuses
 * absolute paths, `..`, links, devices, duplicates and members the manifest
 * does not list, and checks every member's size and sha256 while streaming);
 * each member goes to `staged/<digest>/<import id>/<member path>`. The bytes
 * read must be the bytes verify checked (whole-file sha256, manifest.json),
 * else DIGEST_CHANGED. A marker `.complete`, written last, means every member
 * is staged; a failure removes the staged prefix.
 */
import { createHash } from 'node:crypto';
import { readBundle } from '../../bundle/reader.ts';
import { OukError } from '../../lib/errors.ts';
import { countBytes, stagedMarker, stagedPrefix, throttledProgress, type StageContext, type StagePayload } from '../context.ts';
import { getStream, objectExists, putSmallObject, removeObjectsUnder, uploadStream } from '../../infra/store.ts';
import { stageIsDone, type ImportRecord } from '../../infra/import-records/index.ts';

export interface UnpackResult {
  digest: string;
  prefix: string;
  members: number;
  bytes: number;
}

/** The verified facts unpack and load depend on; a stage run out of order fails clearly. */
export function requireVerified(rec: ImportRecord): { digest: string; manifestSha256: string; manifest: NonNullable<ImportRecord['manifest']> } {
  if (!stageIsDone(rec, 'verify') || !rec.digest || !rec.manifestSha256 || !rec.manifest) {
    throw new OukError('IMPORT_FAILED', `import ${rec.id} has not passed verify: run the whole import again (\`stella ouk retry ${rec.id}\`)`);
  }
  return { digest: rec.digest, manifestSha256: rec.manifestSha256, manifest: rec.manifest };
}

/** Whether this import's members are all staged (the marker exists). */
export async function membersStaged(ctx: StageContext, p: StagePayload, digest: string): Promise<boolean> {
  return objectExists(ctx.store, p.bucket, stagedMarker(digest, p.importId));
}

/** Stages every member of the verified tarball (from scratch: leftovers of a crashed attempt are not trusted). */
export async function stageMembers(p: StagePayload, ctx: StageContext, rec: ImportRecord): Promise<UnpackResult> {
  const { digest, manifestSha256, manifest } = requireVerified(rec);
  const prefix = stagedPrefix(digest, p.importId);
  const marker = stagedMarker(digest, p.importId);
  const totalBytes = manifest.members.reduce((n, m) => n + m.size, 0);
  await removeObjectsUnder(ctx.store, p.bucket, prefix);
  const progress = throttledProgress(ctx.progress);
  let done = 0;
  try {
    const body = await getStream(ctx.store, p.bucket, p.key);
    const read = await readBundle(body, {
      onManifest(_m, raw) {
        const got = createHash('sha256').update(raw).digest('hex');
        if (got !== manifestSha256) {
          throw new OukError('DIGEST_CHANGED', `manifest.json of ${p.key} is not the one verify checked: the object changed after verification — upload it again`);
        }
      },
      async onMember(member, stream) {
        progress.update({ unit: 'bytes', done, total: totalBytes, current: member.path });
        const counted = countBytes(stream, (n) => {
          done += n;
          progress.update({ unit: 'bytes', done, total: totalBytes, current: member.path });
        });
        await uploadStream(ctx.store, p.bucket, prefix + member.path, counted, member.size);
      },
    });
    if (read.sha256 !== digest) {
      throw new OukError('DIGEST_CHANGED', `${p.key} now has sha256 ${read.sha256}, verify checked ${digest}: the object changed after verification — upload it again`);
    }
    await putSmallObject(ctx.store, p.bucket, marker, Buffer.from(JSON.stringify({ importId: p.importId, digest, members: manifest.members.length }) + '\n'));
  } catch (e) {
    await removeObjectsUnder(ctx.store, p.bucket, prefix).catch((err: unknown) => ctx.logger.warn({ err, prefix }, 'could not remove the staged members after a failure'));
    throw e;
  }
  progress.flush();
  return { digest, prefix, members: manifest.members.length, bytes: totalBytes };
}
