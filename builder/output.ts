/**
 * Writing a signed bundle without ever leaving a partial one at its final name:
 * the tarball and its signature files are written as `OUT.partial*`, and only
 * `commitBundle` renames them into place (signature files first, the tarball
 * last). A build with two outputs (a delta and its --full-out) stages both
 * before committing either; `discardBundle` removes what a failure left.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Manifest } from '../bundle/manifest.ts';
import type { TableName } from '../bundle/tables.ts';
import { writeBundle } from '../bundle/writer.ts';
import { OukError } from '../lib/errors.ts';
import { sigPathFor, sigstorePathFor, writeSignatureFiles } from '../signing/index.ts';
import type { AssembledBundle } from './assemble.ts';

export interface WrittenBundle {
  out: string;
  sigPath: string;
  sigstorePath: string;
  /** sha256 hex of the tarball, and its size. */
  sha256: string;
  size: number;
  manifest: Manifest;
  /** Data rows per table member in this bundle. */
  rows: Record<TableName, number>;
}

export interface StagedBundle {
  partial: string;
  final: WrittenBundle;
}

export const partialPathFor = (out: string): string => `${out}.partial`;

export async function stageBundle(out: string, bundle: AssembledBundle, keyPath: string, password?: string): Promise<StagedBundle> {
  const partial = partialPathFor(out);
  // The DB members are zstd-compressed already: the outer gzip only wraps them.
  const compressed = bundle.manifest.members.some((m) => m.compression === 'zstd');
  const written = await writeBundle(createWriteStream(partial), bundle.manifest, bundle.sources, compressed ? 1 : 6);
  const signed = await writeSignatureFiles(partial, keyPath, password);
  if (signed.sha256 !== written.sha256) {
    throw new OukError('INTERNAL', `${partial} changed between writing (${written.sha256}) and signing (${signed.sha256}): is another process writing to it?`);
  }
  return {
    partial,
    final: { out, sigPath: sigPathFor(out), sigstorePath: sigstorePathFor(out), sha256: written.sha256, size: written.size, manifest: bundle.manifest, rows: bundle.rows },
  };
}

export async function commitBundle(s: StagedBundle): Promise<WrittenBundle> {
  await rename(sigPathFor(s.partial), s.final.sigPath);
  await rename(sigstorePathFor(s.partial), s.final.sigstorePath);
  await rename(s.partial, s.final.out);
  return s.final;
}

/** Removes the temporary files of `out` (nothing at its final name). */
export async function discardBundle(out: string): Promise<void> {
  const partial = partialPathFor(out);
  await Promise.all([partial, sigPathFor(partial), sigstorePathFor(partial)].map((f) => rm(f, { force: true })));
}
