/**
 * Hostile images against the cataloguer: each case an OCI layout built here
 * with the entries an attacker would write. Every one ends in a clear code
 * or in a partial result whose `skipped` says what was left out — never a
 * path outside the image read or written, never a file from a layer run,
 * memory bounded by the limits (small ones given here, so that a bomb or a
 * flood of files is cut at once).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { catalogImage, type CatalogLimits, ociLayoutSource } from '../catalog/index.ts';
import { parseRegistryRef } from '../cli/image-ref.ts';
import { OukError } from '../lib/errors.ts';
import { type LayerEntry, type LayerSpec, writeImage } from './fixtures/catalog-images.ts';
import { writeZip } from './helpers/zip-writer.ts';
import { tmpDir } from './helpers/services.ts';

const root = tmpDir('catalog-hostile');
let n = 0;

async function imageOf(layers: LayerSpec[]): Promise<string> {
  const dir = path.join(root, `img-${n++}`);
  await writeImage(dir, [{ platform: 'linux/amd64', layers }]);
  return dir;
}

const catalogue = async (dir: string, limits: Partial<CatalogLimits> = {}) => catalogImage(ociLayoutSource(dir), { platform: 'linux/amd64', limits });
const pkgJson = (name: string, version: string): Buffer => Buffer.from(JSON.stringify({ name, version }));
const stanza = (name: string, version: string): string => `Package: ${name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${version}\n`;

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OukError, String(e));
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('hostile images are bounded', () => {
  it('traversal and absolute names are skipped and reported, never taken as paths', async () => {
    const dir = await imageOf([
      {
        compression: 'gzip',
        entries: [
          { name: '../../../../var/lib/dpkg/status', body: Buffer.from(stanza('evil', '1.0')) },
          { name: '/app/node_modules/abs/package.json', body: pkgJson('abs', '1.0.0') },
          { name: 'app/node_modules/x/../../../../../etc/passwd', body: Buffer.from('root:x:0:0') },
          { name: 'app/node_modules/ok/package.json', body: pkgJson('ok', '1.0.0') },
        ],
      },
    ]);
    const r = await catalogue(dir);
    assert.deepEqual(r.packages.map((p) => `${p.name}@${p.version}`), ['ok@1.0.0']);
    assert.equal(r.skipped.filter((s) => /path traversal/.test(s.why)).length, 2);
    assert.equal(r.skipped.filter((s) => /absolute path/.test(s.why)).length, 1);
  });

  it('links out of the root are not followed: os-release loops and escapes give no distro; a hard link out is refused', async () => {
    const dir = await imageOf([
      {
        compression: 'none',
        entries: [
          { name: 'etc/os-release', type: 'symlink', linkname: '../../../../../../etc/os-release' },
          { name: 'usr/lib/os-release', type: 'symlink', linkname: '/proc/self/environ' },
          { name: 'var/lib/dpkg/status', type: 'link', linkname: '../../../../etc/passwd' },
          { name: 'lib/apk/db/installed', type: 'symlink', linkname: '/lib/apk/db/installed' },
          { name: 'usr/bin/run-me', body: Buffer.from(`#!/bin/sh\ntouch ${path.join(root, 'was-run')}\n`), mode: 0o755 },
        ],
      },
    ]);
    const r = await catalogue(dir);
    assert.equal(r.distro, null, 'the host os-release is never read');
    assert.deepEqual(r.packages, []);
    assert.ok(r.skipped.some((s) => s.where === '/etc/os-release' && /more than 8 symbolic links/.test(s.why)));
    assert.ok(r.skipped.some((s) => s.where === '/var/lib/dpkg/status' && /hard link .*path traversal/.test(s.why)));
    assert.equal(fs.existsSync(path.join(root, 'was-run')), false, 'nothing from a layer is executed');
  });

  it('a layer that inflates past the bound stops with LAYER_TOO_LARGE (a gzip bomb: 32 MiB of zeros in 32 KiB)', async () => {
    const dir = await imageOf([{ compression: 'gzip', entries: [{ name: 'zeros', body: Buffer.alloc(32 * 1024 ** 2) }] }]);
    const stored = fs.statSync(path.join(dir, 'blobs', 'sha256')).isDirectory();
    assert.ok(stored);
    await rejectsWith(catalogue(dir, { maxLayerBytes: 4 * 1024 ** 2 }), 'LAYER_TOO_LARGE', /inflates past 4194304 bytes/);
  });

  it('a flood of small files stops with IMAGE_TOO_MANY_FILES', async () => {
    const entries: LayerEntry[] = Array.from({ length: 3000 }, (_, i) => ({ name: `f/${i}` }));
    const dir = await imageOf([{ compression: 'zstd', entries }]);
    await rejectsWith(catalogue(dir, { maxEntries: 2000 }), 'IMAGE_TOO_MANY_FILES', /more than 2000 files/);
    assert.equal((await catalogue(dir, { maxEntries: 5000 })).packages.length, 0, 'under the bound it is read through');
  });

  it('a huge package database is skipped and said so; a malformed one gives what it holds and counts the rest', async () => {
    const huge = Buffer.from(Array.from({ length: 20000 }, (_, i) => stanza(`p${i}`, '1.0')).join('\n'));
    const malformed = Buffer.concat([
      Buffer.from(`${stanza('good', '2.0')}\n`),
      Buffer.from('Package: \x00\x01\x02\nVersion: 1\n\n'),
      Buffer.from('Package: noversion\nStatus: install ok installed\n\n'),
      Buffer.from(`Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n`),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256)), // binary garbage
    ]);
    const dir = await imageOf([
      {
        compression: 'gzip',
        entries: [
          { name: 'var/lib/dpkg/status', body: huge },
          { name: 'var/lib/dpkg/status.d/base', body: malformed },
          { name: 'app/node_modules/bad/package.json', body: Buffer.from('{"name": "bad", "version": ') },
          { name: 'app/node_modules/big/package.json', body: Buffer.alloc(2 * 1024 ** 2, 0x20) },
          { name: 'opt/not-a-zip.jar', body: Buffer.from('PK\x03\x04 but nothing after') },
        ],
      },
    ]);
    const r = await catalogue(dir, { maxDbBytes: 256 * 1024 });
    assert.deepEqual(r.packages.map((p) => `${p.name}@${p.version}`), ['good@2.0']);
    const why = (where: string): string => r.skipped.filter((s) => s.where === where).map((s) => s.why).join(' | ');
    assert.match(why('/var/lib/dpkg/status'), /over the 262144-byte bound of the dpkg cataloguer: not read/);
    assert.match(why('/var/lib/dpkg/status.d/base'), /stanzas? without a readable Package and Version/);
    assert.match(why('/app/node_modules/bad/package.json'), /not JSON/);
    assert.match(why('/app/node_modules/big/package.json'), /over the 1048576-byte bound of the npm cataloguer/);
    assert.match(why('/opt/not-a-zip.jar'), /not a readable zip archive/);
  });

  it('archives nested past the bound are not opened', async () => {
    let jar = writeZip([{ name: 'META-INF/maven/g/deep/pom.properties', data: Buffer.from('groupId=g\nartifactId=deep\nversion=1\n') }]);
    for (let i = 0; i < 4; i++) jar = writeZip([{ name: `lib/level${i}.jar`, data: jar }]);
    const dir = await imageOf([{ compression: 'none', entries: [{ name: 'app.jar', body: jar }] }]);
    const shallow = await catalogue(dir, { maxArchiveDepth: 3 });
    assert.deepEqual(shallow.packages, []);
    assert.ok(shallow.skipped.some((s) => /nested more than 3 deep/.test(s.why)));
    const deep = await catalogue(dir, { maxArchiveDepth: 5 });
    assert.deepEqual(deep.packages.map((p) => `${p.namespace}/${p.name}@${p.version}`), ['g/deep@1']);
  });

  it('a layer whose bytes are not its digest, or a manifest that is not JSON, is IMAGE_INVALID', async () => {
    const dir = await imageOf([{ compression: 'gzip', entries: [{ name: 'app/node_modules/a/package.json', body: pkgJson('a', '1.0.0') }] }]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifestFile = path.join(dir, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7));
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { layers: Array<{ digest: string }> };
    const layerFile = path.join(dir, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
    const good = fs.readFileSync(layerFile);
    const tampered = Buffer.from(good);
    tampered[tampered.length - 9]! ^= 0xff; // the gzip trailer's CRC: the tar inside still reads, the digest does not match
    fs.writeFileSync(layerFile, tampered);
    await rejectsWith(catalogue(dir), 'IMAGE_INVALID');
    fs.writeFileSync(layerFile, good);
    fs.writeFileSync(manifestFile, 'not json');
    await rejectsWith(catalogue(dir), 'IMAGE_INVALID', /does not have the digest|not JSON/);
  });

  it('whiteouts apply to lower layers only, whatever their order in the tar', async () => {
    const dir = await imageOf([
      { compression: 'gzip', entries: [{ name: 'a/node_modules/one/package.json', body: pkgJson('one', '1.0.0') }, { name: 'b/node_modules/two/package.json', body: pkgJson('two', '1.0.0') }] },
      {
        compression: 'gzip',
        entries: [
          { name: 'a/node_modules/one/package.json', body: pkgJson('one', '2.0.0') },
          { name: 'a/.wh..wh..opq' },
          { name: '.wh.b' },
          { name: 'b', body: Buffer.from('a file where a directory was') },
        ],
      },
    ]);
    const r = await catalogue(dir);
    assert.deepEqual(r.packages.map((p) => `${p.name}@${p.version}`), ['one@2.0.0']);
  });

  it('a hard link inside the image is its target read again; one to a file not read is listed', async () => {
    const dir = await imageOf([
      { compression: 'gzip', entries: [{ name: 'usr/lib/node_modules/a/package.json', body: pkgJson('a', '1.0.0') }] },
      {
        compression: 'gzip',
        entries: [
          { name: 'opt/node_modules/a/package.json', type: 'link', linkname: 'usr/lib/node_modules/a/package.json' },
          { name: 'srv/node_modules/z/package.json', type: 'link', linkname: 'etc/hostname' },
        ],
      },
    ]);
    const r = await catalogue(dir);
    assert.deepEqual(r.packages.map((p) => `${p.path} ${p.name}@${p.version}`), ['/opt/node_modules/a/package.json a@1.0.0', '/usr/lib/node_modules/a/package.json a@1.0.0']);
    assert.ok(r.skipped.some((s) => s.where === '/srv/node_modules/z/package.json' && /hard link to \/etc\/hostname, a file not read/.test(s.why)));
  });

  it('an image reference is read strictly: host, repository, tag or digest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseRegistryRef('registry.intranet:5000/app/api:1.4'), { host: 'registry.intranet:5000', repo: 'app/api', ref: '1.4' });
    assert.deepEqual(parseRegistryRef(`app/api@${d}`), { host: null, repo: 'app/api', ref: d });
    assert.deepEqual(parseRegistryRef('localhost/app'), { host: 'localhost', repo: 'app', ref: 'latest' });
    for (const bad of ['App/Api:1', 'app/../etc:1', 'app/api:1 2', 'app/api@sha256:xyz', 'reg:5000/', 'a//b', `app/api:${'t'.repeat(129)}`]) {
      assert.throws(() => parseRegistryRef(bad), (e: OukError) => e.code === 'USAGE', bad);
    }
  });
});
