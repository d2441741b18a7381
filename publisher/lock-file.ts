/**
 * A lock file naming the process that holds it (pid, host, start), shared by
 * `stella feeds sync` (DIR/.sync/lock) and `stella publish` (M/.publish/lock).
 * A lock whose process is gone on this host (a killed run, or a lock left
 * unreadable while it was written) is taken over; one held by a live process,
 * or by another host, refuses with the caller's code.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { OukError, type ErrorCode } from '../lib/errors.ts';

export interface LockFile {
  /** Set when a stale lock was taken over: who held it. */
  tookOver: string | null;
  release(): Promise<void>;
}

export interface LockOwner {
  /** the refusal's code: SYNC_LOCKED, PUBLISH_LOCKED */
  code: ErrorCode;
  /** what runs under the lock, for the messages: "sync", "publish" */
  noun: string;
  /** the directory it writes, for the message */
  writes: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLockFile(file: string, now: Date, owner: LockOwner): Promise<LockFile> {
  const me = { pid: process.pid, host: hostname(), started: now.toISOString() };
  let tookOver: string | null = null;
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(`${JSON.stringify(me)}\n`);
      await fh.close();
      return { tookOver, release: () => unlink(file).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: { pid?: unknown; host?: unknown; started?: unknown } = {};
    try {
      holder = JSON.parse(await readFile(file, 'utf8')) as typeof holder;
    } catch {
      // unreadable: a run killed while writing it, stale
    }
    const pid = typeof holder.pid === 'number' ? holder.pid : NaN;
    if (holder.host === me.host && Number.isInteger(pid) && alive(pid)) {
      throw new OukError(owner.code, `another ${owner.noun} (process ${pid}, started ${String(holder.started)}) is writing ${owner.writes}: wait for it to finish`);
    }
    if (typeof holder.host === 'string' && holder.host !== me.host) {
      throw new OukError(owner.code, `a ${owner.noun} on host ${holder.host} (process ${String(holder.pid)}, started ${String(holder.started)}) holds ${file}: if no ${owner.noun} runs there any more, delete that file`);
    }
    tookOver = `process ${String(holder.pid)} started ${String(holder.started)}`;
    await unlink(file).catch(() => undefined); // its process is gone
  }
  throw new OukError(owner.code, `cannot take ${file}: another ${owner.noun} took it at the same moment`);
}
