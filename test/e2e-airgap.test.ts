/**
 * End to end, air-gapped, configured the way compose-stella.yml configures a
 * site: the real API (api/main.ts) and a real worker (queue/worker-main.ts)
 * run as processes with STELLA_AIRGAP=true, the API listening on all
 * interfaces (0.0.0.0, its default), both reaching Redis, PostgreSQL and the
 * store by host name (`localhost`, resolved the way compose's service names
 * are), trusting only the key OUK_TRUSTED_KEYS names. The store (s3rver)
 * posts MinIO webhooks to the API, as MinIO does.
 *
 * An operator builds two kits from real OSV records with the `stella` CLI,
 * drops the first into the bucket (webhook → flow → active) and imports the
 * second with `stella ouk import` (air-gapped too); scans through the API
 * find what the new DB knows and are counted in /metrics; a URL import is
 * refused with AIRGAP_VIOLATION; without trusted keys the services refuse to
 * start. Last, the whole kit: real advisories with ../shared/feeds-extra
 * (CSAF 2.0, CISA KEV, FIRST EPSS) and two two-platform OCI images, imported
 * air-gapped: the site's registry (Debian's docker-registry, reached by name
 * like compose's `registry`) serves both images by the manifest's digests, a
 * scan of a real SBOM carries KEV and EPSS, and a real Red Hat CSAF VEX
 * statement carried in the kit suppresses its finding.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXIT_CODES } from '../lib/errors.ts';
import { readActivePointer } from '../infra/active-db.ts';
import { parseManifest } from '../bundle/manifest.ts';
import { writeOciImage } from './fixtures/oci-images.ts';
import { startTestRegistry, type TestRegistry } from './helpers/registry.ts';
import { selectFeeds } from './helpers/scan-db.ts';
import { childBaseEnv, freePort, repoRoot, runStella, sharedDir, testRedisPrefix, type CliRun, type TestRedisPrefix } from './helpers/services.ts';
import { FAST_RETRIES, pipelineFixture, putFile, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const TOKEN = 'e2e-webhook-token';

let fx: PipelineFixture;
let redis: TestRedisPrefix;
let apiPort: number;
let api: ChildProcess;
let worker: ChildProcess;
let env: NodeJS.ProcessEnv;
let registry: TestRegistry;

/** A loopback URL spelled with the host name `localhost`, as compose spells `redis`, `postgres`, `minio`. */
function byName(url: string): string {
  const u = new URL(url);
  u.hostname = 'localhost';
  return u.toString().replace(/\/$/, '');
}

function logPath(name: string): string {
  return path.join(fx.dir, `${name}.log`);
}

function startService(name: string, entry: string, extra: NodeJS.ProcessEnv = {}): ChildProcess {
  const log = fs.openSync(logPath(name), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env: { ...env, ...extra }, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return child;
}

function exited(child: ChildProcess, timeoutMs = 30_000): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`process ${child.pid} did not exit`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await exited(child).catch(() => child.kill('SIGKILL'));
}

function stella(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runStella(args, { cwd: fx.dir, env: { ...env, ...extra } });
}

