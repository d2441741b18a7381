/**
 * One publish at a time per mirror directory: `M/.publish/lock` names the
 * process holding it (pid, host, start). A lock whose process is gone on
 * this host (a killed publish) is taken over; one held by a live process,
 * or by another host, refuses with PUBLISH_LOCKED.
 */
import path from 'node:path';
import { acquireLockFile } from '../lock-file.ts';

export interface PublishLock {
  file: string;
  /** Set when a stale lock was taken over: who held it. */
  tookOver: string | null;
  release(): Promise<void>;
}

export async function acquirePublishLock(stateDir: string, now: Date): Promise<PublishLock> {
  const file = path.join(stateDir, 'lock');
  const lock = await acquireLockFile(file, now, { code: 'PUBLISH_LOCKED', noun: 'publish', writes: path.dirname(stateDir) });
  return { file, ...lock };
}
