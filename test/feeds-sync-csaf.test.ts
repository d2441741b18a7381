/**
 * `stella feeds sync --source csaf` (CSAF 2.0 providers)
 * against loopback providers (test/helpers/upstream-csaf.ts) serving real
 * documents of ../shared/feeds-extra/csaf in both distributions — a directory
 * provider (changes.csv, index.txt) and a ROLIE provider (feed entries with
 * self, hash and signature links) — signed with an OpenPGP key made here,
 * with the faults real providers show: a document with a bad hash, one with a
 * bad signature, unsorted and unquoted changes.csv rows, a time without a
 * zone, an index entry that does not exist, a 503 then success, `ref` where
 * `rel` belongs, a directory_url without its slash, documents failing the
 * CSAF schema (CPANSA's). Then: a kit built from the synced directory carries
 * the advisories; a document changed upstream is the only one fetched again
 * (with those skipped for their hash or signature, tried again); a provider
 * whose key does not match its fingerprint fails alone (the real CLI, exit
 * 115, --json); a sync stopped mid-provider resumes from the watermark it
 * checkpointed; air-gapped, the sync refuses to start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildBundle } from '../builder/build.ts';
import { syncSettings } from '../lib/config.ts';
import { EXIT_CODES } from '../lib/errors.ts';
import { Defects, parseProviderList, readChangesCsv, readProviderMetadata, type ProviderMetadata } from '../publisher/sync/csaf-providers.ts';
import { syncFeeds, type SyncEvent, type SyncResult } from '../publisher/sync/index.ts';
import { timeKey } from '../publisher/sync/times.ts';
import type { SourceReport } from '../publisher/sync/report.ts';
import { generateKeyPair } from '../signing/keys.ts';
import { unpackKit } from './helpers/kit.ts';
import { childBaseEnv, runStella, sharedDir, tmpDir } from './helpers/services.ts';
import { CsafWorld, makePgpKey, sharedCsafDoc, type ServedDoc } from './helpers/upstream-csaf.ts';

const T1 = new Date('2026-12-01T00:00:00.000Z');
let world: CsafWorld;
let providersFile: string;
let worldNow = T1;

const DIR_DOCS = ['cisa/icsa-24-298-01.json', 'cisa/icsa-25-093-01.json', 'cisa/va-24-201-01.json', 'cisa/va-24-325-01.json', 'bsi/wid-sec-w-2024-0001.json', 'bsi/wid-sec-w-2024-0002.json', 'bsi/wid-sec-w-2024-0003.json', 'beckhoff/vde-2025-092.json', 'beckhoff/vde-2025-106.json', 'nozomi/nn-2023_14-01.json', 'nozomi/nn-2025_3-01.json'];
const ROLIE_DOCS = ['siemens/ssa-054046.json', 'siemens/ssa-063511.json', 'siemens/ssa-203374.json', 'siemens/ssa-523250.json', 'siemens/ssa-794185.json', 'festo/fsa-202601.json', 'oasis-examples/2022-evd-uc-07-001.json', 'oasis-examples/bsi-2022-0001.json', 'oasis-examples/cisco-sa-20180328-smi2.json', 'oasis-examples/rhsa-2021_5186.json', 'cpansa/cpansa-email-mime-2024-4140.json', 'cpansa/cpansa-mozilla-ca-2024-39689.json'];

function doc(provider: string, name: string): ServedDoc {
  return world.providers.get(provider)!.docs.find((d) => d.rel.endsWith(`/${name}`))!;
}

async function sync(dir: string, o: { events?: SyncEvent[]; list?: string; airgap?: boolean; concurrency?: number } = {}): Promise<SyncResult> {
  return syncFeeds({
    out: dir,
    sources: ['csaf'],
    settings: syncSettings({ CSAF_PROVIDERS: o.list ?? providersFile, STELLA_SYNC_BACKOFF_MS: '5', STELLA_SYNC_ATTEMPTS: '3' }),
    now: () => worldNow,
    ...(o.airgap ? { airgap: true } : {}),
    tuning: { csafConcurrency: o.concurrency ?? 4 },
    onEvent: (e) => o.events?.push(e),
    childEnv: process.env,
  });
}

function csaf(r: SyncResult): SourceReport {
  const x = r.reports.find((y) => y.source === 'csaf');
  assert.ok(x, 'a csaf report');
  return x;
}

function skipsOf(r: SourceReport): Record<string, string> {
  return Object.fromEntries(r.skippedRecords.map((s) => [s.id, s.reason]));
}

before(async () => {
  const key = await makePgpKey();
  const dirDocs = DIR_DOCS.map((f) => (f === 'cisa/va-24-325-01.json' ? sharedCsafDoc(f, '2024-11-20T18:33:57') : sharedCsafDoc(f))); // a zone-less time
  const rolieDocs = ROLIE_DOCS.map((f) => sharedCsafDoc(f));
  world = await CsafWorld.start([
    { name: 'dirprov', kind: 'directory', docs: dirDocs, key, missing: ['2024/juice-shop-sa-general.json'], changesStyle: 'unsorted-unquoted' },
    { name: 'rolieprov', kind: 'rolie', docs: rolieDocs, key, refInsteadOfRel: [rolieDocs[5]!.rel] },
    // its metadata names another key's fingerprint
    { name: 'badkey', kind: 'directory', docs: dirDocs.slice(0, 2), key, fingerprint: (await makePgpKey('someone else')).fingerprint },
  ]);
  doc('dirprov', 'wid-sec-w-2024-0003.json').badHash = true;
  doc('rolieprov', 'ssa-523250.json').badSignature = true;
  providersFile = path.join(tmpDir('csaf-providers'), 'providers.txt');
  fs.writeFileSync(providersFile, world.providerList(['dirprov', 'rolieprov']));
});

after(async () => {
  await world?.close();
});

test('the provider list: a URL or a domain a line, an optional name, comments; malformed lines refused with their number', () => {
  const list = parseProviderList('# providers\nredhat.com\ncisa https://www.cisa.gov/sites/default/files/csaf/provider-metadata.json  # trusted\n\n', 'p.txt');
  assert.deepEqual(list.map((p) => [p.name, p.url]), [
    ['redhat.com', 'https://redhat.com/.well-known/csaf/provider-metadata.json'],
    ['cisa', 'https://www.cisa.gov/sites/default/files/csaf/provider-metadata.json'],
  ]);
  assert.throws(() => parseProviderList('a.example\nfile:///etc/passwd\n', 'p.txt'), (e: Error & { code?: string }) => e.code === 'CSAF_PROVIDERS_INVALID' && /p\.txt line 2: file: is not http/.test(e.message));
  assert.throws(() => parseProviderList('x https://a.example/p.json\nx https://b.example/p.json\n', 'p.txt'), /line 2: the name x is taken by line 1/);
  assert.throws(() => parseProviderList('../up https://a.example/p.json\n', 'p.txt'), /not a provider name/);
  const defects = new Defects();
  const bad: string[] = [];
  const rows = readChangesCsv('a/1.json,2024-01-01T00:00:00Z\n"a/2.json","2025-01-01T00:00:00"\n"../x.json","2025-01-01T00:00:00Z"\nnot a row\n', 'https://p.example/white/', defects, (w) => bad.push(w));
  assert.deepEqual(rows.map((r) => [r.rel, r.time]), [['a/2.json', '2025-01-01T00:00:00.000000000Z'], ['a/1.json', '2024-01-01T00:00:00.000000000Z']]);
  assert.deepEqual(bad, ['changes.csv line 3', 'changes.csv line 4']);
  assert.deepEqual(defects.lines().sort(), ['changes.csv: not sorted newest first (read whole)', 'changes.csv: times without a zone (read as UTC)', 'changes.csv: unquoted rows']);
});

test("real providers' metadata is read (distributions, keys with fingerprints); a trailing slash missing is a defect, a wrong version refused", () => {
  const read = (f: string, d = new Defects()): ProviderMetadata | string => readProviderMetadata(JSON.parse(fs.readFileSync(path.join(sharedDir, f), 'utf8')), 'https://p.example/.well-known/csaf/provider-metadata.json', d);
  const cisa = read('feeds-extra/csaf/cisa/provider-metadata.json') as ProviderMetadata;
  assert.deepEqual([cisa.rolieFeeds.length, cisa.directories.length, cisa.keys.map((k) => k.fingerprint)], [2, 0, ['144AED0A57BE7D4AE835D9D8CAC5AC4F74164B17']]);
  const defects = new Defects();
  const beckhoff = read('feeds-extra/csaf/beckhoff/provider-metadata.json', defects) as ProviderMetadata;
  assert.deepEqual(beckhoff.directories, ['https://beckhoff.csaf-tp.certvde.com/.well-known/csaf/white/']);
  assert.deepEqual(defects.lines(), ['directory_url without its trailing slash (one added)']);
  assert.equal((read('feeds-extra/csaf/siemens/provider-metadata.json') as ProviderMetadata).keys.length, 4);
  const juice = read('upstream/csaf/juice-shop/.well-known/csaf/provider-metadata.json') as ProviderMetadata;
  assert.deepEqual([juice.directories, juice.keys.length], [['http://localhost:3000/.well-known/csaf/'], 3]);
  assert.equal(readProviderMetadata({ metadata_version: '1.0' }, 'https://p.example/x.json', new Defects()), 'metadata_version is "1.0", not "2.0"');
  assert.match(String(readProviderMetadata({ ...JSON.parse(fs.readFileSync(path.join(sharedDir, 'feeds-extra/csaf/cisa/provider-metadata.json'), 'utf8')), public_openpgp_keys: [{ url: 'https://k.example/k.asc', fingerprint: 'not hex' }] }, 'https://p.example/x.json', new Defects())), /fingerprint "not hex" is not hex/);
});

describe('a first sync of both distributions, a kit from it, then an incremental sync', () => {
  let base: string;
  const dir = (): string => path.join(base, 'feeds');
  let first: SyncResult;
  const events: SyncEvent[] = [];
  let mark = 0;

  before(async () => {
    base = tmpDir('csaf-sync');
    world.faults.push({ pathEnds: '/icsa-24-298-01.json', times: 1, status: 503 });
    mark = world.log.length;
    first = await sync(dir(), { events });
  });

  test('every good document lands in csaf/<provider>/<year>/; a bad hash, a bad signature, a 404 and schema failures are skipped and listed', () => {
    const r = csaf(first);
    assert.ok(first.ok, JSON.stringify(r.error));
    const skips = skipsOf(r);
    assert.match(skips['dirprov/2024/wid-sec-w-2024-0003.json']!, /^sha512 mismatch: .* \(tried again next run\)$/);
    assert.match(skips['rolieprov/2021/ssa-523250.json']!, /^bad signature: .* \(tried again next run\)$/);
    assert.match(skips['dirprov/2024/juice-shop-sa-general.json']!, /^listed, but the provider answers HTTP 404/);
    for (const c of ['rolieprov/2024/cpansa-email-mime-2024-4140.json', 'rolieprov/2024/cpansa-mozilla-ca-2024-39689.json']) {
      assert.match(skips[c]!, /CSAF 2\.0 schema: \/document\/tracking\/current_release_date must match format "date-time"/);
    }
    assert.equal(r.skipped, 5);
    assert.deepEqual([r.fetched, r.added, r.modified], [DIR_DOCS.length + ROLIE_DOCS.length, DIR_DOCS.length + ROLIE_DOCS.length - 4, 0]);
    const written = (p: string): string[] => (fs.readdirSync(path.join(dir(), 'csaf', p), { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();
    assert.equal(written('dirprov').length, DIR_DOCS.length - 1 + 1, 'ten documents and the provider metadata');
    assert.ok(written('dirprov').includes('2024/icsa-24-298-01.json') && !written('dirprov').includes('2024/wid-sec-w-2024-0003.json'));
    assert.ok(!written('rolieprov').includes('2021/ssa-523250.json'));
    assert.ok(written('rolieprov').includes('provider-metadata.json'));
    // the bytes served, unchanged
    const d = doc('dirprov', 'vde-2025-092.json');
    assert.deepEqual(fs.readFileSync(path.join(dir(), 'csaf/dirprov', d.rel)), d.body);
    assert.deepEqual(r.watermark, { dirprov: '2026-02-12T09:00:00.000Z', rolieprov: '2026-06-09T00:00:00.000Z' });
  });

  test("the 503 was retried; the requests counted are the servers'; the defects are reported, not fatal", () => {
    const r = csaf(first);
    const retries = events.filter((e) => e.kind === 'retry');
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.kind === 'retry' && retries[0]!.notice.status, 503);
    assert.equal(r.requests, world.log.length - mark);
    // dirprov: metadata, key, changes.csv, index.txt; per document its .json, .sha512 and .asc (the bad hash: no .asc; the 404: only its .json; one 503)
    // rolieprov: metadata, key, feed; per document its three
    assert.equal(r.requests, 4 + 10 * 3 + 2 + 1 + 1 + 3 + ROLIE_DOCS.length * 3);
    const notes = r.notes.join('\n');
    for (const defect of [
      /dirprov: directory_url without its trailing slash \(one added\); tolerated/,
      /dirprov: changes.csv: unquoted rows \(\d+ times\); tolerated/,
      /dirprov: changes.csv: not sorted newest first \(read whole\); tolerated/,
      /dirprov: changes.csv: times without a zone \(read as UTC\); tolerated/,
      /dirprov: listed documents that do not exist \(HTTP 404\); tolerated/,
      /rolieprov: ROLIE feed: `ref` where `rel` belongs in entry links \(2 times\); tolerated/,
      /rolieprov: ROLIE feed: times without a zone \(read as UTC\) \(2 times\); tolerated/,
    ]) {
      assert.match(notes, defect);
    }
    assert.doesNotMatch(notes, /section 5\.1/, "every real document's file name is the one its tracking id gives");
  });

  test('a kit built from the synced directory carries the CSAF advisories', async () => {
    const work = tmpDir('csaf-kit');
    const kp = await generateKeyPair();
    fs.writeFileSync(path.join(work, 'cosign.key'), kp.privateKeyPem, { mode: 0o600 });
    const warnings: unknown[] = [];
    const kit = await buildBundle({ feedsDir: dir(), keyPath: path.join(work, 'cosign.key'), out: path.join(work, 'kit.tar.gz'), version: '2026-12-01', expiresDays: 3650, onWarning: (w) => warnings.push(w) });
    assert.deepEqual(warnings, [], 'the builder accepts every document the sync wrote');
    const feed = kit.manifest.feeds.find((f) => f.name === 'csaf');
    assert.ok(feed && feed.records > 20, `${feed?.records} CSAF vulnerabilities`);
    const unpacked = await unpackKit(kit.out, tmpDir('csaf-kit-unpacked'));
    const advisories = fs.readFileSync(path.join(unpacked, 'db/advisories.tsv'), 'utf8');
    for (const cve of ['CVE-2025-41726', 'CVE-2024-46887']) assert.ok(advisories.includes(cve), `${cve} (Beckhoff via the directory, Siemens via ROLIE) is in the kit`);
  });

  test('a document changed upstream is the only one fetched again, with those skipped for their hash or signature (tried again)', async () => {
    const changed = doc('dirprov', 'vde-2025-092.json');
    const edited = JSON.parse(changed.body.toString('utf8')) as { document: { title: string } };
    edited.document.title += ' (update)';
    changed.body = Buffer.from(JSON.stringify(edited, null, 2));
    changed.time = '2026-11-30T12:00:00.000Z';
    doc('dirprov', 'wid-sec-w-2024-0003.json').badHash = false; // the provider fixed its hash file
    worldNow = new Date(T1.getTime() + 86_400_000);
    const m = world.log.length;
    const second = await sync(dir());
    const r = csaf(second);
    assert.ok(second.ok, JSON.stringify(r.error));
    assert.deepEqual(world.documentsAsked(m).sort(), ['/dirprov/.well-known/csaf/white/2024/wid-sec-w-2024-0003.json', '/dirprov/.well-known/csaf/white/2026/vde-2025-092.json', '/rolieprov/white/2021/ssa-523250.json']);
    assert.deepEqual([r.fetched, r.added, r.modified, r.skipped], [3, 1, 1, 1]);
    assert.equal(r.requests, world.log.length - m);
    assert.equal(r.requests, 3 + 3 + 3 + 3 + 3, 'metadata, key and changes.csv (no index.txt); metadata, key and feed; three documents with their hash and signature');
    const listings = world.log.slice(m).filter((q) => /changes\.csv|index\.txt|feed-tlp-white/.test(q.path));
    assert.deepEqual(listings.map((q) => [q.path.split('/')[1], q.path.split('/').at(-1), q.status]), [['dirprov', 'changes.csv', 200], ['rolieprov', 'feed-tlp-white.json', 304]], 'the unchanged feed: a 304 without a body');
    assert.deepEqual(fs.readFileSync(path.join(dir(), 'csaf/dirprov/2026/vde-2025-092.json')), changed.body);
    assert.ok(fs.existsSync(path.join(dir(), 'csaf/dirprov/2024/wid-sec-w-2024-0003.json')), 'its hash fixed, it lands');
    assert.deepEqual(r.watermark, { dirprov: '2026-11-30T12:00:00.000Z', rolieprov: '2026-06-09T00:00:00.000Z' });
  });
});

test('a provider whose key does not match its fingerprint fails alone (the real CLI: exit 115, --json), nothing of it written', async () => {
  const work = tmpDir('csaf-badkey');
  const list = path.join(work, 'providers.txt');
  fs.writeFileSync(list, world.providerList(['badkey', 'dirprov']));
  const out = path.join(work, 'feeds');
  const r = await runStella(['feeds', 'sync', '--out', out, '--source', 'csaf', '--json'], { cwd: work, env: childBaseEnv({ CSAF_PROVIDERS: list, STELLA_SYNC_BACKOFF_MS: '5' }) });
  assert.equal(r.code, EXIT_CODES.CSAF_KEY_UNTRUSTED, r.stderr);
  assert.equal(EXIT_CODES.CSAF_KEY_UNTRUSTED, 115);
  assert.match(r.stderr, /error\[CSAF_KEY_UNTRUSTED\]: csaf: badkey: none of the 1 OpenPGP keys .* not [0-9A-F]{40} as provider-metadata.json says/);
  const report = (JSON.parse(r.stdout) as { sources: SourceReport[] }).sources.find((s) => s.source === 'csaf')!;
  assert.equal(report.status, 'failed');
  assert.equal(report.added, DIR_DOCS.length, 'dirprov synced all the same');
  assert.deepEqual(report.watermark, { badkey: null, dirprov: '2026-11-30T12:00:00.000Z' });
  assert.ok(!fs.existsSync(path.join(out, 'csaf/badkey')));
});

test('a sync stopped mid-provider (a document down for every try) resumes from the watermark it checkpointed: what landed is not fetched again', async () => {
  const dir = path.join(tmpDir('csaf-resume'), 'feeds');
  const list = path.join(path.dirname(dir), 'providers.txt');
  fs.writeFileSync(list, world.providerList(['dirprov']));
  const docs = world.providers.get('dirprov')!.docs;
  const byTime = [...docs].sort((a, b) => (timeKey(a.time)! < timeKey(b.time)! ? -1 : 1));
  const down = byTime[5]!;
  world.faults.push({ pathEnds: `/${down.rel}`, times: 3, status: 503 });
  // oldest first, two at a time: [the index-only 404, #0] [#1, #2] [#3, #4] then [#5 down, #6]
  const r1 = await sync(dir, { list, concurrency: 2 });
  const rep1 = csaf(r1);
  assert.equal(rep1.status, 'failed');
  assert.equal(rep1.error?.code, 'UPSTREAM_UNAVAILABLE');
  assert.match(rep1.error!.message, /^dirprov: CSAF provider dirprov did not answer/);
  const state = JSON.parse(fs.readFileSync(path.join(dir, '.sync/state.json'), 'utf8')) as { sources: { csaf: { watermark: Record<string, string> } } };
  const wm = state.sources.csaf.watermark.dirprov!;
  assert.equal(wm, timeKey(byTime[4]!.time), 'the watermark of the last part that landed whole');
  const m = world.log.length;
  const r2 = await sync(dir, { list });
  assert.ok(r2.ok, JSON.stringify(csaf(r2).error));
  const base = '/dirprov/.well-known/csaf/white/';
  assert.deepEqual(world.documentsAsked(m).sort(), byTime.slice(5).map((d) => `${base}${d.rel}`).sort(), 'only the documents newer than the watermark');
  assert.equal((fs.readdirSync(path.join(dir, 'csaf/dirprov'), { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).length, docs.length + 1);
});

test('air-gapped (STELLA_AIRGAP=true) the sync refuses to start: not one request, nothing written', async () => {
  const dir = path.join(tmpDir('csaf-airgap'), 'feeds');
  const m = world.log.length;
  await assert.rejects(sync(dir, { airgap: true }), (e: Error & { code?: string }) => e.code === 'AIRGAP_VIOLATION' && /CSAF providers/.test(e.message));
  assert.equal(world.log.length, m);
  assert.ok(!fs.existsSync(dir));
});
