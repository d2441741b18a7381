/**
 * The streaming bundle reader against data hidden after the tar's end: a
 * bundle with gigabytes of gzip appended is refused as ARCHIVE_CORRUPT after a
 * megabyte of it, without inflating (or even reading) the rest.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createGzip } from 'node:zlib';
import { readBundle } from '../bundle/reader.ts';
import { isOukError } from '../lib/errors.ts';
import { writeSyntheticBundle } from './fixtures/synthetic-bundle.ts';
import { tmpDir } from './helpers/services.ts';

/** A file stream that counts the bytes it handed out. */
function counted(file: string): { stream: Readable; read: () => number } {
  let n = 0;
  const stream = fs.createReadStream(file);
  stream.on('data', (c: Buffer | string) => (n += c.length));
  return { stream, read: () => n };
}

describe('bundle reader', () => {
  it('reads a whole bundle; refuses one with gzip data after the end of the archive, early', async () => {
    const dir = tmpDir('bundle-reader');
    const file = path.join(dir, 'stella-ouk-2026-11-20.tar.gz');
    const b = await writeSyntheticBundle(file, { version: '2026-11-20', advisories: 30 });
    const ok = await readBundle(fs.createReadStream(file));
    assert.equal(ok.sha256, b.sha256);

    // 512 MiB of zeros as a second gzip member after the bundle: ~0.5 MiB on disk
    const padded = path.join(dir, 'padded.tar.gz');
    fs.copyFileSync(file, padded);
    const zeros = Buffer.alloc(1 << 20);
    await pipeline(
      Readable.from((function* () {
        for (let i = 0; i < 512; i++) yield zeros;
      })()),
      createGzip({ level: 9 }),
      fs.createWriteStream(padded, { flags: 'a' }),
    );
    const total = fs.statSync(padded).size;
    const input = counted(padded);
    await assert.rejects(readBundle(input.stream), (e) => isOukError(e) && e.code === 'ARCHIVE_CORRUPT' && /more data than its manifest accounts for/.test(e.message));
    assert.ok(input.read() < total / 2, `stopped early: read ${input.read()} of ${total} bytes`);
  });
});
