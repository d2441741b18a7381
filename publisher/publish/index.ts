/**
 * `stella publish`: tonight's kit into a mirror directory (layout.ts), by
 * the builder's own functions:
 *
 *   lock (lock.ts) ──► index.json + held full kits (held.ts) ──► plan (plan.ts: version, delta base, roll-up)
 *     ──► buildBundle into .publish/staging-N (a delta on the newest full DB, and that night's full DB)
 *     ──► catalog of tonight's DB (catalog.ts) ──► changes since the previous kit
 *     ──► release notes (notes.ts), torrents (torrent.ts)
 *     ──► kits and their files moved into the mirror (the private full into .publish/bases/)
 *     ──► index.json written whole (temporary file, rename), less what pruning drops (prune.ts)
 *     ──► the dropped kits' files removed
 *
 * A failure before the index is written leaves the mirror's index as it
 * was: a site never sees a kit listed whose files are not all there. A
 * second run the same day publishes `DATE.N` — or nothing, when the DB has
 * not changed since the mirror's newest kit of that day.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FeedWarning } from '../../builder/feeds/index.ts';
import { buildBundle, type WrittenBundle } from '../../builder/build.ts';
import { indexEntryFor, MIRROR_INDEX_FILE, serializeMirrorIndex, upsertEntries, type MirrorIndexEntry } from '../../bundle/mirror-index.ts';
import { parseVersion } from '../../bundle/version.ts';
import { OukError } from '../../lib/errors.ts';
import { loadKitSigners } from '../../signing/index.ts';
import { diffCatalogs, writeCatalog, type CatalogChanges } from './catalog.ts';
import { heldFulls, readMirrorIndex } from './held.ts';
import { kitFileName, kitFiles, mirrorPaths, notesFiles, torrentFile } from './layout.ts';
import { acquirePublishLock } from './lock.ts';
import { notesFor, notesMarkdown, type ReleaseNotes } from './notes.ts';
import { checkSettings, DEFAULT_NOTES_ID_LIMIT, type PublishSettings } from './options.ts';
import { planPublish } from './plan.ts';
import { planPrune } from './prune.ts';
import { writeTorrentBytes } from './torrent.ts';

export { DEFAULT_FULL_EVERY_DAYS, DEFAULT_KEEP_DAYS, DEFAULT_NOTES_ID_LIMIT, DEFAULT_PUBLISH_EXPIRES_DAYS, parseDays, type PublishSettings } from './options.ts';
export { parsePublicUrl } from './torrent.ts';
export type { ReleaseNotes } from './notes.ts';

export interface PublishOptions {
  feedsDir: string;
  keyPaths: readonly string[];
  mirror: string;
  roots?: readonly string[];
  settings: PublishSettings;
  /** With --torrent: the directory URL the mirror is served at (the web seed), and trackers to name. */
  torrent?: { publicUrl: string; trackers?: string[] };
  /** --version; default: today (UTC) by `now`, or the next `.N`. */
  version?: string;
  /** The clock: the version, the roll-up, pruning, the lock. */
  now?: Date;
  /** STELLA_AIRGAP: a publish refuses to run air-gapped. */
  airgap: boolean;
  password?: string;
  sourceDateEpoch?: string;
  idLimit?: number;
  tmpDir?: string;
  onWarning?: (w: FeedWarning) => void;
}

export interface PublishedKit {
  entry: MirrorIndexEntry;
  path: string;
  notes: { md: string; json: string };
  torrent: string | null;
}

export interface PublishResult {
  status: 'published' | 'unchanged';
  mirror: string;
  version: string;
  previous: string | null;
  reasons: string[];
  kits: PublishedKit[];
  changes: CatalogChanges | null;
  /** Kit files pruned from the index and the directory. */
  pruned: string[];
  index: string;
  /** A stale lock taken over: whose. */
  tookOverLock: string | null;
}

export function airgapRefusal(): OukError {
  return new OukError(
    'AIRGAP_VIOLATION',
    'stella publish builds kits from synced upstream feeds: it belongs on the connected (publishing) side and refuses to run with STELLA_AIRGAP=true — run it on the publisher host, then carry the kit across',
  );
}

