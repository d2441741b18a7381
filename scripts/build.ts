/**
 * The production build (`npm run build`, also run by `npm pack` and the
 * Dockerfile): the product's TypeScript compiled by tsc into dist/
 * (tsconfig.build.json: `.ts` import specifiers rewritten to `.js`; tests,
 * benchmarks and the dev stack left out), and beside it the files the code
 * reads at run time relative to its own module (ASSETS), so that dist/ runs
 * with plain Node next to package.json and node_modules and nothing else.
 *
 *   node --import tsx scripts/build.ts [--out-dir DIR]     (default: dist)
 *
 * The output directory is emptied first: a module deleted from the sources
 * never lingers in a build. Development and tests run the sources through tsx
 * and never read dist/ (bin/stella.js runs dist/ only where no sources are).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Directories the code reads files from at run time (via import.meta.url), copied whole into the build. */
const ASSETS = [
  'infra/sql', // the migrations (infra/db.ts)
  'bundle/csaf-schema', // the CSAF 2.0 and CVSS JSON schemas (bundle/csaf.ts), with their SOURCES.md
];

const i = process.argv.indexOf('--out-dir');
const outDir = path.resolve(i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : path.join(repoRoot, 'dist'));
const t0 = Date.now();
// emptied first, so only ever a directory that holds a build (or nothing): never the checkout or one above it
const isBuild = !fs.existsSync(outDir) || fs.readdirSync(outDir).length === 0 || fs.existsSync(path.join(outDir, 'cli', 'main.js'));
if (!isBuild || !path.relative(outDir, repoRoot).startsWith('..')) {
  process.stderr.write(`${outDir} is not a build directory (it holds other files, or the checkout): give an empty or new --out-dir\n`);
  process.exit(2);
}
fs.rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(repoRoot, 'tsconfig.build.json'), '--outDir', outDir], { cwd: repoRoot, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal}): nothing usable in ${outDir}\n`);
  process.exit(1);
}
for (const dir of ASSETS) {
  fs.cpSync(path.join(repoRoot, dir), path.join(outDir, dir), { recursive: true, filter: (src) => !src.endsWith('.ts') });
}
process.stdout.write(`built ${outDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
