/**
 * The cataloguer's bounds: what a hostile image can make it read, hold or
 * count. Every bound has a default for real images; tests pass smaller ones.
 */
export interface CatalogLimits {
  /** bytes one layer may inflate to (LAYER_TOO_LARGE past it) */
  maxLayerBytes: number;
  /** tar entries of all layers together (IMAGE_TOO_MANY_FILES past it) */
  maxEntries: number;
  /** largest package database read (dpkg status, apk installed, installed.json, deps.json); larger ones are skipped */
  maxDbBytes: number;
  /** largest small metadata file read (package.json, METADATA, gemspec, os-release) */
  maxMetaBytes: number;
  /** largest jar/war/ear read into memory (zip needs its central directory) */
  maxArchiveBytes: number;
  /** jars inside jars, how deep */
  maxArchiveDepth: number;
  /** entries of one archive looked at */
  maxArchiveEntries: number;
  /** largest executable searched for Go build information */
  maxBinaryBytes: number;
  /** packages of one image (the scan takes at most 20,000 components) */
  maxPackages: number;
  /** largest index or manifest document */
  maxJsonBytes: number;
}

export const DEFAULT_LIMITS: CatalogLimits = {
  maxLayerBytes: 8 * 1024 ** 3,
  maxEntries: 500_000,
  maxDbBytes: 64 * 1024 ** 2,
  maxMetaBytes: 1024 ** 2,
  maxArchiveBytes: 128 * 1024 ** 2,
  maxArchiveDepth: 3,
  maxArchiveEntries: 20_000,
  maxBinaryBytes: 256 * 1024 ** 2,
  maxPackages: 20_000,
  maxJsonBytes: 4 * 1024 ** 2,
};
