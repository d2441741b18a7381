/**
 * The final file system of an image, as far as cataloguing needs it: the
 * files a cataloguer read (with what it found in them) and the os-release
 * files and links, keyed by path. Layers are applied in order; within a
 * layer, its whiteouts (`.wh.NAME`, opaque directories), the entries that
 * replace a lower path (a file over a directory hides all under it) and its
 * own files are collected, and at the layer's end the removals apply to the
 * lower layers only, then its files go on top — the order of entries inside
 * a tar does not matter, as the image spec requires.
 */
import type { ParsedPackage } from './model.ts';

export interface TrackedFile {
  layer: string;
  kind: 'file' | 'symlink';
  /** a symlink's target, as written */
  target?: string;
  /** what the cataloguer found in it */
  packages: ParsedPackage[];
  cataloguer?: string;
  /** kept for os-release only */
  content?: Buffer;
}

export class FinalFileSystem {
  readonly files = new Map<string, TrackedFile>();
  private ancestors = new Set<string>();
  private layerFiles = new Map<string, TrackedFile>();
  private removeExact = new Set<string>();
  private removeUnder = new Set<string>();

  /** An entry of the current layer at `path` (replaces a lower file there; a non-directory hides the lower tree under it). */
  entry(path: string, isDirectory: boolean): void {
    if (this.files.has(path)) this.removeExact.add(path);
    if (!isDirectory && this.ancestors.has(path)) this.removeUnder.add(path);
  }

  whiteout(path: string): void {
    this.removeExact.add(path);
    this.removeUnder.add(path);
  }

  opaque(dir: string): void {
    this.removeUnder.add(dir);
  }

  /** A tracked file as the current layer sees it: its own, else the lower layers' (a hard link's target). */
  lookup(path: string): TrackedFile | undefined {
    return this.layerFiles.get(path) ?? (this.removeExact.has(path) ? undefined : this.files.get(path));
  }

  track(path: string, file: TrackedFile): void {
    this.layerFiles.set(path, file);
  }

  /** The current layer ends: its removals apply below it, then its files go on top. */
  endLayer(): void {
    for (const p of [...this.files.keys()]) {
      if (this.removeExact.has(p) || this.hiddenUnder(p)) this.files.delete(p);
    }
    for (const [p, f] of this.layerFiles) this.files.set(p, f);
    this.layerFiles.clear();
    this.removeExact.clear();
    this.removeUnder.clear();
    this.ancestors.clear();
    for (const p of this.files.keys()) {
      const parts = p.split('/');
      for (let i = 0; i < parts.length - 1; i++) this.ancestors.add(parts.slice(0, i + 1).join('/'));
    }
    this.ancestors.add('');
  }

  private hiddenUnder(p: string): boolean {
    if (this.removeUnder.has('')) return true;
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) if (this.removeUnder.has(p.slice(0, i))) return true;
    return false;
  }
}
