/**
 * `npm run demo`: from a clean clone to an imported, active vulnerability DB in
 * one command, with the same commands an operator runs:
 *
 *   1. npm run dev:up            local stack: Redis/PostgreSQL if needed, s3rver,
 *                                API (webhook, dashboard) and workers; dev key
 *   2. stella ouk build          a signed sample bundle from ../shared/feeds (or a
 *                                small generated feed set when that is absent)
 *   3. stella ouk verify         the signature and every member, offline
 *   4. stella ouk import         upload, verify → unpack → load → activate
 *   5. stella ouk status         the active DB
 *   6. stella scan               a real SBOM against it
 *
 * Idempotent: run it again and it builds the same bytes, the same import (already active).
 * Everything lands under .stella/ (see infra/env.ts); `npm run dev:down` stops the stack.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { devPaths, loadDotEnv } from '../infra/env.ts';

loadDotEnv(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '.env'));

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sharedDir = path.resolve(repoRoot, '../shared');
// Children resolve .env and the dev defaults themselves (infra/env.ts).
const env = process.env;
const paths = devPaths(env, repoRoot);
const stella = path.join(repoRoot, 'bin', 'stella.js');

function step(title: string, cmd: string, args: string[], opts: { allowFail?: boolean } = {}): number {
  process.stdout.write(`\n\u001b[1m== ${title}\u001b[0m\n$ ${[cmd, ...args].map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd: repoRoot, env, stdio: 'inherit' });
  const code = r.status ?? 1;
  if (code !== 0 && !opts.allowFail) {
    process.stderr.write(`demo: "${title}" failed with exit ${code}; logs are in ${path.join(paths.stateDir, 'logs')}\n`);
    process.exit(code);
  }
  return code;
}

/** A few OSV records, for a clone with no ../shared beside it. */
function generatedFeeds(dir: string): string {
  const osv = path.join(dir, 'osv', 'npm');
  fs.mkdirSync(osv, { recursive: true });
  const records = [
    { id: 'GHSA-demo-0001-0001', pkg: 'lodash', introduced: '0', fixed: '4.17.21', cve: 'CVE-2021-23337', vector: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H' },
    { id: 'GHSA-demo-0002-0002', pkg: 'minimist', introduced: '0', fixed: '1.2.6', cve: 'CVE-2021-44906', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' },
  ];
  for (const r of records) {
    const rec = {
      schema_version: '1.6.0',
      id: r.id,
      modified: '2026-01-01T00:00:00Z',
      published: '2026-01-01T00:00:00Z',
      aliases: [r.cve],
      summary: `generated demo advisory for ${r.pkg}`,
      severity: [{ type: 'CVSS_V3', score: r.vector }],
      affected: [{ package: { ecosystem: 'npm', name: r.pkg }, ranges: [{ type: 'SEMVER', events: [{ introduced: r.introduced }, { fixed: r.fixed }] }] }],
    };
    fs.writeFileSync(path.join(osv, `${r.id}.json`), JSON.stringify(rec, null, 2));
  }
  return dir;
}

const version = new Date().toISOString().slice(0, 10);
const demoDir = path.join(paths.stateDir, 'demo');
fs.mkdirSync(demoDir, { recursive: true });
const feeds = fs.existsSync(path.join(sharedDir, 'feeds')) ? path.join(sharedDir, 'feeds') : generatedFeeds(path.join(demoDir, 'feeds'));
const bundle = path.join(demoDir, `stella-ouk-${version}.tar.gz`);

step('start the local stack', 'npm', ['run', '--silent', 'dev:up']);
// The dev key dev:up generated; the workers trust it unless OUK_TRUSTED_KEYS says otherwise.
const key = paths.privateKey;
const pub = paths.publicKey;
// Built every time: the same feeds give the same bytes (the same import), and a kit left by an
// older version of this checkout (another bundle format) is never imported by mistake.
step('build a signed sample bundle', process.execPath, [stella, 'ouk', 'build', '--feeds', feeds, '--key', key, '--out', bundle, '--version', version]);
step('verify it offline', process.execPath, [stella, 'ouk', 'verify', bundle, '--key', pub]);
step('import it', process.execPath, [stella, 'ouk', 'import', bundle]);
step('status', process.execPath, [stella, 'ouk', 'status']);
const sbom = path.join(sharedDir, 'sboms', 'juice-shop-v11.1.2-bom.json');
if (fs.existsSync(sbom)) step('scan a real SBOM (OWASP Juice Shop)', process.execPath, [stella, 'scan', sbom], { allowFail: true });
process.stdout.write(`\nDone. Dashboard: http://127.0.0.1:${env.STELLA_API_PORT || 8080}/admin/queues (sign in with the directory, or set OUK_BREAK_GLASS=true with DASHBOARD_USER/DASHBOARD_PASSWORD in .env first).\nStop the stack with: npm run dev:down\n`);
