/**
 * `--image NAME=FILE.tar`: an OCI archive (the image layout as one tar file,
 * as `skopeo copy --all … oci-archive:FILE.tar` writes it) is carried exactly
 * as the layout directory it holds — same index digest, platforms and member
 * bytes — plain or gzipped; an archive with a link, a `..` name or an
 * absolute name is refused with INPUT_NOT_FOUND (exit 41) and nothing is
 * written outside the work directory; a gzipped archive that inflates past
 * what its entries may hold (zero blocks after the tar's end) is refused at
 * that bound.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { prepareImages, type ImageInput } from '../builder/images.ts';
import { isOukError } from '../lib/errors.ts';
import { tarBuffer, writeOciImage, type OciFixture } from './fixtures/oci-images.ts';

const run = promisify(execFile);
let tmp: string;
let layout: OciFixture;
let fromDir: ImageInput;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'image-archive-'));
  layout = await writeOciImage(path.join(tmp, 'scanner-oci'), { name: 'scanner', seed: 3 });
  [fromDir] = await prepareImages([`scanner=${layout.dir}`], path.join(tmp, 'work-dir'));
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const summary = (i: ImageInput) => ({ image: i.image, members: i.members.map((m) => [m.path, m.size, m.sha256]) });

function tarOf(entries: { name: string; type?: 'file' | 'symlink' | 'directory'; body?: string; linkname?: string }[]): Promise<Buffer> {
  return tarBuffer((pack) => {
    for (const e of entries) {
      if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? 'x' });
      else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
      else pack.entry({ name: e.name, size: Buffer.byteLength(e.body ?? '') }, e.body ?? '');
    }
  });
}

/** `archive` (one entry) with that entry's header claiming `size` bytes: a bomb's header, without the bytes. */
async function claimedSize(archive: Buffer, size: number): Promise<Buffer> {
  const header = Buffer.from(archive.subarray(0, 512));
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
  header.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return Buffer.concat([header, archive.subarray(512)]);
}

test('an OCI archive, plain or gzipped, is carried exactly as its layout directory', async () => {
  const plain = path.join(tmp, 'scanner.tar');
  await run('tar', ['-cf', plain, '-C', layout.dir, '.']);
  const [a] = await prepareImages([`scanner=${plain}`], path.join(tmp, 'work-plain'));
  assert.deepEqual(summary(a!), summary(fromDir));
  assert.equal(a!.image.indexDigest, layout.indexDigest);

  const gz = path.join(tmp, 'scanner.tar.gz');
  await run('tar', ['-czf', gz, '-C', layout.dir, 'oci-layout', 'index.json', 'blobs']);
  const [b] = await prepareImages([`scanner:2.0=${gz}`], path.join(tmp, 'work-gz'));
  assert.deepEqual(b!.members.map((m) => m.sha256).slice(2), fromDir.members.map((m) => m.sha256).slice(2), 'the same blobs');
  assert.equal(b!.image.tag, '2.0');
  assert.equal(b!.image.indexDigest, layout.indexDigest);
});

test('a hostile or broken archive is refused with INPUT_NOT_FOUND, and nothing lands outside the work directory', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['dotdot', await tarOf([{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: '../escaped', body: 'x' }]), /"\.\." path segment/],
    ['absolute', await tarOf([{ name: '/tmp/escaped-abs', body: 'x' }]), /absolute path/],
    ['symlink', await tarOf([{ name: 'blobs', type: 'directory' }, { name: 'blobs/sha256', type: 'symlink', linkname: '/etc' }]), /is a symlink/],
    ['twice', await tarOf([{ name: 'index.json', body: '{}' }, { name: 'index.json', body: '{}' }]), /appears twice/],
    ['not-a-layout', await tarOf([{ name: 'readme.txt', body: 'hello' }]), /no oci-layout file/],
    ['bomb', await claimedSize(await tarOf([{ name: 'blobs/sha256/big', body: 'x' }]), 8 * 1024 ** 3), /unpacks to more than/],
    ['garbage', gzipSync(Buffer.from('this is not a tar archive, only text that goes on '.repeat(40))), /not a usable OCI archive/],
  ];
  for (const [name, bytes, why] of cases) {
    const file = path.join(tmp, `${name}.tar`);
    await writeFile(file, bytes);
    const work = path.join(tmp, `work-${name}`);
    await assert.rejects(
      prepareImages([`evil=${file}`], work),
      (e: unknown) => isOukError(e) && e.code === 'INPUT_NOT_FOUND' && why.test(e.message),
      name,
    );
  }
  assert.equal(existsSync(path.join(tmp, 'work-dotdot', 'escaped')), false);
  assert.equal(existsSync('/tmp/escaped-abs'), false);
});

test('a gzipped archive that inflates past what its entries may hold is refused at that bound (zero blocks after the end)', async () => {
  // a 1.6 MB archive: an oci-layout file, then 1.5 GiB of zero blocks (tar's end marker, again and again)
  const zeros = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
  const tar = await tarOf([{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }]);
  const file = path.join(tmp, 'zero-bomb.tar.gz');
  await writeFile(file, Buffer.concat([gzipSync(tar), ...Array.from({ length: 96 }, () => zeros)]));
  await assert.rejects(
    prepareImages([`evil=${file}`], path.join(tmp, 'work-zero-bomb')),
    (e: unknown) => isOukError(e) && e.code === 'INPUT_NOT_FOUND' && /inflates to more than \d+ bytes of tar, more than its entries can hold/.test(e.message),
  );
});
