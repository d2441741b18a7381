/**
 * `stella ouk build`: feeds in, one deterministic signed bundle out.
 *
 *   --base PREV ──► delta-base.ts (checked, reduced to (id, content_hash) and its other tables' rows)
 *   feeds ──► buildDb (normalise, spool, GNU sort, merge, rows) ──► full db/*.tsv
 *   full: db/*.tsv as they are
 *   delta: delta.ts merge-joins them with the base ──► changed rows + db/removed.tsv + db/cleared.tsv
 *   --image layouts ──► blobs hashed (a delta keeps only images whose index differs from the base's)
 *   assemble.ts: members' digests ──► sbom.spdx.json ──► manifest.json
 *   --root NEXT.json ──► roots.ts (a valid chain the kit's keys meet) ──► trust/root.<N>.json members
 *   output.ts: writeBundle ──► OUT.partial ──► sign (every --key) ──► attest (provenance.ts) ──► rename
 *
 * Nothing is written at OUT (or --full-out) unless the whole build succeeds:
 * the tarballs, their signature files and attestations are made under temporary names and
 * renamed at the end, and the scratch directory is removed whatever happens.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isVersion, todayVersion, versionEpoch } from '../bundle/version.ts';
import { OukError } from '../lib/errors.ts';
import { DEFAULT_ZSTD_LEVEL } from '../bundle/member-codec.ts';
import { loadKitSigners } from '../signing/index.ts';
import type { Pkcs11Defaults } from '../signing/suites/index.ts';
import { assembleBundle, generatorName } from './assemble.ts';
import { buildDb } from './db.ts';
import { deltaDb } from './delta.ts';
import { deltaExtras } from './delta-extra.ts';
import { readBase } from './delta-base.ts';
import { type FeedWarning, formatWarning } from './feeds/index.ts';
import { prepareImages } from './images.ts';
import { compressMember, type WrittenMember } from './member-file.ts';
import { commitBundle, discardBundle, type KitSigning, type StagedBundle, stageBundle, type WrittenBundle } from './output.ts';
import { feedInputs } from './provenance.ts';
import { readCarriedRoots } from './roots.ts';

export { generatorName } from './assemble.ts';
export type { WrittenBundle } from './output.ts';

export const DEFAULT_EXPIRES_DAYS = 31;

export interface BuildOptions {
  feedsDir: string;
  /** The kit key(s): each signs the tarball (FILE.sigs.json; the first also FILE.sig) and the attestation. */
  keyPath: string | readonly string[];
  /** Root files to carry as trust/root.<N>.json (consecutive versions; roots.ts). */
  roots?: readonly string[];
  /** The clock carried roots' expiry is checked on; default: now. */
  now?: Date;
  out: string;
  /** Bundle version (date tag); default: today's UTC date. */
  version?: string;
  images?: string[];
  expiresDays?: number;
  /** zstd level of the DB members (1-19, default 12: bundle/member-codec.ts). */
  compressionLevel?: number;
  /**
   * The previous FULL bundle: build a delta against it (kind `delta`, only the
   * advisories added, changed or removed since, only new or changed images).
   */
  base?: string;
  /** With `base`: also write the full bundle of the same version here (the base of the next delta). */
  fullOut?: string;
  /** Signing key password (the CLI passes STELLA_KEY_PASSWORD). */
  password?: string;
  /** For `pkcs11:` keys: STELLA_PKCS11_MODULE and STELLA_PKCS11_PIN. */
  pkcs11?: Pkcs11Defaults;
  /** SOURCE_DATE_EPOCH (seconds): overrides `created`. */
  sourceDateEpoch?: string;
  /** Parent of the scratch directory; default os.tmpdir(). */
  tmpDir?: string;
  /** Malformed-record reports; default: one line each on stderr. */
  onWarning?: (w: FeedWarning) => void;
}

export interface BuildResult extends WrittenBundle {
  /** With `fullOut`: the full bundle of the same version, yielding the same DB. */
  full?: WrittenBundle;
}

export function createdTime(version: string, sourceDateEpoch: string | undefined): Date {
  if (sourceDateEpoch === undefined || sourceDateEpoch === '') return versionEpoch(version);
  if (!/^\d{1,12}$/.test(sourceDateEpoch)) {
    throw new OukError('USAGE', `SOURCE_DATE_EPOCH=${sourceDateEpoch} is not a number of seconds since 1970: unset it or give an integer`);
  }
  return new Date(Number(sourceDateEpoch) * 1000);
}

