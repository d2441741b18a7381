/**
 * The base of a delta (`--base PREV.tar.gz`): the FULL bundle whose DB the delta
 * applies to. It is read once, as a stream, with bundle/reader.ts (manifest
 * first, every member's size and sha256 checked against it) and reduced to what
 * a delta needs:
 *
 *   - an index file of `advisory_id<TAB>content_hash` lines, in the order of
 *     db/advisories.tsv (strictly increasing advisory_id, bytewise);
 *   - its other table members (aliases, affected, cpes), copied beside the
 *     index file, so the delta carries per table only the advisories whose
 *     rows in it changed;
 *   - the manifest (version, db.digest) and its images' index digests by name.
 *
 * It is refused, before the long part of the build, when it is a delta (a delta
 * does not hold the whole DB, so unchanged advisories could not be told from
 * removed ones), when the new version is not after it, when another stella-ouk
 * version built it (rows derived from the same advisory may differ between
 * versions, so comparing content_hash could miss a change), or when its
 * db.digest does not name its own table members.
 *
 * The signature of the base is not checked: the base is the builder's own
 * previous output, read from the build host; its manifest and checksums are.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extraTableByMember, type ExtraTableName } from '../bundle/extra-tables.ts';
import type { Manifest, ManifestMember } from '../bundle/manifest.ts';
import { contentPath, contentSha256, decodeMember } from '../bundle/member-codec.ts';
import { readBundle } from '../bundle/reader.ts';
import { TABLES, tableByMember, type TableName } from '../bundle/tables.ts';
import { compareVersions, parseVersion } from '../bundle/version.ts';
import { isOukError, OukError } from '../lib/errors.ts';
import { dbDigest, digestMembers } from './db.ts';
import { cellAt, cellCompare, firstCell, readLines } from './lines.ts';

export interface DeltaBase {
  file: string;
  manifest: Manifest;
  /** `advisory_id<TAB>content_hash` lines, sorted by advisory_id. */
  indexFile: string;
  advisories: number;
  /** image name -> `<index digest> <tag>` of the base's images (manifest images[]). */
  images: Map<string, string>;
  /** The base's extra-table members (bundle/extra-tables.ts), copied beside the index file. */
  extras: Map<ExtraTableName, string>;
  /** The base's table members but advisories (bundle/tables.ts), copied beside the index file. */
  tables: Map<TableName, string>;
}

export interface ReadBaseOptions {
  /** The new bundle's version: must be after the base's. */
  version: string;
  /** This builder's generator (`stella-ouk <version>`): must equal the base's. */
  generator: string;
  /** Where the index file goes (a scratch directory the caller removes). */
  indexFile: string;
}

const ADVISORIES = TABLES.find((t) => t.name === 'advisories')!;
const CONTENT_HASH_INDEX = ADVISORIES.columns.findIndex((c) => c.name === 'content_hash');
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The smallest version after `v` on the same day: `2026-11-28` -> `2026-11-28.1`. */
export function nextVersion(v: string): string {
  const p = parseVersion(v);
  return `${p.date}.${p.serial + 1}`;
}

export function checkBaseManifest(file: string, m: Manifest, opts: Pick<ReadBaseOptions, 'version' | 'generator'>): void {
  if (m.kind !== 'full') {
    throw new OukError(
      'USAGE',
      `--base ${file} is a delta bundle (${m.bundleVersion}, against ${m.base?.version ?? '?'}): a delta is built against the FULL bundle of the DB it applies to — ` +
        `pass the full bundle of version ${m.bundleVersion} (\`--full-out\` writes it beside each delta) or a full bundle built from the previous feeds`,
    );
  }
  if (compareVersions(opts.version, m.bundleVersion) <= 0) {
    throw new OukError(
      'USAGE',
      `--version ${opts.version} is not after the base's version ${m.bundleVersion}: a delta must be newer than the bundle it applies to — ` +
        `give a later --version (e.g. ${nextVersion(m.bundleVersion)})`,
    );
  }
  if (m.generator !== opts.generator) {
    throw new OukError(
      'USAGE',
      `--base ${file} was built by ${m.generator}, this is ${opts.generator}: rows derived from the same advisory may differ between versions, so a delta could miss changes — ` +
        'build a full bundle (without --base) with this version and use it as the next base',
    );
  }
  for (const t of TABLES) {
    if (!m.members.some((x) => contentPath(x) === t.member && x.role === 'db')) {
      throw new OukError('MANIFEST_INVALID', `--base ${file}: its manifest does not list ${t.member}: the bundle is incomplete — rebuild it`);
    }
  }
  // db.digest covers the members' content (a compressed member's `content`), by their content paths
  const contents = m.members.filter((x) => x.role === 'db').map((x) => ({ path: contentPath(x), sha256: contentSha256(x) }));
  if (dbDigest(digestMembers(contents)) !== m.db.digest) {
    throw new OukError('MANIFEST_INVALID', `--base ${file}: its db.digest does not match its table members: the manifest is inconsistent — rebuild the base`);
  }
}

