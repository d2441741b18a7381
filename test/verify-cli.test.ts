/**
 * `stella ouk verify` through the real CLI (node bin/stella.js) on real
 * tarballs: small synthetic bundles written by bundle/writer.ts, hostile ones
 * packed with tar-stream directly, all signed with real keys. Every tamper class
 * must give its own exit code and exactly one `error[CODE]: ...` line.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { pack as tarPack, type Pack } from 'tar-stream';
import { EXIT_CODES, type ErrorCode } from '../lib/errors.ts';
import { FORMAT_VERSION, type Manifest, type ManifestMember, serializeManifest } from '../bundle/manifest.ts';
import { writeBundle } from '../bundle/writer.ts';
import { generateKeyPair, writeSignatureFiles } from '../signing/index.ts';

type EntryHeader = Parameters<Pack['entry']>[0];

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stella = path.join(repoRoot, 'bin', 'stella.js');

let dir: string;
let keyA: { key: string; pub: string };
let keyB: { key: string; pub: string };

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Body {
  path: string;
  data: Buffer;
  role: ManifestMember['role'];
}

function bodies(): Body[] {
  const adv: string[] = [];
  const alias: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const id = `CVE-2024-${String(10000 + i)}`;
    adv.push(`${id}\tsummary ${i}\tHIGH\t7.5\t\\N\t2024-01-01T00:00:00Z\t2024-02-01T00:00:00Z\t\\N\tnvd\t${sha(Buffer.from(id))}\t{"id":"${id}"}`);
    alias.push(`${id}\tGHSA-${i.toString(36)}`);
  }
  return [
    { path: 'db/advisories.tsv', data: Buffer.from(adv.join('\n') + '\n'), role: 'db' },
    { path: 'db/aliases.tsv', data: Buffer.from(alias.join('\n') + '\n'), role: 'db' },
    { path: 'sbom.spdx.json', data: Buffer.from('{"spdxVersion":"SPDX-2.3"}\n'), role: 'sbom' },
  ];
}

function manifestFor(members: Body[]): Manifest {
  return {
    formatVersion: FORMAT_VERSION,
    bundleVersion: '2026-11-28',
    kind: 'full',
    created: '2026-11-28T00:00:00.000Z',
    expires: '2099-12-28T00:00:00.000Z',
    generator: 'stella-ouk test',
    feeds: [{ name: 'nvd', snapshot: '2026-11-27T23:00:00.000Z', records: 2000, skipped: 0 }],
    db: { digest: 'ab'.repeat(32), advisories: 2000 },
    members: members.map((m) => ({ path: m.path, size: m.data.length, sha256: sha(m.data), role: m.role })),
  };
}

/** A valid bundle via bundle/writer.ts; `manifest` may be altered before writing. */
async function makeBundle(name: string, alter?: (m: Manifest) => void): Promise<string> {
  const members = bodies();
  const manifest = manifestFor(members);
  alter?.(manifest);
  const file = path.join(dir, name);
  await writeBundle(
    createWriteStream(file),
    manifest,
    members.map((m) => ({ path: m.path, size: m.data.length, open: () => Readable.from([m.data]) })),
  );
  return file;
}

