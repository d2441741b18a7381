/**
 * The mirror directory `stella publish` writes, which any HTTP server (or a
 * USB disk) serves as it is:
 *
 *   index.json                            the table of contents (bundle/mirror-index.ts), written last
 *   stella-ouk-V.tar.gz                   a delta (on the newest full DB before it)
 *   stella-ouk-V-full.tar.gz              a full kit (the first, and each roll-up)
 *   KIT.sig, .sigstore.json, .sigs.json, .intoto.json   signatures and attestation (the builder's)
 *   KIT.torrent                           with --torrent: the kit with the mirror as web seed
 *   stella-ouk-V[-full].md / .json        release notes
 *   .publish/lock                         one publish at a time (lock.ts)
 *   .publish/bases/stella-ouk-V-full.tar.gz   the full kit of the newest night that published
 *                                         only a delta: the base of the next delta (not listed)
 *   .publish/catalogs/V.tsv               the newest version's advisory catalog (catalog.ts)
 */
import path from 'node:path';

export const STATE_DIR = '.publish';

export function kitFileName(version: string, kind: 'full' | 'delta'): string {
  return kind === 'full' ? `stella-ouk-${version}-full.tar.gz` : `stella-ouk-${version}.tar.gz`;
}

const stem = (kitFile: string): string => kitFile.replace(/\.tar\.gz$/, '');

export const notesFiles = (kitFile: string): { md: string; json: string } => ({ md: `${stem(kitFile)}.md`, json: `${stem(kitFile)}.json` });
export const torrentFile = (kitFile: string): string => `${kitFile}.torrent`;

/** Every file that belongs to a kit, the kit last (what pruning removes). */
export function kitFiles(kitFile: string): string[] {
  const n = notesFiles(kitFile);
  return [
    `${kitFile}.sig`,
    `${kitFile}.sigstore.json`,
    `${kitFile}.sigs.json`,
    `${kitFile}.intoto.json`,
    torrentFile(kitFile),
    n.md,
    n.json,
    kitFile,
  ];
}

export interface MirrorPaths {
  root: string;
  state: string;
  bases: string;
  catalogs: string;
}

export function mirrorPaths(mirror: string): MirrorPaths {
  const root = path.resolve(mirror);
  const state = path.join(root, STATE_DIR);
  return { root, state, bases: path.join(state, 'bases'), catalogs: path.join(state, 'catalogs') };
}