export async function buildBundle(opts: BuildOptions): Promise<BuildResult> {
  const version = opts.version ?? todayVersion();
  if (!isVersion(version)) {
    throw new OukError('USAGE', `--version ${version} is not a bundle version: give a real date tag, YYYY-MM-DD or YYYY-MM-DD.N (e.g. 2026-11-28.2)`);
  }
  const expiresDays = opts.expiresDays ?? DEFAULT_EXPIRES_DAYS;
  if (!Number.isInteger(expiresDays) || expiresDays < 1 || expiresDays > 3650) {
    throw new OukError('USAGE', `--expires-days ${expiresDays} is not a whole number of days between 1 and 3650`);
  }
  const out = path.resolve(opts.out);
  const fullOut = opts.fullOut === undefined ? undefined : path.resolve(opts.fullOut);
  if (fullOut !== undefined && opts.base === undefined) {
    throw new OukError('USAGE', '--full-out goes with --base: it writes the full bundle beside a delta; without --base, --out is the full bundle');
  }
  if (fullOut === out) throw new OukError('USAGE', `--full-out and --out are the same file ${out}: give the full bundle its own name`);
  const created = createdTime(version, opts.sourceDateEpoch);
  const expires = new Date(created.getTime() + expiresDays * 86_400_000);
  // Fail on a bad key or root before the long part.
  const signers = await loadKitSigners(typeof opts.keyPath === 'string' ? [opts.keyPath] : opts.keyPath, opts.password, opts.pkcs11);
  const roots = await readCarriedRoots(opts.roots ?? [], signers.map((s) => s.keyid), opts.now ?? new Date());
  const onWarning = opts.onWarning ?? ((w: FeedWarning) => process.stderr.write(`${formatWarning(w)}\n`));

  const outputs = fullOut === undefined ? [out] : [out, fullOut];
  for (const o of outputs) await mkdir(path.dirname(o), { recursive: true });
  const work = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'stella-ouk-build-'));
  try {
    // An OCI archive is unpacked into the work directory, which the image's members are read from.
    const images = await prepareImages(opts.images ?? [], path.join(work, 'images'));
    const base =
      opts.base === undefined
        ? undefined
        : await readBase(path.resolve(opts.base), { version, generator: generatorName(), indexFile: path.join(work, 'base-index.tsv') });
    const dbDir = path.join(work, 'db');
    await mkdir(dbDir);
    const db = await buildDb({ feedsDir: opts.feedsDir, workDir: dbDir, onWarning });
    const common = { version, created, expires, feeds: db.feeds, roots };
    const signing: KitSigning = {
      signers,
      inputs: await feedInputs(opts.feedsDir, db.feeds.map((f) => f.name)),
      params: {
        expiresDays,
        compressionLevel: opts.compressionLevel ?? DEFAULT_ZSTD_LEVEL,
        images: images.map((i) => `${i.image.name}:${i.image.tag}`),
        roots: roots.map((r) => r.version),
      },
    };
    // Each DB member stored zstd-compressed (the DB digest stays the content's).
    let fullTables: typeof db.members | null = null;
    let fullExtras: typeof db.extras | null = null;
    const compressedTables = async () => (fullTables ??= await compressAll(db.members, opts.compressionLevel));
    const compressedExtras = async () => (fullExtras ??= await compressAll(db.extras, opts.compressionLevel));
    const full = async () =>
      assembleBundle({
        ...common,
        kind: 'full',
        db: { digest: db.digest, advisories: db.advisories },
        tables: await compressedTables(),
        extras: (await compressedExtras()).map((m) => ({ member: m, role: 'db' as const })),
        images,
      });

    const staged: StagedBundle[] = [];
    if (!base) {
      staged.push(await stageBundle(out, await full(), signing));
    } else {
      const delta = await deltaDb(base, db, work);
      const deltaBundle = assembleBundle({
        ...common,
        kind: 'delta',
        base: { version: base.manifest.bundleVersion, dbDigest: base.manifest.db.digest },
        db: { digest: db.digest, advisories: db.advisories, changes: delta.changes },
        tables: await compressAll(delta.members, opts.compressionLevel),
        removed: await compressMember(delta.removed, opts.compressionLevel),
        cleared: await compressMember(delta.cleared, opts.compressionLevel),
        extras: await Promise.all((await deltaExtras(base, db, work)).map(async (x) => ({ ...x, member: await compressMember(x.member, opts.compressionLevel) }))),
        // Only new or changed images: one the base carries under the same name with the same index (and tag) stays out.
        images: images.filter((i) => base.images.get(i.image.name) !== `${i.image.indexDigest} ${i.image.tag}`),
      });
      staged.push(await stageBundle(out, deltaBundle, signing));
      if (fullOut !== undefined) staged.push(await stageBundle(fullOut, await full(), signing));
    }
    const [main, shadow] = await commitAll(staged);
    return shadow ? { ...main!, full: shadow } : main!;
  } finally {
    await rm(work, { recursive: true, force: true });
    await Promise.all(outputs.map(discardBundle));
  }
}

/** Compresses members one after another (each zstd already uses every core). */
async function compressAll<T extends WrittenMember>(members: T[], level?: number): Promise<T[]> {
  const out: T[] = [];
  for (const m of members) out.push({ ...m, ...(await compressMember(m, level)) });
  return out;
}

async function commitAll(staged: StagedBundle[]): Promise<WrittenBundle[]> {
  const done: WrittenBundle[] = [];
  for (const s of staged) done.push(await commitBundle(s));
  return done;
}
