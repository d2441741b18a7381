/**
 * `stella scan image REF [--platform os/arch] [--sbom-out FILE] [--sbom-only]`
 * with the options of `stella scan`: the image is catalogued from its layers
 * (catalog/: the platform's manifest, each layer streamed, whiteouts applied,
 * the package databases read) into a CycloneDX 1.5 SBOM, which is then
 * scanned exactly as `stella scan FILE` scans one (quota, VEX, --fail-on).
 * What the cataloguer skipped (a refused path, a file over its bound, a
 * record it could not read) is listed on stderr and in the SBOM
 * (`stella:skipped`); with --json the result carries `image` too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalogImage, toCycloneDx } from '../../catalog/index.ts';
import { OukError } from '../../lib/errors.ts';
import { packageVersion } from '../../lib/package-version.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import { parseSbom } from '../../scan/sbom.ts';
import type { CliContext } from '../context.ts';
import { imageSource } from '../image-ref.ts';
import { printScan, type ScanCliOptions, scanSbom } from '../scan-session.ts';

export interface ScanImageOptions extends ScanCliOptions {
  platform?: string;
  sbomOut?: string;
  sbomOnly?: boolean;
}

const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
/** Skipped items shown on stderr; the SBOM lists them all (up to the cataloguer's own bound). */
const SHOWN = 10;

function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new OukError('USAGE', `--sbom-out ${file} cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a writable path`, { cause: e });
  }
}

export async function runScanImage(cli: CliContext, ref: string, opts: ScanImageOptions): Promise<void> {
  if (opts.platform !== undefined && !PLATFORM.test(opts.platform)) throw new OukError('USAGE', `--platform ${JSON.stringify(opts.platform)}: give os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  const source = imageSource(cli.config, ref);
  const catalogue = await catalogImage(source, opts.platform ? { platform: opts.platform } : {});
  const bom = toCycloneDx(catalogue, { imageName: source.name, now: new Date(), toolVersion: packageVersion() });
  const bomText = `${JSON.stringify(bom, null, 2)}\n`;
  if (opts.sbomOut) writeAtomically(opts.sbomOut, bomText);
  const lines = [`${source.name} (${catalogue.platform}, ${catalogue.manifestDigest}): ${catalogue.packages.length} packages${catalogue.distro ? ` on ${catalogue.distro.id} ${catalogue.distro.versionId}` : ''}`];
  if (catalogue.skipped.length) {
    lines.push(`warning: ${catalogue.skipped.length} item${catalogue.skipped.length === 1 ? '' : 's'} not catalogued (the SBOM lists them as stella:skipped):`);
    for (const s of catalogue.skipped.slice(0, SHOWN)) lines.push(`  ${s.where}: ${s.why}`);
    if (catalogue.skipped.length > SHOWN) lines.push(`  … and ${catalogue.skipped.length - SHOWN} more`);
  }
  process.stderr.write(terminalLines(lines)); // paths from the image, escaped
  if (opts.sbomOnly) {
    if (!opts.sbomOut) process.stdout.write(bomText);
    return;
  }
  const out = await scanSbom(cli, parseSbom(bom), opts);
  const image = { name: source.name, manifestDigest: catalogue.manifestDigest, platform: catalogue.platform, distro: catalogue.distro, packages: catalogue.packages.length, skipped: catalogue.skipped };
  printScan(opts.json ? { ...out, output: `${JSON.stringify({ image, ...out.result }, null, 2)}\n` } : out);
  if (out.exitError) throw out.exitError;
}
