#!/usr/bin/env node
// The `stella` CLI.
//
// In a checkout — the TypeScript sources beside this file — it runs the
// sources through tsx's loader: `npx stella` works right after `npm ci`, with
// no build step, and always runs the code you see (a dist/ left by an earlier
// `npm run build` is never used here, so it cannot run stale code).
// In the package and the image, which carry the compiled dist/ and no sources
// (package.json `files`, the Dockerfile), it runs dist/ with plain Node.
import { existsSync } from 'node:fs';

let cli;
if (existsSync(new URL('../cli/main.ts', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../cli/main.ts');
} else {
  cli = await import('../dist/cli/main.js');
}
process.exitCode = await cli.main(process.argv);
