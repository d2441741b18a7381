/**
 * The image cataloguer end to end, on an image built here from real parts of
 * this Debian host: a subset of its own /var/lib/dpkg/status with its
 * os-release (and Debian's /etc/os-release -> ../usr/lib/os-release link),
 * Python dist-info/egg-info directories and jars with pom.properties from
 * Debian packages (one nested in a war), Debian's docker-registry (a Go
 * binary), and node_modules packages of this repository. Layers are gzip,
 * zstd and plain tar; a later layer whites out a jar and makes a
 * dist-info directory opaque. The image (two platforms) is pushed to a real
 * registry (Debian's docker-registry) and catalogued from there, from its OCI
 * layout and from an OCI archive; dpkg packages are compared with
 * `dpkg-query -W` on the same status file, and `stella scan image` finds
 * dicer 0.3.0's known vulnerability in a test DB built from the real record.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalogImage, type CatalogResult, ociArchiveSource, ociLayoutSource, toCycloneDx } from '../catalog/index.ts';
import { imageSource } from '../cli/image-ref.ts';
import { EXIT_CODES, type OukError } from '../lib/errors.ts';
import { parseSbom } from '../scan/sbom.ts';
import type { CountedScan } from '../scan/service.ts';
import { type BuiltImage, hostFile, type LayerEntry, pushImage, writeImage } from './fixtures/catalog-images.ts';
import { writeZip } from './helpers/zip-writer.ts';
import { startTestRegistry, type TestRegistry } from './helpers/registry.ts';
import { createLoadedScanDb, type ScanDb } from './helpers/scan-db.ts';
import { childBaseEnv, repoRoot, runStella, testConfig, testRedisPrefix, tmpDir } from './helpers/services.ts';

const PY = '/usr/lib/python3/dist-packages';
const JAVA = '/usr/share/java';
const NODE_MODULES = path.join(repoRoot, 'node_modules');
const NPM_PACKAGES = ['dicer', 'semver', 'commander', '@types/node'];

/** The first `n` stanzas of the host's dpkg status (its real records, unchanged). */
function statusSubset(n: number): Buffer {
  const stanzas = fs.readFileSync('/var/lib/dpkg/status', 'utf8').split(/\n\n+/).filter((s) => s.trim());
  return Buffer.from(`${stanzas.slice(0, n).join('\n\n')}\n`);
}

/** dpkg-query's own answer on a status file: installed packages as name version arch. */
function dpkgQuery(status: Buffer, dir: string): string[] {
  const admin = path.join(dir, 'dpkg-admin');
  fs.mkdirSync(path.join(admin, 'updates'), { recursive: true });
  fs.mkdirSync(path.join(admin, 'info'), { recursive: true });
  fs.writeFileSync(path.join(admin, 'status'), status);
  const out = execFileSync('dpkg-query', [`--admindir=${admin}`, '-W', '-f=${db:Status-Status} ${Package} ${Version} ${Architecture}\\n'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.startsWith('installed ')).map((l) => l.slice('installed '.length)).sort();
}

/** The Go toolchain version a binary names after its build-info header (what `go version BINARY` prints). */
function goVersionOf(file: string): string {
  const b = fs.readFileSync(file);
  const at = b.indexOf(Buffer.from('\xff Go buildinf:', 'latin1'));
  return /go(\d+\.\d+(?:\.\d+)?)/.exec(b.subarray(at + 32, at + 64).toString('latin1'))![1]!;
}

/** The file or directory of `dir` named `prefix<version>suffix` (a Debian package's versioned name, for jars a link to the jar): its name and version. */
function versioned(dir: string, prefix: string, suffix: string): { name: string; version: string } {
  const hits = fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith(suffix) && /^\d/.test(f.slice(prefix.length)));
  assert.ok(hits.length >= 1, `no ${prefix}*${suffix} in ${dir}: run dev/ensure-packages.sh`);
  const name = hits.sort()[0]!;
  return { name, version: name.slice(prefix.length, name.length - suffix.length) };
}
const COMMONS_IO = versioned(JAVA, 'commons-io-', '.jar');
const COMMONS_LANG3 = versioned(JAVA, 'commons-lang3-', '.jar');
const GUAVA = versioned(JAVA, 'guava-', '.jar');
const PYYAML = versioned(PY, 'PyYAML-', '.dist-info');
const PYJWT = versioned(PY, 'PyJWT-', '.egg-info');
const ATTRS = versioned(PY, 'attrs-', '.dist-info');

const pyDir = (name: string): LayerEntry[] => {
  const d = path.join(PY, name);
  return fs.readdirSync(d).map((f) => ({ name: `usr/lib/python3/dist-packages/${name}/${f}`, body: hostFile(path.join(d, f)) }));
};

