/**
 * Feed snapshots for delta tests: a map of feed-relative paths to either a
 * shared record (linked, never copied into the repo) or the content of an
 * edited copy, written out as a `--feeds` directory at test time.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildBundle, type BuildResult } from '../../builder/build.ts';
import { sharedDir } from './services.ts';

export const FEEDS = path.join(sharedDir, 'feeds');

export type Json = Record<string, unknown>;

/** A feeds snapshot: relative path -> the shared file it links to, or the content of an edited copy. */
export type Snapshot = Map<string, { link: string } | { content: string }>;

export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The shared record at `rel` (relative to the feeds directory). */
export function shared(rel: string): { link: string } {
  return { link: path.join(FEEDS, rel) };
}

export async function jsonOf(rel: string): Promise<Json> {
  return JSON.parse(await readFile(path.join(FEEDS, rel), 'utf8')) as Json;
}

export function edited(s: Snapshot, rel: string, obj: unknown): void {
  s.set(rel, { content: `${JSON.stringify(obj, null, 2)}\n` });
}

/** The record at `rel` as it is in snapshot `s`. */
export async function current(s: Snapshot, rel: string): Promise<Json> {
  const e = s.get(rel);
  assert.ok(e, `${rel} is in the snapshot`);
  return JSON.parse('link' in e ? await readFile(e.link, 'utf8') : e.content) as Json;
}

/** Edit the record at `rel` in `s` (a copy of its current content). */
export async function editRecord(s: Snapshot, rel: string, fn: (r: Json) => void): Promise<void> {
  const r = await current(s, rel);
  fn(r);
  edited(s, rel, r);
}

/** Writes the snapshot as a feeds directory at `dir`. */
export async function materialise(s: Snapshot, dir: string): Promise<void> {
  for (const [rel, e] of [...s].sort(([a], [b]) => byteCompare(a, b))) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    if ('link' in e) await symlink(e.link, file);
    else await writeFile(file, e.content);
  }
}

/** The `.json` files under `rel` of the shared feeds, feed-relative, sorted. */
export async function listJson(rel: string): Promise<string[]> {
  const names = (await readdir(path.join(FEEDS, rel), { recursive: true })).map(String).filter((f) => f.endsWith('.json'));
  return names.map((n) => path.join(rel, n)).sort(byteCompare);
}

/**
 * Writes snapshot `s` as `work/feeds-<name>` and builds a kit of it, valid ten
 * years; a delta when `base` is given (on its `--full-out` kit when it has one).
 */
export async function buildSnapshot(
  s: Snapshot,
  o: { work: string; name: string; version: string; keyPath: string; out: string; base?: BuildResult; fullOut?: string; tmpDir?: string },
): Promise<BuildResult> {
  const feeds = path.join(o.work, `feeds-${o.name}`);
  await materialise(s, feeds);
  return buildBundle({
    feedsDir: feeds,
    keyPath: o.keyPath,
    out: o.out,
    version: o.version,
    expiresDays: 3650,
    base: o.base?.full?.out ?? o.base?.out,
    fullOut: o.fullOut,
    onWarning: () => undefined,
    ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
  });
}
