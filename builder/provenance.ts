/**
 * The release attestation's content for one kit (signing/attestation/ writes
 * and signs it): the tarball as subject, the build's parameters, and one
 * resolved dependency per feed the kit was built from — the feed's upstream,
 * its snapshot time and record count (from the manifest) and a sha256 over
 * its input files (the files the builder reads), computed by `feedInputs` in
 * the order FEED_DIGEST_RULE states (docs/trust.md gives a shell recipe).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { serializeManifest, type Manifest } from '../bundle/manifest.ts';
import { type KitProvenanceInput, kitProvenanceStatement, type Statement } from '../signing/attestation/index.ts';
import { feedFileFilter, walkFiles } from './feeds/walk.ts';

/** Where each feed's records come from: its upstream service (the layout `--feeds DIR` holds). */
export const FEED_UPSTREAMS: Readonly<Record<string, string>> = {
  nvd: 'https://services.nvd.nist.gov/rest/json/cves/2.0',
  osv: 'https://osv-vulnerabilities.storage.googleapis.com/',
  ghsa: 'https://github.com/github/advisory-database',
  kev: 'https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json',
  epss: 'https://api.first.org/data/v1/epss',
};

export interface FeedInput {
  name: string;
  files: number;
  /** FEED_DIGEST_RULE over its files. */
  sha256: string;
}

/** Files above this are hashed as a stream; the many small records are read whole. */
const WHOLE_FILE_BYTES = 8 * 1024 * 1024;
/** Files hashed at once: thousands of small records are bound by open/read latency, not by SHA-256. */
const HASH_CONCURRENCY = 8;

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  if ((await stat(file)).size <= WHOLE_FILE_BYTES) return h.update(await readFile(file)).digest('hex');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** sha256 of each file, in the order given, HASH_CONCURRENCY at a time. */
async function fileDigests(files: string[]): Promise<string[]> {
  const out = new Array<string>(files.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      out[i] = await fileSha256(files[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, files.length) }, worker));
  return out;
}

/** The input digest of each named feed directory under `feedsDir` (a missing one: no files, the digest of nothing). */
export async function feedInputs(feedsDir: string, names: readonly string[]): Promise<FeedInput[]> {
  const out: FeedInput[] = [];
  for (const name of names) {
    const dir = path.join(path.resolve(feedsDir), name);
    const h = createHash('sha256');
    const paths: string[] = [];
    if ((await stat(dir).catch(() => null))?.isDirectory()) {
      for await (const file of walkFiles(dir, feedFileFilter(name))) paths.push(path.relative(dir, file).split(path.sep).join('/'));
    }
    paths.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const digests = await fileDigests(paths.map((rel) => path.join(dir, rel)));
    paths.forEach((rel, i) => h.update(`${rel} ${digests[i]}\n`));
    out.push({ name, files: paths.length, sha256: h.digest('hex') });
  }
  return out;
}

export interface KitBuildParameters {
  expiresDays: number;
  compressionLevel: number;
  /** `name:tag` of each image carried. */
  images: string[];
  /** Root versions the kit carries (trust/root.<N>.json). */
  roots: number[];
}

/** The statement for the tarball `fileName` (sha256 hex) whose manifest is `manifest`. */
export function kitStatement(o: { fileName: string; sha256: string; manifest: Manifest; inputs: FeedInput[]; params: KitBuildParameters; builderVersion: string }): Statement {
  const m = o.manifest;
  const input: KitProvenanceInput = {
    fileName: o.fileName,
    sha256: o.sha256,
    builderVersion: o.builderVersion,
    externalParameters: {
      version: m.bundleVersion,
      kind: m.kind,
      ...(m.base ? { base: { version: m.base.version, dbDigest: m.base.dbDigest } } : {}),
      expiresDays: o.params.expiresDays,
      images: o.params.images,
      roots: o.params.roots,
    },
    internalParameters: { formatVersion: m.formatVersion, compressionLevel: o.params.compressionLevel, created: m.created, expires: m.expires },
    feeds: m.feeds.map((f) => {
      const i = o.inputs.find((x) => x.name === f.name);
      return { name: f.name, uri: FEED_UPSTREAMS[f.name] ?? null, sha256: i?.sha256 ?? createHash('sha256').digest('hex'), files: i?.files ?? 0, snapshot: f.snapshot, records: f.records, skipped: f.skipped };
    }),
    byproducts: [
      { name: 'manifest.json', digest: { sha256: createHash('sha256').update(serializeManifest(m)).digest('hex') } },
      { name: 'db', digest: { sha256: m.db.digest }, annotations: { advisories: m.db.advisories } },
    ],
  };
  return kitProvenanceStatement(input);
}