export async function readBase(file: string, opts: ReadBaseOptions): Promise<DeltaBase> {
  const s = await stat(file).catch(() => null);
  if (!s?.isFile()) throw new OukError('INPUT_NOT_FOUND', `--base ${file}: no such file (or not a regular file): pass the previous full bundle (.tar.gz)`);

  let advisories = 0;
  const extras = new Map<ExtraTableName, string>();
  const tables = new Map<TableName, string>();
  const onMember = async (member: ManifestMember, stream: Readable): Promise<void> => {
    const extra = member.role === 'db' ? extraTableByMember(contentPath(member)) : undefined;
    if (extra) {
      const copy = path.join(path.dirname(opts.indexFile), `base-${extra.name}.tsv`);
      await pipeline(decodeMember(member, stream), createWriteStream(copy, { flags: 'wx' }));
      extras.set(extra.name, copy);
      return;
    }
    const table = member.role === 'db' ? tableByMember(contentPath(member)) : undefined;
    if (table && table !== ADVISORIES) {
      const copy = path.join(path.dirname(opts.indexFile), `base-${table.name}.tsv`);
      await pipeline(decodeMember(member, stream), createWriteStream(copy, { flags: 'wx' }));
      tables.set(table.name, copy);
      return;
    }
    if (contentPath(member) !== ADVISORIES.member) {
      for await (const _ of stream) {
        /* drained: the reader checks its sha256 */
      }
      return;
    }
    // The reader checks the stored bytes' sha256; the index is built from the content.
    advisories = await writeIndex(file, decodeMember(member, stream), opts.indexFile);
  };

  let manifest: Manifest;
  try {
    const read = await readBundle(createReadStream(file, { highWaterMark: 1024 * 1024 }), {
      onManifest: (m) => checkBaseManifest(file, m, opts),
      onMember,
    });
    manifest = read.manifest;
  } catch (e) {
    if (isOukError(e) && !e.message.startsWith('--')) throw new OukError(e.code, `--base ${file}: ${e.message}`, { cause: e });
    throw e;
  }
  if (advisories !== manifest.db.advisories) {
    throw new OukError('MANIFEST_INVALID', `--base ${file}: ${ADVISORIES.member} holds ${advisories} advisories, its manifest says ${manifest.db.advisories}: rebuild the base`);
  }
  const images = new Map((manifest.images ?? []).map((i) => [i.name, `${i.indexDigest} ${i.tag}`]));
  return { file, manifest, indexFile: opts.indexFile, advisories, images, extras, tables };
}

async function writeIndex(file: string, stream: Readable, indexFile: string): Promise<number> {
  const out = createWriteStream(indexFile, { flags: 'wx' });
  let prev: string | null = null;
  let n = 0;
  try {
    for await (const line of readLines(stream)) {
      const id = firstCell(line);
      const hash = cellAt(line, CONTENT_HASH_INDEX);
      if (hash === undefined || !SHA256_HEX.test(hash)) {
        throw new OukError('MANIFEST_INVALID', `--base ${file}: ${ADVISORIES.member} row ${n + 1} (${id}) has no content_hash: this is not a bundle of this format — rebuild the base`);
      }
      if (prev !== null && cellCompare(prev, id) >= 0) {
        throw new OukError('MANIFEST_INVALID', `--base ${file}: ${ADVISORIES.member} is not sorted by advisory_id at ${id}: rebuild the base`);
      }
      prev = id;
      n++;
      if (!out.write(`${id}\t${hash}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    return n;
  } catch (e) {
    out.destroy();
    throw e;
  }
}
