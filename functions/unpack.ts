/**
 * Stage 2, unpack: stage each member of the verified tarball in the object
 * store under `staged/<digest>/<import id>/<member path>`
 * (functions/common/staging.ts), so load can run on any worker. A rerun once
 * the staged marker exists does nothing.
 */
import { requireImport, stageDone, stageIsDone } from '../infra/import-records/index.ts';
import { membersStaged, requireVerified, stageMembers, type UnpackResult } from './common/staging.ts';
import { stagedPrefix, type StageContext, type StagePayload } from './context.ts';

export type { UnpackResult } from './common/staging.ts';

export async function unpack(p: StagePayload, ctx: StageContext): Promise<UnpackResult> {
  const rec = await requireImport(ctx.pool, p.importId);
  const { digest, manifest } = requireVerified(rec);
  if (await membersStaged(ctx, p, digest)) {
    // Staged by an earlier run of this import (each import stages under its own id).
    const result: UnpackResult = { digest, prefix: stagedPrefix(digest, p.importId), members: manifest.members.length, bytes: manifest.members.reduce((n, m) => n + m.size, 0) };
    if (!stageIsDone(rec, 'unpack')) await stageDone(ctx.pool, p.importId, 'unpack', result);
    return result;
  }
  const result = await stageMembers(p, ctx, rec);
  await stageDone(ctx.pool, p.importId, 'unpack', result);
  ctx.logger.info({ members: result.members, bytes: result.bytes, prefix: result.prefix }, 'bundle members staged');
  return result;
}