describe('stella scan image: an image of real parts, catalogued', () => {
  const dir = tmpDir('catalog');
  let reg: TestRegistry;
  let img: BuiltImage;
  let sdb: ScanDb;
  const rp = testRedisPrefix('catalog');
  const status = statusSubset(60);
  const war = writeZip([
    { name: 'WEB-INF/web.xml', data: Buffer.from('<web-app/>') },
    { name: `WEB-INF/lib/${COMMONS_LANG3.name}`, data: hostFile(`${JAVA}/${COMMONS_LANG3.name}`) },
  ]);
  const npmEntries: LayerEntry[] = NPM_PACKAGES.map((p) => ({ name: `app/node_modules/${p}/package.json`, body: hostFile(path.join(NODE_MODULES, p, 'package.json')) }));
  const npmVersion = (p: string): string => (JSON.parse(fs.readFileSync(path.join(NODE_MODULES, p, 'package.json'), 'utf8')) as { version: string }).version;
  let fromRegistry: CatalogResult;

  before(async () => {
    const layers = [
      {
        compression: 'gzip' as const,
        entries: [
          { name: 'etc/', type: 'directory' as const },
          { name: 'etc/os-release', type: 'symlink' as const, linkname: '../usr/lib/os-release' },
          { name: 'usr/lib/os-release', body: hostFile('/usr/lib/os-release') },
          { name: 'var/lib/dpkg/status', body: status },
          ...pyDir(PYYAML.name),
          ...pyDir(PYJWT.name),
          ...pyDir(ATTRS.name),
        ],
      },
      {
        compression: 'zstd' as const,
        entries: [
          { name: 'usr/bin/docker-registry', body: hostFile('/usr/bin/docker-registry'), mode: 0o755 },
          { name: `usr/share/java/${COMMONS_IO.name}`, body: hostFile(`${JAVA}/${COMMONS_IO.name}`) },
          { name: `usr/share/java/${GUAVA.name}`, body: hostFile(`${JAVA}/${GUAVA.name}`) },
          { name: 'usr/share/java/commons-io.jar', type: 'symlink' as const, linkname: COMMONS_IO.name },
          { name: 'srv/app.war', body: war },
        ],
      },
      {
        compression: 'none' as const,
        entries: [
          ...npmEntries,
          { name: `usr/share/java/.wh.${GUAVA.name}` },
          { name: `usr/lib/python3/dist-packages/${ATTRS.name}/.wh..wh..opq` },
        ],
      },
    ];
    const arm = [{ compression: 'gzip' as const, entries: [{ name: 'app/node_modules/semver/package.json', body: hostFile(path.join(NODE_MODULES, 'semver/package.json')) }] }];
    [img, reg, sdb] = await Promise.all([
      writeImage(path.join(dir, 'layout'), [
        { platform: 'linux/amd64', layers },
        { platform: 'linux/arm64', layers: arm },
      ]),
      startTestRegistry('catalog'),
      createLoadedScanDb('catalog', { files: ['osv/npm/GHSA-wm7h-9275-46v2.json'] }),
    ]);
    await pushImage(reg.url, 'app/demo', '1.0', img);
    fromRegistry = await catalogImage(imageSource(testConfig({ registryUrl: reg.url }), `127.0.0.1:${reg.port}/app/demo:1.0`), { platform: 'linux/amd64' });
  });
  after(async () => {
    await rp.cleanup();
    await Promise.all([reg?.close(), sdb?.close()]);
  });

  const names = (r: CatalogResult, cataloguer: string): string[] =>
    r.packages
      .filter((p) => p.cataloguer === cataloguer)
      .map((p) => `${p.namespace ? `${p.namespace}/` : ''}${p.name}@${p.version}`)
      .sort();

  it('finds every dpkg package dpkg-query finds in the same status file, with the distro of os-release (through its link)', () => {
    const expected = dpkgQuery(status, dir);
    assert.ok(expected.length > 30, `the subset holds installed packages (${expected.length})`);
    const got = fromRegistry.packages
      .filter((p) => p.cataloguer === 'dpkg')
      .map((p) => `${p.name} ${p.version} ${p.qualifiers?.arch}`)
      .sort();
    assert.deepEqual(got, expected);
    const osRelease = fs.readFileSync('/usr/lib/os-release', 'utf8');
    const id = /^ID=(.*)$/m.exec(osRelease)![1]!.replace(/"/g, '');
    const versionId = /^VERSION_ID=(.*)$/m.exec(osRelease)![1]!.replace(/"/g, '');
    assert.deepEqual([fromRegistry.distro?.id, fromRegistry.distro?.versionId], [id, versionId]);
    const bom = toCycloneDx(fromRegistry, { imageName: 'demo', now: new Date(0), toolVersion: 'test' });
    const libc = bom.components.find((c) => c.name === 'libc6' || c.name === 'base-files') ?? bom.components.find((c) => c.purl.startsWith('pkg:deb/'))!;
    assert.match(libc.purl, new RegExp(`^pkg:deb/${id}/[^@]+@[^?]+\\?arch=[a-z0-9]+&distro=${id}-${versionId}`));
  });

  it('finds the Python, Java, Go and npm packages put in, and not those whited out', () => {
    assert.deepEqual(names(fromRegistry, 'python'), [`pyjwt@${PYJWT.version}`, `pyyaml@${PYYAML.version}`], 'attrs is under an opaque directory');
    assert.deepEqual(names(fromRegistry, 'java'), [`commons-io/commons-io@${COMMONS_IO.version}`, `org.apache.commons/commons-lang3@${COMMONS_LANG3.version}`], 'guava is whited out; the symlink is not a second copy');
    const nested = fromRegistry.packages.find((p) => p.name === 'commons-lang3')!;
    assert.equal(nested.path, `/srv/app.war!/WEB-INF/lib/${COMMONS_LANG3.name}!/META-INF/maven/org.apache.commons/commons-lang3/pom.properties`);
    assert.deepEqual(names(fromRegistry, 'go'), [`stdlib@v${goVersionOf('/usr/bin/docker-registry').split('.').length === 2 ? `${goVersionOf('/usr/bin/docker-registry')}.0` : goVersionOf('/usr/bin/docker-registry')}`]);
    assert.deepEqual(names(fromRegistry, 'npm'), NPM_PACKAGES.map((p) => `${p}@${npmVersion(p)}`).sort());
  });

  it('names the layer and path each package came from, and lists no skipped item for this image', () => {
    const [l1, l2, l3] = img.manifests.find((m) => m.platform === 'linux/amd64')!.layers;
    const by = (name: string) => fromRegistry.packages.find((p) => p.name === name)!;
    assert.deepEqual([by('pyyaml').layer, by('pyyaml').path], [l1, `/usr/lib/python3/dist-packages/${PYYAML.name}/METADATA`]);
    assert.deepEqual([by('commons-io').layer, by('stdlib').layer, by('dicer').layer], [l2, l2, l3]);
    assert.equal(by('dicer').path, '/app/node_modules/dicer/package.json');
    assert.deepEqual(fromRegistry.skipped, []);
    const bom = toCycloneDx(fromRegistry, { imageName: 'demo', now: new Date(0), toolVersion: 'test' });
    const dicer = bom.components.find((c) => c.name === 'dicer')!;
    assert.deepEqual(dicer.properties, [
      { name: 'stella:layer', value: l3 },
      { name: 'stella:path', value: '/app/node_modules/dicer/package.json' },
      { name: 'stella:cataloguer', value: 'npm' },
    ]);
    assert.equal(parseSbom(bom).components.length, fromRegistry.packages.length, 'the scanner reads the SBOM whole');
  });

  it('an OCI archive of the layout gives the same catalogue; the layout\'s other platform is picked by --platform', async () => {
    const archive = path.join(dir, 'image.tar');
    execFileSync('tar', ['-C', img.dir, '-cf', archive, '.']);
    const [tarred, arm] = await Promise.all([
      catalogImage(ociArchiveSource(archive, '1.0'), { platform: 'linux/amd64' }),
      catalogImage(ociLayoutSource(img.dir, '1.0'), { platform: 'linux/arm64' }),
    ]);
    assert.deepEqual(tarred.packages, fromRegistry.packages);
    assert.deepEqual(names(arm, 'npm'), [`semver@${npmVersion('semver')}`]);
    assert.equal(arm.manifestDigest, img.manifests.find((m) => m.platform === 'linux/arm64')!.digest);
  });

  it('stella scan image: catalogued, scanned against the active DB, dicer 0.3.0 found vulnerable; a missing platform or tag is named', async () => {
    const env = childBaseEnv({ DATABASE_URL: sdb.db.url, REDIS_URL: rp.redisUrl, STELLA_QUOTA_PREFIX: `${rp.prefix}:cli`, OUK_REGISTRY_URL: reg.url, STELLA_STATE_DIR: path.join(dir, 'state') });
    const sbomOut = path.join(dir, 'image.cdx.json');
    const run = await runStella(['scan', 'image', 'app/demo:1.0', '--platform', 'linux/amd64', '--json', '--sbom-out', sbomOut, '--fail-on', 'LOW'], { cwd: dir, env });
    assert.equal(run.code, EXIT_CODES.FINDINGS_AT_OR_ABOVE_THRESHOLD, run.stderr);
    const result = JSON.parse(run.stdout) as CountedScan & { image: { manifestDigest: string; packages: number } };
    assert.equal(result.image.manifestDigest, img.manifests.find((m) => m.platform === 'linux/amd64')!.digest);
    const hit = result.findings.filter((f) => f.purl?.startsWith('pkg:npm/dicer@0.3.0'));
    assert.ok(hit.some((f) => f.advisoryId === 'CVE-2022-24434' || f.aliases.includes('GHSA-wm7h-9275-46v2')), JSON.stringify(result.findings.map((f) => f.advisoryId)));
    const written = JSON.parse(fs.readFileSync(sbomOut, 'utf8')) as { specVersion: string; components: unknown[] };
    assert.equal(written.specVersion, '1.5');
    assert.equal(written.components.length, result.image.packages);

    const site = testConfig({ registryUrl: reg.url });
    await assert.rejects(catalogImage(imageSource(site, `127.0.0.1:${reg.port}/app/demo:1.0`), { platform: 'linux/s390x' }), (e: OukError) => e.code === 'IMAGE_PLATFORM_MISSING' && /linux\/amd64, linux\/arm64/.test(e.message));
    await assert.rejects(catalogImage(imageSource(site, 'app/demo:2.0')), (e: OukError) => e.code === 'IMAGE_NOT_FOUND');
  });

  it('reads distroless status.d, Alpine apk, Ruby gemspecs, Composer and .NET records (written here in their formats: this Debian host has none)', async () => {
    const baseFiles = fs.readFileSync('/var/lib/dpkg/status', 'utf8').split(/\n\n+/).find((st) => st.startsWith('Package: base-files\n'))!;
    const apkDb = ['C:Q1abc=', 'P:musl', 'V:1.2.4-r2', 'A:x86_64', 'S:383152', 'o:musl', 'm:Timo Teräs <timo.teras@iki.fi>', '', 'P:libcrypto3', 'V:3.1.4-r1', 'A:x86_64', 'o:openssl', ''].join('\n');
    const gemspec = ['# -*- encoding: utf-8 -*-', '# stub: rack 2.2.8 ruby lib', 'Gem::Specification.new do |s|', '  s.name = "rack".freeze', '  s.version = "2.2.8"', 'end'].join('\n');
    const composer = JSON.stringify({ packages: [{ name: 'monolog/monolog', version: '3.5.0', version_normalized: '3.5.0.0' }, { name: 'psr/log', version: 'v3.0.0' }], dev: true });
    const deps = JSON.stringify({ runtimeTarget: { name: '.NETCoreApp,Version=v8.0' }, libraries: { 'App/1.0.0': { type: 'project' }, 'Newtonsoft.Json/13.0.3': { type: 'package', serviceable: true } } });
    const osRelease = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME="Alpine Linux v3.18"\n';
    const layout = path.join(dir, 'formats');
    await writeImage(layout, [
      {
        platform: 'linux/amd64',
        layers: [
          {
            compression: 'gzip',
            entries: [
              { name: 'etc/os-release', body: Buffer.from(osRelease) },
              { name: 'lib/apk/db/installed', body: Buffer.from(apkDb) },
              { name: 'var/lib/dpkg/status.d/base-files', body: Buffer.from(`${baseFiles}\n`) },
              { name: 'usr/local/bundle/specifications/rack-2.2.8.gemspec', body: Buffer.from(gemspec) },
              { name: 'srv/vendor/composer/installed.json', body: Buffer.from(composer) },
              { name: 'app/App.deps.json', body: Buffer.from(deps) },
            ],
          },
        ],
      },
    ]);
    const r = await catalogImage(ociLayoutSource(layout), { platform: 'linux/amd64' });
    const bom = toCycloneDx(r, { imageName: 'formats', now: new Date(0), toolVersion: 'test' });
    const baseVersion = /^Version: (.*)$/m.exec(baseFiles)![1]!;
    const baseArch = /^Architecture: (.*)$/m.exec(baseFiles)![1]!;
    assert.deepEqual(bom.components.map((c) => c.purl).sort(), [
      'pkg:apk/alpine/libcrypto3@3.1.4-r1?arch=x86_64&distro=3.18.4&origin=openssl',
      'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4',
      'pkg:composer/monolog/monolog@3.5.0',
      'pkg:composer/psr/log@3.0.0',
      `pkg:deb/debian/base-files@${baseVersion}?arch=${baseArch}&distro=alpine-3.18.4`,
      'pkg:gem/rack@2.2.8',
      'pkg:nuget/Newtonsoft.Json@13.0.3',
    ].sort());
  });
});
