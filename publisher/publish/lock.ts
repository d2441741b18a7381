/**
 * One publish at a time per mirror directory: `M/.publish/lock` names the
 * process holding it (pid, host, start). A lock whose process is gone on
 * this host (a killed publish) is taken over; one held by a live process,
 * or by another host, refuses with PUBLISH_LOCKED.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { OukError } from '../../lib/errors.ts';

export interface PublishLock {
  file: string;
  /** Set when a stale lock was taken over: who held it. */
  tookOver: string | null;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquirePublishLock(stateDir: string, now: Date): Promise<PublishLock> {
  const file = path.join(stateDir, 'lock');
  const me = { pid: process.pid, host: hostname(), started: now.toISOString() };
  let tookOver: string | null = null;
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(`${JSON.stringify(me)}\n`);
      await fh.close();
      return { file, tookOver, release: () => unlink(file).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: { pid?: unknown; host?: unknown; started?: unknown } = {};
    try {
      holder = JSON.parse(await readFile(file, 'utf8')) as typeof holder;
    } catch {
      // unreadable: a publish killed while writing it, stale
    }
    const pid = typeof holder.pid === 'number' ? holder.pid : NaN;
    if (holder.host === me.host && Number.isInteger(pid) && alive(pid)) {
      throw new OukError('PUBLISH_LOCKED', `another publish (process ${pid}, started ${String(holder.started)}) is writing ${path.dirname(stateDir)}: wait for it to finish`);
    }
    if (typeof holder.host === 'string' && holder.host !== me.host) {
      throw new OukError('PUBLISH_LOCKED', `a publish on host ${holder.host} (process ${String(holder.pid)}, started ${String(holder.started)}) holds ${file}: if no publish runs there any more, delete that file`);
    }
    tookOver = `process ${String(holder.pid)} started ${String(holder.started)}`;
    await unlink(file).catch(() => undefined);
  }
  throw new OukError('PUBLISH_LOCKED', `cannot take ${file}: another publish took it at the same moment`);
}