async function build(version: string, files: string[], more: { feeds?: (dir: string) => void; args?: string[] } = {}): Promise<string> {
  const feeds = await selectFeeds({ files }, `e2e-${version}`);
  more.feeds?.(feeds);
  const out = path.join(fx.dir, `stella-ouk-${version}.tar.gz`);
  const r = await stella(['ouk', 'build', '--feeds', feeds, '--key', fx.privateKey, '--out', out, '--version', version, '--expires-days', '3650', ...(more.args ?? [])]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function activeVersion(): Promise<string | null> {
  return (await readActivePointer(fx.pool)).activeVersion;
}

function logs(): string {
  return ['api', 'worker'].map((n) => `--- ${n}.log\n${fs.existsSync(logPath(n)) ? fs.readFileSync(logPath(n), 'utf8').slice(-3000) : ''}`).join('\n');
}

const api8080 = (p: string): string => `http://127.0.0.1:${apiPort}${p}`;

before(async () => {
  apiPort = await freePort();
  fx = await pipelineFixture('e2e-airgap', { webhook: { url: `http://127.0.0.1:${apiPort}/hooks/minio`, token: TOKEN, attempts: 5, backoffMs: 200 } });
  redis = testRedisPrefix('e2e-airgap');
  registry = await startTestRegistry('e2e-airgap');
  env = childBaseEnv({
    ...FAST_RETRIES,
    STELLA_AIRGAP: 'true',
    REDIS_URL: byName(redis.redisUrl),
    OUK_QUEUE_PREFIX: redis.prefix,
    DATABASE_URL: byName(fx.db.url),
    S3_ENDPOINT: byName(fx.s3.endpoint),
    OUK_BUCKET: fx.s3.bucket,
    OUK_TRUSTED_KEYS: fx.publicKey,
    OUK_REGISTRY_URL: byName(registry.url),
    OUK_WEBHOOK_TOKEN: TOKEN,
    STELLA_API_PORT: String(apiPort),
    STELLA_QUOTA_PREFIX: `${redis.prefix}:quota`,
    STELLA_STATE_DIR: path.join(fx.dir, 'state'),
    LOG_LEVEL: 'info',
  });
  api = startService('api', 'api/main.ts');
  worker = startService('worker', 'queue/worker-main.ts');
  await waitFor(
    'the air-gapped API to answer /healthz',
    async () => {
      if (api.exitCode !== null) throw new Error(`the API exited with ${api.exitCode}:\n${logs()}`);
      return fetch(api8080('/healthz')).then((r) => r.ok, () => false);
    },
    60_000,
    200,
  );
});

after(async () => {
  await stop(worker);
  await stop(api);
  await redis?.cleanup();
  await registry?.close();
  await fx?.close();
});

describe('air-gapped end to end, as compose runs it', () => {
  test('the API listens on all interfaces with the guard installed', async () => {
    const health = (await (await fetch(api8080('/healthz'))).json()) as { airgap: { mode: string; guard: boolean } };
    assert.deepEqual(health.airgap, { mode: 'air-gapped', guard: true });
    // bound to 0.0.0.0, not to 127.0.0.1: it answers on another address of this host too
    const other = await fetch(`http://127.0.0.2:${apiPort}/healthz`);
    assert.equal(other.status, 200, 'the API answers on 127.0.0.2, so it listens on all interfaces');
    assert.equal(worker.exitCode, null, `the worker is running:\n${logs()}`);
  });

  test('a kit dropped into the bucket is verified, loaded and activated through the webhook', async () => {
    const kit = await build('2026-11-27', ['osv/npm/GHSA-jf85-cpcp-j695.json']);
    await putFile(fx, `${kit}.sig`, 'stella-ouk-2026-11-27.tar.gz.sig');
    await putFile(fx, kit, 'stella-ouk-2026-11-27.tar.gz');
    await waitFor('the dropped kit to be active', async () => ((await activeVersion()) === '2026-11-27' ? true : null), 60_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
  });

  test('`stella ouk import FILE` (air-gapped) uploads and follows the next kit to `activated`', async () => {
    const kit = await build('2026-11-28', ['osv/npm/GHSA-jf85-cpcp-j695.json', 'osv/npm/GHSA-35jh-r3h4-6jhm.json']);
    const r = await stella(['ouk', 'import', kit]);
    assert.equal(r.code, 0, `${r.stderr}\n${logs()}`);
    assert.equal(r.stdout, 'activated 2026-11-28\n');
    assert.equal(await activeVersion(), '2026-11-28');
  });

  test('scans through the API find what the active DB knows, and count in ouk_scans_total', async () => {
    const sbom = JSON.parse(fs.readFileSync(path.join(sharedDir, 'sboms', 'juice-shop-v11.1.2-bom.json'), 'utf8')) as unknown;
    const res = await fetch(api8080('/api/v1/scan'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(sbom) });
    assert.equal(res.status, 200);
    const scan = (await res.json()) as { dbVersion: string; findings: Array<{ advisoryId: string; aliases: string[]; package: string }> };
    assert.equal(scan.dbVersion, '2026-11-28');
    const lodash = scan.findings.filter((f) => f.package === 'lodash').map((f) => [f.advisoryId, ...f.aliases].join(' '));
    assert.ok(lodash.some((s) => s.includes('CVE-2021-23337')), `lodash findings: ${lodash.join('; ')}`);
    const bad = await fetch(api8080('/api/v1/scan'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"bomFormat": 7}' });
    assert.equal(bad.status, 400);
    const metrics = await (await fetch(api8080('/metrics'))).text();
    assert.match(metrics, /^ouk_scans_total\{mode="anonymous",over_quota="false"\} 1$/m, 'one scan served, one counted');
    assert.match(metrics, /^ouk_active_db_info\{version="2026-11-28"\} 1$/m);
  });

  test('a URL import is refused with AIRGAP_VIOLATION, saying why', async () => {
    const r = await stella(['ouk', 'import', 'https://mirror.example.org/stella-ouk-2026-11-29.tar.gz']);
    assert.equal(r.code, EXIT_CODES.AIRGAP_VIOLATION, r.stderr);
    assert.match(r.stderr, /^error\[AIRGAP_VIOLATION\]: air-gap mode \(STELLA_AIRGAP=true\) does not fetch https:\/\/mirror\.example\.org\/.*Copy the kit across the gap/m);
    assert.equal(await activeVersion(), '2026-11-28');
  });

  test('without OUK_TRUSTED_KEYS the API and the worker refuse to start, and say what to set', async () => {
    for (const [name, entry] of [
      ['no-key-worker', 'queue/worker-main.ts'],
      ['no-key-api', 'api/main.ts'],
    ] as const) {
      const child = startService(name, entry, { OUK_TRUSTED_KEYS: '', STELLA_API_PORT: String(await freePort()) });
      const code = await exited(child);
      const out = fs.readFileSync(logPath(name), 'utf8');
      assert.equal(code, 1, out);
      assert.match(out, /error\[KEY_NOT_TRUSTED\]: OUK_TRUSTED_KEYS is not set/);
    }
  });
  test('the whole kit: advisories with CSAF, KEV and EPSS, and two two-platform images, imported air-gapped', async () => {
    const extra = path.join(sharedDir, 'feeds-extra');
    const scanner = await writeOciImage(path.join(fx.dir, 'images', 'scanner'), { name: 'scanner' });
    const zastava = await writeOciImage(path.join(fx.dir, 'images', 'zastava'), { name: 'zastava' });
    // Tomcat's Ghostcat (CVE-2020-1938, in CISA's KEV) and HTTP/2 Rapid Reset for Keycloak 10's
    // real SBOM; GO-2023-2102 for the product Red Hat's real VEX document (RHSA-2023:5835) covers
    const kit = await build('2026-11-29', ['ghsa/GHSA-c9hw-wf7x-jp9j.json', 'ghsa/GHSA-qppj-fm5r-hxr3.json', 'osv/Go/GO-2023-2102.json'], {
      feeds: (dir) => {
        fs.symlinkSync(path.join(extra, 'csaf'), path.join(dir, 'csaf'));
        fs.symlinkSync(path.join(extra, 'kev'), path.join(dir, 'kev'));
        fs.mkdirSync(path.join(dir, 'epss'));
        fs.symlinkSync(path.join(extra, 'epss', 'epss_scores-2026-01-30.feeds-subset.csv'), path.join(dir, 'epss', 'epss.csv'));
      },
      args: ['--image', `scanner=${scanner.dir}`, '--image', `zastava=${zastava.dir}`],
    });
    const r = await stella(['ouk', 'import', kit]);
    assert.equal(r.code, 0, `${r.stderr}\n${logs()}`);
    assert.match(r.stdout, /^activated 2026-11-29\n/);
    assert.match(r.stdout, /^image stella\/scanner:\S+ sha256:[0-9a-f]{64} pushed/m);

    // the registry serves each image, and each platform, by the digests the signed manifest names
    const manifest = parseManifest(execFileSync('tar', ['-xzOf', kit, 'manifest.json'], { encoding: 'utf8' }));
    assert.deepEqual(manifest.images!.map((i) => [i.name, i.platforms.length]), [['scanner', 2], ['zastava', 2]]);
    assert.equal(manifest.images![0]!.indexDigest, scanner.indexDigest);
    for (const img of manifest.images!) {
      const idx = await registry.manifest(`stella/${img.name}`, img.tag);
      assert.equal(idx.digest, img.indexDigest, `${img.name}:${img.tag}`);
      for (const p of img.platforms) assert.equal((await registry.manifest(`stella/${img.name}`, p.digest)).digest, p.digest);
    }
    const listed = await stella(['ouk', 'images', '--json']);
    assert.equal(listed.code, 0, listed.stderr);

    // a real SBOM scanned through the API: KEV and EPSS on the finding that has them
    const keycloak = fs.readFileSync(path.join(sharedDir, 'sboms', 'keycloak-10.0.2-bom.json'), 'utf8');
    type Finding = { advisoryId: string; aliases: string[]; kev?: { cve: string; dateAdded: string } | null; epss?: { score: number; percentile: number } | null };
    const scan = (await (await fetch(api8080('/api/v1/scan'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: keycloak })).json()) as { dbVersion: string; findings: Finding[] };
    assert.equal(scan.dbVersion, '2026-11-29');
    const ghostcat = scan.findings.find((f) => [f.advisoryId, ...f.aliases].includes('CVE-2020-1938'));
    assert.ok(ghostcat, `Ghostcat is found: ${scan.findings.map((f) => f.advisoryId).join(', ')}`);
    assert.equal(ghostcat.kev?.cve, 'CVE-2020-1938');
    assert.equal(ghostcat.kev?.dateAdded, '2022-03-03');
    assert.deepEqual([ghostcat.epss?.score, ghostcat.epss?.percentile], [0.94469, 0.99996]);

    // Red Hat's VEX statement in the kit: rhc-worker-script 0.5-1.el7_9 is fixed for CVE-2023-39325
    const rhc = (subject: boolean) => ({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      version: 1,
      metadata: subject ? { component: { type: 'application', name: 'rhc-worker-script', version: '0.5-1.el7_9', purl: 'pkg:rpm/redhat/rhc-worker-script@0.5-1.el7_9?arch=x86_64' } } : {},
      components: [{ type: 'library', 'bom-ref': 'x-net', name: 'golang.org/x/net', version: 'v0.7.0', purl: 'pkg:golang/golang.org/x/net@v0.7.0' }],
    });
    type Vexed = { findings: Finding[]; suppressed: (Finding & { vex: { status: string; source: string } })[] };
    const post = async (b: unknown) => (await (await fetch(api8080('/api/v1/scan'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) })).json()) as Vexed;
    const open = (await post(rhc(false))).findings.map((f) => f.advisoryId);
    assert.ok(open.includes('CVE-2023-39325'), `golang.org/x/net v0.7.0 is affected by GO-2023-2102: ${open.join(', ')}`);
    const vexed = await post(rhc(true));
    // RHSA-2023:5835 says rhc-worker-script 0.5-1.el7_9 is fixed for its CVEs (CVE-2023-39325 among them):
    // those findings leave the count and stay visible as suppressed, with the statement's source
    assert.ok(vexed.suppressed.some((f) => f.advisoryId === 'CVE-2023-39325'));
    for (const f of vexed.suppressed) assert.deepEqual([f.vex.status, f.vex.source], ['fixed', 'kit: Red Hat Product Security RHSA-2023:5835'], f.advisoryId);
    assert.deepEqual([...vexed.findings, ...vexed.suppressed].map((f) => f.advisoryId).sort(), [...open].sort(), 'nothing lost: suppressed or still counted');
  });
});
