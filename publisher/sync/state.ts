/**
 * DIR/.sync/state.json: per source, where the next run starts (its
 * watermark), where an unfinished run stopped (its cursor), the last success
 * and the last run's counts. Saved whole (temporary file, fsync, rename)
 * after every step a killed sync must not repeat: a page written, an
 * ecosystem's archive downloaded, a commit's changes applied.
 *
 * DIR/.sync/lock keeps two syncs of one directory apart: it names the
 * process holding it; a lock whose process is gone (a killed sync) is taken
 * over, one held by a live process is SYNC_LOCKED.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { OukError } from '../../lib/errors.ts';
import { writeFileAtomic } from './files.ts';
import { acquireLockFile } from '../lock-file.ts';
import type { SourceName } from './report.ts';

export interface RunCounts {
  requests: number;
  fetched: number;
  added: number;
  modified: number;
  withdrawn: number;
  removed: number;
  skipped: number;
}

export interface SourceState {
  /** Where the next run starts; its shape is the source's own. */
  watermark: unknown;
  /** Where an unfinished run stopped; null when the last run finished. */
  cursor: unknown;
  /** When a run last finished (ISO 8601). */
  lastSuccess: string | null;
  lastAttempt: string | null;
  lastCounts: RunCounts | null;
  lastError: { code: string; message: string; at: string } | null;
  /** What else a source keeps between runs (HTTP validators, …). */
  extra: Record<string, unknown>;
}

export interface StateFile {
  format: 1;
  sources: Partial<Record<SourceName, SourceState>>;
}

const MAX_STATE_BYTES = 16 * 1024 * 1024;

export function emptySourceState(): SourceState {
  return { watermark: null, cursor: null, lastSuccess: null, lastAttempt: null, lastCounts: null, lastError: null, extra: {} };
}

export class SyncState {
  private constructor(
    readonly file: string,
    private readonly data: StateFile,
  ) {}

  static async open(syncDir: string): Promise<SyncState> {
    const file = path.join(syncDir, 'state.json');
    const s = await stat(file).catch(() => null);
    if (!s) return new SyncState(file, { format: 1, sources: {} });
    const damaged = (why: string): OukError =>
      new OukError('FEED_UNREADABLE', `${file} is damaged (${why}): move it away to sync every source again from the start, or restore it from a backup`);
    if (s.size > MAX_STATE_BYTES) throw damaged(`${s.size} bytes, more than a state file holds`);
    let data: unknown;
    try {
      data = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw damaged(`not JSON: ${(e as Error).message}`);
    }
    const d = data as Partial<StateFile>;
    if (typeof d !== 'object' || d === null || d.format !== 1 || typeof d.sources !== 'object' || d.sources === null) throw damaged('not a format-1 state file');
    for (const [name, st] of Object.entries(d.sources)) {
      if (typeof st !== 'object' || st === null) throw damaged(`source ${name} is not an object`);
      d.sources[name as SourceName] = { ...emptySourceState(), ...st };
    }
    return new SyncState(file, d as StateFile);
  }

  source(name: SourceName): SourceState {
    return (this.data.sources[name] ??= emptySourceState());
  }

  snapshot(): StateFile {
    return structuredClone(this.data);
  }

  async save(): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify(this.data, null, 2)}\n`, true);
  }
}

export interface SyncLock {
  release(): Promise<void>;
}

/** Takes DIR/.sync/lock, or fails with SYNC_LOCKED naming who holds it. */
export async function acquireLock(syncDir: string, now: () => Date): Promise<SyncLock> {
  await mkdir(syncDir, { recursive: true });
  const { release } = await acquireLockFile(path.join(syncDir, 'lock'), now(), { code: 'SYNC_LOCKED', noun: 'sync', writes: path.dirname(syncDir) });
  return { release };
}
