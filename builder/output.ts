/**
 * Writing a signed bundle without ever leaving a partial one at its final name:
 * the tarball, its signature files and its attestation are written as
 * `OUT.partial*`, and only `commitBundle` renames them into place (signature
 * files and attestation first, the tarball last). A build with two outputs (a
 * delta and its --full-out) stages both before committing either;
 * `discardBundle` removes what a failure left.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../bundle/manifest.ts';
import type { TableName } from '../bundle/tables.ts';
import { writeBundle } from '../bundle/writer.ts';
import { OukError } from '../lib/errors.ts';
import { intotoPathFor, writeAttestationFile } from '../signing/attestation/index.ts';
import { type KitSigner, sigPathFor, sigsPathFor, sigstorePathFor, writeKitSignatureFiles } from '../signing/index.ts';
import type { AssembledBundle } from './assemble.ts';
import { generatorName } from './assemble.ts';
import { type FeedInput, type KitBuildParameters, kitStatement } from './provenance.ts';

export interface WrittenBundle {
  out: string;
  sigPath: string;
  /** Null when the first key is not ECDSA P-256 (no Sigstore bundle: signing/write.ts). */
  sigstorePath: string | null;
  /** FILE.sigs.json: every kit key's signature. */
  sigsPath: string;
  /** FILE.intoto.json: the release attestation. */
  attestationPath: string;
  /** Key ids that signed the tarball and the attestation, in --key order. */
  keyids: string[];
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

/** What signs a kit and what its attestation says beyond the manifest. */
export interface KitSigning {
  signers: KitSigner[];
  inputs: FeedInput[];
  params: KitBuildParameters;
}

export const partialPathFor = (out: string): string => `${out}.partial`;

/** The files beside a tarball, each renamed into place before the tarball itself. */
const besidePaths = (file: string): string[] => [sigPathFor(file), sigstorePathFor(file), sigsPathFor(file), intotoPathFor(file)];

export async function stageBundle(out: string, bundle: AssembledBundle, signing: KitSigning): Promise<StagedBundle> {
  const partial = partialPathFor(out);
  // The DB members are zstd-compressed already: the outer gzip only wraps them.
  const compressed = bundle.manifest.members.some((m) => m.compression === 'zstd');
  const written = await writeBundle(createWriteStream(partial), bundle.manifest, bundle.sources, compressed ? 1 : 6);
  const signed = await writeKitSignatureFiles(partial, signing.signers);
  if (signed.sha256 !== written.sha256) {
    throw new OukError('INTERNAL', `${partial} changed between writing (${written.sha256}) and signing (${signed.sha256}): is another process writing to it?`);
  }
  const statement = kitStatement({ fileName: path.basename(out), sha256: written.sha256, manifest: bundle.manifest, inputs: signing.inputs, params: signing.params, builderVersion: generatorName().replace(/^stella-ouk /, '') });
  await writeAttestationFile(intotoPathFor(partial), statement, signing.signers);
  return {
    partial,
    final: {
      out,
      sigPath: sigPathFor(out),
      sigstorePath: signed.sigstorePath === null ? null : sigstorePathFor(out),
      sigsPath: sigsPathFor(out),
      attestationPath: intotoPathFor(out),
      keyids: signed.keyids,
      sha256: written.sha256,
      size: written.size,
      manifest: bundle.manifest,
      rows: bundle.rows,
    },
  };
}

export async function commitBundle(s: StagedBundle): Promise<WrittenBundle> {
  const from = besidePaths(s.partial);
  const to = besidePaths(s.final.out);
  for (let i = 0; i < from.length; i++) {
    if (from[i] === sigstorePathFor(s.partial) && s.final.sigstorePath === null) await rm(to[i]!, { force: true });
    else await rename(from[i]!, to[i]!);
  }
  await rename(s.partial, s.final.out);
  return s.final;
}

/** Removes the temporary files of `out` (nothing at its final name). */
export async function discardBundle(out: string): Promise<void> {
  const partial = partialPathFor(out);
  await Promise.all([partial, ...besidePaths(partial)].map((f) => rm(f, { force: true })));
}