/** A tarball packed entry by entry with tar-stream, to craft what the writer never would. */
async function packRaw(name: string, entries: { header: EntryHeader; body?: Buffer }[]): Promise<string> {
  const file = path.join(dir, name);
  const pack = tarPack();
  const done = pipeline(pack, createGzip(), createWriteStream(file));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(e.header, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return file;
}

function fileHeader(name: string, size: number): EntryHeader {
  return { name, size, type: 'file', mode: 0o644, mtime: new Date('2026-11-28T00:00:00Z') };
}

function manifestEntry(members: Body[]): { header: EntryHeader; body: Buffer } {
  const body = Buffer.from(serializeManifest(manifestFor(members)));
  return { header: fileHeader('manifest.json', body.length), body };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function verify(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('OUK_TRUSTED_KEYS' in env)) delete childEnv.OUK_TRUSTED_KEYS;
  return new Promise((resolve) => {
    execFile(process.execPath, [stella, 'ouk', 'verify', ...args], { env: childEnv }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exactly one line on stderr, `error[CODE]: ...`, nothing on stdout, and CODE's exit status. */
function assertFails(r: Run, code: ErrorCode, message?: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], new RegExp(`^error\\[${code}\\]: `), r.stderr);
  if (message) assert.match(lines[0], message);
  assert.equal(r.code, EXIT_CODES[code], `exit code for ${code}; stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stdout, /Verified OK/);
}

let good: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stella-verify-'));
  for (const [name, set] of [['a', (k: typeof keyA) => (keyA = k)], ['b', (k: typeof keyA) => (keyB = k)]] as const) {
    const { privateKeyPem, publicKeyPem } = await generateKeyPair();
    const k = { key: path.join(dir, `${name}.key`), pub: path.join(dir, `${name}.pub`) };
    await writeFile(k.key, privateKeyPem, { mode: 0o600 });
    await writeFile(k.pub, publicKeyPem);
    set(k);
  }
  good = await makeBundle('good.tar.gz');
  await writeSignatureFiles(good, keyA.key);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Copies the good bundle and its signature files under a new name (to tamper with one of them). */
async function copyGood(name: string, which: { sig?: boolean; sigstore?: boolean } = { sig: true, sigstore: true }): Promise<string> {
  const sub = path.join(dir, name);
  await mkdir(sub, { recursive: true });
  const file = path.join(sub, 'bundle.tar.gz');
  await copyFile(good, file);
  if (which.sig) await copyFile(`${good}.sig`, `${file}.sig`);
  if (which.sigstore) await copyFile(`${good}.sigstore.json`, `${file}.sigstore.json`);
  return file;
}

describe('stella ouk verify', { concurrency: 4 }, () => {
  test('a good bundle: Verified OK, sha256, summary; exit 0', async () => {
    const r = await verify([good, '--key', keyA.pub]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'Verified OK');
    assert.equal(lines[1], `sha256:${sha(await readFile(good))}`);
    assert.match(r.stdout, /bundle: +2026-11-28 \(full\)/);
    assert.match(r.stdout, /created: +2026-11-28T00:00:00.000Z/);
    assert.match(r.stdout, /expires: +2099-12-28T00:00:00.000Z/);
    assert.match(r.stdout, /members: +3 \+ manifest.json/);
    assert.match(r.stdout, /good\.tar\.gz\.sigstore\.json verified/);
    assert.equal(r.stderr, '');
  });

  test('keys default to OUK_TRUSTED_KEYS (comma-separated); the key that verifies is named', async () => {
    const r = await verify([good], { OUK_TRUSTED_KEYS: `${keyB.pub},${keyA.pub}` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`signed by: ${keyA.pub.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  test('--json prints the result as JSON', async () => {
    const r = await verify([good, '--key', keyA.pub, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { verified: boolean; sha256: string; manifest: Manifest; key: { path: string } };
    assert.equal(out.verified, true);
    assert.equal(out.sha256, sha(await readFile(good)));
    assert.equal(out.manifest.members.length, 3);
    assert.equal(out.key.path, keyA.pub);
  });

  test('no trusted key configured: KEY_NOT_TRUSTED', async () => {
    assertFails(await verify([good]), 'KEY_NOT_TRUSTED', /OUK_TRUSTED_KEYS/);
  });

  test('unreadable key: KEY_INVALID', async () => {
    assertFails(await verify([good, '--key', path.join(dir, 'missing.pub')]), 'KEY_INVALID', /cannot read the trusted key/);
    assertFails(await verify([good, '--key', keyA.key]), 'KEY_INVALID', /private key/);
  });

  test('a flipped byte the gzip layer does not notice (header mtime): SIGNATURE_MISMATCH', async () => {
    const file = await copyGood('flip-header');
    const b = await readFile(file);
    b[4] ^= 0x01; // gzip MTIME: ignored by gunzip, covered by the signature
    await writeFile(file, b);
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MISMATCH', /file corrupted or not signed by this key — re-download both the tarball and its \.sig/);
  });

  test('a flipped byte in the compressed data fails (signature or structure), never passes', async () => {
    const file = await copyGood('flip-middle');
    const b = await readFile(file);
    b[Math.floor(b.length / 2)] ^= 0x40;
    await writeFile(file, b);
    const r = await verify([file, '--key', keyA.pub]);
    assert.ok([EXIT_CODES.SIGNATURE_MISMATCH, EXIT_CODES.ARCHIVE_CORRUPT].includes(r.code as 10 | 20), `got ${r.code}: ${r.stderr}`);
    assertFails(r, r.code === EXIT_CODES.ARCHIVE_CORRUPT ? 'ARCHIVE_CORRUPT' : 'SIGNATURE_MISMATCH');
  });

  test('a flipped byte in the gzip trailer: ARCHIVE_CORRUPT wins over the failed signature', async () => {
    const file = await copyGood('flip-trailer');
    const b = await readFile(file);
    b[b.length - 1] ^= 0x01; // ISIZE
    await writeFile(file, b);
    assertFails(await verify([file, '--key', keyA.pub]), 'ARCHIVE_CORRUPT', /re-download/);
  });

  test('truncated gzip: ARCHIVE_CORRUPT', async () => {
    const file = await copyGood('truncated');
    const size = (await readFile(file)).length;
    await truncate(file, Math.floor(size * 0.6));
    assertFails(await verify([file, '--key', keyA.pub]), 'ARCHIVE_CORRUPT', /truncated/);
  });

  test('not a tarball at all, signed validly: ARCHIVE_CORRUPT', async () => {
    const file = path.join(dir, 'plain.txt');
    await writeFile(file, 'this is not a gzip file\n');
    await writeSignatureFiles(file, keyA.key);
    assertFails(await verify([file, '--key', keyA.pub]), 'ARCHIVE_CORRUPT');
  });

  test('wrong key with a .sigstore.json: KEY_NOT_TRUSTED (the hint names another key)', async () => {
    assertFails(await verify([good, '--key', keyB.pub]), 'KEY_NOT_TRUSTED', /does not trust/);
  });

  test('wrong key, .sig only: SIGNATURE_MISMATCH', async () => {
    const file = await copyGood('wrong-key-sig-only', { sig: true });
    assertFails(await verify([file, '--key', keyB.pub]), 'SIGNATURE_MISMATCH', /not signed by this key/);
  });

  test('missing .sig: SIGNATURE_MISSING', async () => {
    const file = await copyGood('no-sig', { sigstore: true });
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MISSING', /\.sig/);
    assertFails(await verify([good, '--key', keyA.pub, '--signature', path.join(dir, 'nope.sig')]), 'SIGNATURE_MISSING', /--signature/);
  });

  test('garbled .sig: SIGNATURE_MALFORMED', async () => {
    const file = await copyGood('garbled-sig');
    await writeFile(`${file}.sig`, 'definitely *not* base64');
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MALFORMED', /garbled/);
    await writeFile(`${file}.sig`, Buffer.from('valid base64 but not ASN.1 DER').toString('base64'));
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MALFORMED', /garbled/);
  });

  test('--signature points elsewhere; the .sig text may carry whitespace', async () => {
    const other = path.join(dir, 'elsewhere.sig');
    await writeFile(other, `${await readFile(`${good}.sig`, 'utf8')}\n`);
    const r = await verify([good, '--key', keyA.pub, '--signature', other]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Verified OK\nsha256:[0-9a-f]{64}\n/);
  });

  test('garbled or foreign .sigstore.json: SIGNATURE_MALFORMED / SIGNATURE_MISMATCH', async () => {
    const file = await copyGood('garbled-sigstore');
    await writeFile(`${file}.sigstore.json`, '{"not":"a bundle"}');
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MALFORMED', /sigstore\.json/);
    // A genuine bundle of another file signed by the same key.
    const otherFile = path.join(dir, 'other.bin');
    await writeFile(otherFile, 'other');
    await writeSignatureFiles(otherFile, keyA.key);
    await copyFile(`${otherFile}.sigstore.json`, `${file}.sigstore.json`);
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MISMATCH', /another file/);
  });

  test('member checksum mismatch in a validly signed tarball: MEMBER_CHECKSUM_MISMATCH', async () => {
    const file = await makeBundle('bad-hash.tar.gz', (m) => {
      m.members[1].sha256 = 'cd'.repeat(32);
    });
    await writeSignatureFiles(file, keyA.key);
    assertFails(await verify([file, '--key', keyA.pub]), 'MEMBER_CHECKSUM_MISMATCH', /db\/aliases\.tsv/);
  });

  test('a member altered after signing (valid archive, manifest rehashed): SIGNATURE_MISMATCH wins', async () => {
    const members = bodies();
    members[0].data = Buffer.from(members[0].data.toString().replace('summary 7\t', 'summary X\t'));
    const manifest = manifestFor(members);
    const file = await copyGood('altered');
    await writeBundle(createWriteStream(file), manifest, members.map((m) => ({ path: m.path, size: m.data.length, open: () => Readable.from([m.data]) })));
    assertFails(await verify([file, '--key', keyA.pub]), 'SIGNATURE_MISMATCH');
  });

  test('a listed member missing from the tarball: MEMBER_MISSING', async () => {
    const members = bodies();
    const file = await packRaw('missing-member.tar.gz', [
      manifestEntry(members),
      { header: fileHeader(members[0].path, members[0].data.length), body: members[0].data },
    ]);
    await writeSignatureFiles(file, keyA.key);
    assertFails(await verify([file, '--key', keyA.pub]), 'MEMBER_MISSING', /db\/aliases\.tsv/);
  });

  test('an unlisted member in the tarball: MEMBER_UNEXPECTED', async () => {
    const members = bodies().slice(0, 1);
    const extra = Buffer.from('surprise\n');
    const file = await packRaw('unexpected-member.tar.gz', [
      manifestEntry(members),
      { header: fileHeader(members[0].path, members[0].data.length), body: members[0].data },
      { header: fileHeader('db/extra.tsv', extra.length), body: extra },
    ]);
    await writeSignatureFiles(file, keyA.key);
    assertFails(await verify([file, '--key', keyA.pub]), 'MEMBER_UNEXPECTED', /db\/extra\.tsv/);
  });

  const hostile: [string, (m: Body) => { header: EntryHeader; body?: Buffer }[], RegExp][] = [
    ['../evil', (m) => [{ header: fileHeader('../evil', m.data.length), body: m.data }], /"\.\."/],
    ['an absolute path', (m) => [{ header: fileHeader('/tmp/evil', m.data.length), body: m.data }], /absolute/],
    ['a symlink', () => [{ header: { name: 'db/link', type: 'symlink', linkname: '/etc/passwd', mode: 0o777, mtime: new Date(0) } }], /symlink/],
    ['a hard link', () => [{ header: { name: 'db/hard', type: 'link', linkname: 'manifest.json', mode: 0o644, mtime: new Date(0) } }], /link/],
    [
      'a duplicate name',
      (m) => [
        { header: fileHeader(m.path, m.data.length), body: m.data },
        { header: fileHeader(m.path, m.data.length), body: m.data },
      ],
      /second tar entry/,
    ],
  ];
  for (const [what, entries, message] of hostile) {
    test(`hostile entry (${what}), signed validly: UNSAFE_ENTRY`, async () => {
      const members = bodies().slice(0, 1);
      const file = await packRaw(`hostile-${what.replace(/\W+/g, '-')}.tar.gz`, [manifestEntry(members), ...entries(members[0])]);
      await writeSignatureFiles(file, keyA.key);
      assertFails(await verify([file, '--key', keyA.pub]), 'UNSAFE_ENTRY', message);
    });
  }

  test('a missing tarball: INPUT_NOT_FOUND', async () => {
    assertFails(await verify([path.join(dir, 'nope.tar.gz'), '--key', keyA.pub]), 'INPUT_NOT_FOUND');
  });
});