async function moveAll(fromDir: string, toDir: string, files: string[]): Promise<void> {
  for (const f of files) {
    await rename(path.join(fromDir, f), path.join(toDir, f)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}

async function writeWhole(file: string, text: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

export async function publish(o: PublishOptions): Promise<PublishResult> {
  if (o.airgap) throw airgapRefusal();
  const settings = checkSettings(o.settings);
  if (o.keyPaths.length === 0) throw new OukError('USAGE', 'give at least one --key: the kit keys sign every kit');
  // A wrong key or feeds directory fails here, before the mirror is touched.
  await loadKitSigners(o.keyPaths, o.password);
  if (!(await stat(o.feedsDir).then((st) => st.isDirectory(), () => false))) {
    throw new OukError('INPUT_NOT_FOUND', `--feeds ${o.feedsDir}: no such directory — give the directory \`stella feeds sync --out\` fills`);
  }
  const now = o.now ?? new Date();
  const idLimit = o.idLimit ?? DEFAULT_NOTES_ID_LIMIT;
  const paths = mirrorPaths(o.mirror);
  await mkdir(paths.bases, { recursive: true });
  await mkdir(paths.catalogs, { recursive: true });
  const lock = await acquirePublishLock(paths.state, now);
  try {
    // Staging directories a killed publish left (we hold the lock: nobody else writes them).
    for (const n of await readdir(paths.state)) if (n.startsWith('staging-')) await rm(path.join(paths.state, n), { recursive: true, force: true });
    const index = await readMirrorIndex(paths.root);
    const plan = planPublish({ index, fulls: await heldFulls(paths, index), now, fullEveryDays: settings.fullEveryDays, version: o.version });
    const staging = path.join(paths.state, `staging-${randomBytes(6).toString('hex')}`);
    await mkdir(staging);
    try {
      const built = await buildBundle({
        feedsDir: o.feedsDir,
        keyPath: o.keyPaths,
        roots: o.roots,
        now,
        out: path.join(staging, kitFileName(plan.version, plan.base ? 'delta' : 'full')),
        fullOut: plan.base ? path.join(staging, kitFileName(plan.version, 'full')) : undefined,
        base: plan.base?.path,
        version: plan.version,
        expiresDays: settings.expiresDays,
        password: o.password,
        sourceDateEpoch: o.sourceDateEpoch,
        tmpDir: o.tmpDir,
        onWarning: o.onWarning,
      });
      const full: WrittenBundle = built.full ?? built;
      const prev = plan.previous;
      if (prev && parseVersion(prev.version).date === parseVersion(plan.version).date && prev.dbDigest === full.manifest.db.digest) {
        return {
          status: 'unchanged',
          mirror: paths.root,
          version: prev.version,
          previous: prev.version,
          reasons: [`the mirror already has ${prev.version} today with the same DB (${full.manifest.db.digest.slice(0, 12)}…): nothing published`],
          kits: [],
          changes: null,
          pruned: [],
          index: path.join(paths.root, MIRROR_INDEX_FILE),
          tookOverLock: lock.tookOver,
        };
      }

      // What changed since the mirror's newest kit: its catalog, or one read from its full kit.
      const catalog = path.join(staging, 'catalog.tsv');
      await writeCatalog(full.out, catalog);
      let prevCatalog: string | null = null;
      if (prev) {
        const kept = path.join(paths.catalogs, `${prev.version}.tsv`);
        if (await stat(kept).then(() => true, () => false)) prevCatalog = kept;
        else if (plan.base) await writeCatalog(plan.base.path, (prevCatalog = path.join(staging, 'previous.tsv')));
      }
      const changes = await diffCatalogs(prevCatalog, catalog, idLimit);
      // Counted against nothing when the previous kit's catalog is gone (and no full DB of it is held).
      const countedAgainst = prevCatalog ? prev!.version : null;
      if (prev && !prevCatalog) plan.reasons.push(`the catalog of ${prev.version} is gone: the release notes count every advisory as added`);

      const published: WrittenBundle[] = plan.base ? (plan.publishFull ? [built, full] : [built]) : [full];
      const kits: PublishedKit[] = [];
      for (const w of published) {
        const file = path.basename(w.out);
        const entry = indexEntryFor(file, w.manifest, w.sha256, w.size);
        let torrent: string | null = null;
        if (o.torrent) {
          torrent = torrentFile(file);
          await writeFile(path.join(staging, torrent), await writeTorrentBytes(w.out, { file, publicUrl: o.torrent.publicUrl, created: new Date(w.manifest.created), trackers: o.torrent.trackers }));
        }
        const notes: ReleaseNotes = notesFor({ entry, feeds: w.manifest.feeds, advisories: w.manifest.db.advisories, previous: countedAgainst, changes, idLimit, torrent });
        const nf = notesFiles(file);
        await writeFile(path.join(staging, nf.json), `${JSON.stringify(notes, null, 2)}\n`);
        await writeFile(path.join(staging, nf.md), notesMarkdown(notes));
        kits.push({ entry, path: path.join(paths.root, file), notes: { md: path.join(paths.root, nf.md), json: path.join(paths.root, nf.json) }, torrent: torrent && path.join(paths.root, torrent) });
      }

      // Into place: each kit's files (the tarball last), the private base, the catalog; then the index.
      for (const k of kits) await moveAll(staging, paths.root, kitFiles(k.entry.file));
      const oldBases = (await readdir(paths.bases)).filter((n) => n !== path.basename(full.out));
      if (!plan.publishFull) await rename(full.out, path.join(paths.bases, path.basename(full.out)));
      await rename(catalog, path.join(paths.catalogs, `${plan.version}.tsv`));

      const next = upsertEntries(index, kits.map((k) => k.entry));
      const prune = planPrune(next.kits, now, settings.keepDays);
      await writeWhole(path.join(paths.root, MIRROR_INDEX_FILE), serializeMirrorIndex({ ...next, kits: prune.keep }));

      // Only now, with the index no longer listing them: what pruning dropped, old bases and catalogs.
      for (const d of prune.drop) for (const f of kitFiles(d.file)) await rm(path.join(paths.root, f), { force: true });
      for (const b of oldBases) await rm(path.join(paths.bases, b), { force: true });
      for (const c of await readdir(paths.catalogs)) if (c !== `${plan.version}.tsv`) await rm(path.join(paths.catalogs, c), { force: true });
      return {
        status: 'published',
        mirror: paths.root,
        version: plan.version,
        previous: prev?.version ?? null,
        reasons: plan.reasons,
        kits,
        changes,
        pruned: prune.drop.map((d) => d.file),
        index: path.join(paths.root, MIRROR_INDEX_FILE),
        tookOverLock: lock.tookOver,
      };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } finally {
    await lock.release();
  }
}
