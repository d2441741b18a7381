/**
 * CSAF 2.0 providers (OASIS CSAF 2.0, section 7) into `csaf/<provider>/`,
 * where the builder reads CSAF documents (builder/feeds/index.ts walks
 * `csaf/**.json`). The providers are listed in the file CSAF_PROVIDERS names
 * (csaf-providers.ts); for each, in the list's order:
 *
 *  1. its provider-metadata.json, checked where used (kept beside its
 *     documents: the builder passes it over);
 *  2. its public OpenPGP keys, each fetched from its `url` and kept only when
 *     its fingerprint is the metadata's; keys listed but none usable:
 *     CSAF_KEY_UNTRUSTED, nothing of that provider is written;
 *  3. what changed: its ROLIE feeds when it has any (section 7.3.2: preferred;
 *     TLP:WHITE/CLEAR feeds only — the others need credentials), else each
 *     directory distribution's changes.csv (and on the first run index.txt
 *     too), from the provider's watermark (the newest time read); each asked
 *     with the ETag/Last-Modified of the last finished run, so a listing that
 *     has not changed is a 304 without a body (BSI's feed is some 45 MB);
 *  4. each document changed since: fetched, its `.sha512` (else `.sha256`)
 *     checked, its `.asc` verified against the keys, its JSON checked against
 *     the CSAF 2.0 schema, then written whole. A document failing a check is
 *     skipped and listed with the reason, never written; one with a bad hash or
 *     signature (or none) is tried again on the next run, until it passes.
 *
 * Documents are taken oldest first and the watermark checkpointed as they
 * land, so a killed sync resumes where it stopped. One provider failing (its
 * metadata unreachable, its keys unusable) does not stop the others; the
 * source then fails with the first error, and that provider keeps its
 * watermark. Tolerated defects of a provider are reported as notes.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MAX_CSAF_BYTES } from '../../builder/feeds/index.ts';
import { csafNonDocument, validateCsaf } from '../../bundle/csaf.ts';
import { isOukError, OukError } from '../../lib/errors.ts';
import type { SourceContext, SyncSource } from './context.ts';
import { Defects, type Listed, type ProviderEntry, type ProviderMetadata, parseProviderList, readChangesCsv, readIndexTxt, readProviderMetadata, readRolieFeed, safeRel } from './csaf-providers.ts';
import { checkDigest, checkSignature, keyWithFingerprint, type PublicKey } from './csaf-verify.ts';
import { RecordFiles, writeFileAtomic } from './files.ts';
import type { UpstreamClient } from './http.ts';
import { eachLimit } from './pool.ts';
import { keyToIso } from './times.ts';

const MAX_LIST_FILE_BYTES = 1024 * 1024;
const MAX_METADATA_BYTES = 1024 * 1024;
const MAX_KEY_BYTES = 1024 * 1024;
const MAX_LISTING_BYTES = 128 * 1024 * 1024;
const MAX_HASH_BYTES = 4096;
const MAX_SIGNATURE_BYTES = 64 * 1024;
/** TLP labels whose feeds are public. */
const PUBLIC_TLP = new Set(['WHITE', 'CLEAR']);

/** A document skipped for its hash or signature: tried again next run. */
class Retry {
  constructor(readonly reason: string) {}
}

/** A listing's HTTP validators (ETag, Last-Modified), kept per URL between runs. */
type Validators = Record<string, { etag?: string; lastModified?: string }>;

interface ProviderRun {
  ctx: SourceContext;
  p: ProviderEntry;
  client: UpstreamClient;
  files: RecordFiles;
  keys: PublicKey[];
  defects: Defects;
  /** The validators of the listings as the last finished run read them (none on a first run). */
  held: Validators;
  /** Those of this run, kept once the provider is done. */
  seen: Validators;
}

/** Watermarks (time keys) per provider, and the documents to try again. */
interface CsafState {
  watermark: Record<string, string | null>;
  retry: Record<string, Listed[]>;
  validators: Record<string, Validators>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A document to try again, as the state file holds it (a hand-edited or damaged entry is dropped). */
function heldListed(v: unknown): Listed | null {
  if (!isRecord(v) || typeof v.url !== 'string' || !/^https?:\/\//.test(v.url) || typeof v.rel !== 'string' || safeRel(v.rel) !== v.rel) return null;
  if (v.time !== null && typeof v.time !== 'string') return null;
  const hashUrls = Array.isArray(v.hashUrls) ? v.hashUrls.filter((u): u is string => typeof u === 'string') : undefined;
  return { url: v.url, rel: v.rel, time: v.time, ...(hashUrls ? { hashUrls } : {}), ...(typeof v.signatureUrl === 'string' ? { signatureUrl: v.signatureUrl } : {}) };
}

function csafState(ctx: SourceContext): CsafState {
  const wm = ctx.state.watermark;
  const retry = ctx.state.extra.retry;
  const watermark: Record<string, string | null> = {};
  if (isRecord(wm)) for (const [k, v] of Object.entries(wm)) watermark[k] = typeof v === 'string' ? v : null;
  const pending: Record<string, Listed[]> = {};
  if (isRecord(retry)) for (const [k, v] of Object.entries(retry)) pending[k] = Array.isArray(v) ? v.map(heldListed).filter((d): d is Listed => d !== null) : [];
  const validators: Record<string, Validators> = {};
  const v = ctx.state.extra.validators;
  if (isRecord(v)) {
    for (const [k, byUrl] of Object.entries(v)) {
      if (!isRecord(byUrl)) continue;
      validators[k] = {};
      for (const [url, x] of Object.entries(byUrl)) {
        if (!isRecord(x)) continue;
        validators[k][url] = { ...(typeof x.etag === 'string' ? { etag: x.etag } : {}), ...(typeof x.lastModified === 'string' ? { lastModified: x.lastModified } : {}) };
      }
    }
  }
  return { watermark, retry: pending, validators };
}

async function readProviderList(file: string): Promise<ProviderEntry[]> {
  const unreadable = (why: string): OukError => new OukError('CSAF_PROVIDERS_INVALID', `CSAF_PROVIDERS=${file}: ${why} — point it at a readable file listing one provider a line`);
  const s = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw unreadable(e.code === 'ENOENT' ? 'no such file' : `cannot be read (${e.code ?? e.message})`);
  });
  if (!s.isFile()) throw unreadable('not a file');
  if (s.size > MAX_LIST_FILE_BYTES) throw unreadable(`${s.size} bytes, more than a provider list holds`);
  return parseProviderList(await readFile(file, 'utf8'), file);
}

async function loadKeys(run: ProviderRun, meta: ProviderMetadata): Promise<void> {
  const { ctx, p, client } = run;
  if (meta.keys.length === 0) {
    run.defects.add('lists no public_openpgp_keys: signatures not checked');
    return;
  }
  const refused: string[] = [];
  for (const k of meta.keys) {
    if (!k.fingerprint) {
      refused.push(`${k.url}: no fingerprint in provider-metadata.json`);
      continue;
    }
    const a = await client.getBytes(k.url, { maxBytes: MAX_KEY_BYTES, allow: [404, 410], what: 'its OpenPGP key' });
    if (a.status !== 200) {
      refused.push(`${k.url}: HTTP ${a.status}`);
      continue;
    }
    const key = await keyWithFingerprint(a.body, k.fingerprint);
    if (typeof key === 'string') refused.push(`${k.url}: ${key}`);
    else run.keys.push(key);
  }
  for (const r of refused) ctx.note(`${p.name}: OpenPGP key not used: ${r}`);
  if (run.keys.length === 0) {
    throw new OukError(
      'CSAF_KEY_UNTRUSTED',
      `none of the ${meta.keys.length} OpenPGP keys provider-metadata.json lists could be fetched with the fingerprint it names (${refused.join('; ').slice(0, 400)}): no document of it was written; ask the provider, or remove it from CSAF_PROVIDERS`,
    );
  }
}

/**
 * A listing (changes.csv, index.txt, a ROLIE feed), asked with the validators
 * of the last finished run: null when the provider answers 304 (nothing new
 * listed), or when it answers a status of `allow`.
 */
async function getListing(run: ProviderRun, url: string, what: string, allow: number[] = []): Promise<{ status: number; body: Buffer }> {
  const held = run.held[url];
  const headers: Record<string, string> = {};
  if (held?.etag) headers['if-none-match'] = held.etag;
  if (held?.lastModified) headers['if-modified-since'] = held.lastModified;
  const a = await run.client.getBytes(url, { maxBytes: MAX_LISTING_BYTES, headers, allow: [...allow, 304], what });
  if (a.status === 304) {
    if (held) run.seen[url] = held;
  } else if (a.status === 200) {
    const etag = a.headers.get('etag');
    const lastModified = a.headers.get('last-modified');
    if (etag || lastModified) run.seen[url] = { ...(etag ? { etag: etag.slice(0, 200) } : {}), ...(lastModified ? { lastModified: lastModified.slice(0, 100) } : {}) };
  }
  return { status: a.status, body: a.body };
}

/** What the provider's distributions list, each document once (its newest time). */
async function listing(run: ProviderRun, meta: ProviderMetadata, firstRun: boolean): Promise<Listed[]> {
  const { ctx, p, client, defects } = run;
  const bad = (what: string, why: string): void => ctx.skip(`${p.name}: ${what}`, why);
  const all: Listed[] = [];
  if (meta.rolieFeeds.length > 0) {
    for (const f of meta.rolieFeeds) {
      if (f.tlp !== null && !PUBLIC_TLP.has(f.tlp)) {
        ctx.note(`${p.name}: ROLIE feed ${f.url} is TLP:${f.tlp}: not synced (it needs credentials)`);
        continue;
      }
      const a = await getListing(run, f.url, 'its ROLIE feed');
      if (a.status === 304) continue;
      let feed: unknown;
      try {
        feed = JSON.parse(a.body.toString('utf8'));
      } catch (e) {
        throw client.invalid(f.url, `its ROLIE feed is not JSON (${(e as Error).message.slice(0, 100)})`);
      }
      const entries = readRolieFeed(feed, f.url, defects, bad);
      if (typeof entries === 'string') throw client.invalid(f.url, entries);
      all.push(...entries);
    }
  } else {
    for (const dir of meta.directories) {
      const changesUrl = new URL('changes.csv', dir).toString();
      const c = await getListing(run, changesUrl, 'changes.csv', [404]);
      if (c.status === 304) continue;
      if (c.status === 200) all.push(...readChangesCsv(c.body.toString('utf8'), dir, defects, bad));
      else defects.add(`${dir}: no changes.csv (index.txt read whole every run)`);
      if (firstRun || c.status !== 200) {
        const indexUrl = new URL('index.txt', dir).toString();
        const i = await getListing(run, indexUrl, 'index.txt', [404]);
        if (i.status === 200) all.push(...readIndexTxt(i.body.toString('utf8'), dir, bad));
        else if (i.status === 404 && c.status !== 200) throw client.invalid(dir, 'the directory distribution has neither changes.csv nor index.txt');
      }
    }
  }
  const byRel = new Map<string, Listed>();
  for (const d of all) {
    const had = byRel.get(d.rel);
    if (!had || (d.time !== null && (had.time === null || had.time < d.time))) byRel.set(d.rel, d);
  }
  return [...byRel.values()];
}

/** The first of `urls` that exists, fetched (a hash or signature file); null when none does. */
async function firstThere(client: UpstreamClient, urls: string[], maxBytes: number, what: string): Promise<{ url: string; body: Buffer } | null> {
  for (const url of urls) {
    const a = await client.getBytes(url, { maxBytes, allow: [404, 410], what });
    if (a.status === 200) return { url, body: a.body };
  }
  return null;
}

/** Fetches, checks and writes one document; a Retry or a reason (skipped for good), or null when it landed. */
async function syncDocument(run: ProviderRun, d: Listed): Promise<Retry | string | null> {
  const { ctx, client, keys, defects } = run;
  const a = await client.getBytes(d.url, { maxBytes: MAX_CSAF_BYTES, allow: [404, 410], what: d.rel });
  if (a.status !== 200) {
    defects.add(`listed documents that do not exist (HTTP ${a.status})`);
    return `listed, but the provider answers HTTP ${a.status} for ${d.url}`;
  }
  ctx.report.fetched++;
  // the hash: the entry's links (ROLIE), else the files beside the document; SHA-512 first
  const linked = d.hashUrls ?? [];
  if (d.hashUrls && linked.length === 0) defects.add('ROLIE entries without hash links (the .sha512/.sha256 beside the document read)');
  const candidates = linked.length ? [...linked.filter((u) => u.endsWith('.sha512')), ...linked.filter((u) => !u.endsWith('.sha512'))] : [`${d.url}.sha512`, `${d.url}.sha256`];
  const hash = await firstThere(client, candidates, MAX_HASH_BYTES, `${d.rel}'s hash`);
  if (!hash) return new Retry('no .sha512 or .sha256 beside it');
  const algorithm = hash.url.endsWith('.sha256') ? 'sha256' : 'sha512';
  const hashProblem = checkDigest(a.body, hash.body.toString('utf8'), algorithm);
  if (hashProblem) return new Retry(hashProblem);
  if (keys.length > 0) {
    const sig = await firstThere(client, [d.signatureUrl ?? `${d.url}.asc`], MAX_SIGNATURE_BYTES, `${d.rel}'s signature`);
    if (!sig) return new Retry('no .asc signature beside it, and the provider signs with an OpenPGP key');
    const sigProblem = await checkSignature(a.body, sig.body, keys);
    if (sigProblem) return new Retry(sigProblem);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(a.body); // written as received (the bytes the digest and signature are of), a leading BOM dropped
  } catch {
    return 'not UTF-8 (JSON is)';
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return `not JSON (${(e as Error).message.slice(0, 100)})`;
  }
  const nonDocument = csafNonDocument(doc);
  if (nonDocument) return `${nonDocument}, not a CSAF document`;
  const invalid = validateCsaf(doc);
  if (invalid) return invalid;
  const id = String((doc as { document: { tracking: { id: unknown } } }).document.tracking.id);
  if (`${id.toLowerCase().replace(/[^+\-a-z0-9]+/g, '_')}.json` !== d.rel.split('/').at(-1)) defects.add('documents whose file name is not the one their /document/tracking/id gives (section 5.1)');
  ctx.land(await run.files.put(`${run.p.name}/${d.rel}`, text));
  return null;
}

async function syncProvider(ctx: SourceContext, p: ProviderEntry, st: CsafState): Promise<void> {
  const client = ctx.client({ service: `CSAF provider ${p.name}`, urlVariable: 'CSAF_PROVIDERS' });
  // a first run (no watermark) asks for every listing whole
  const held = st.watermark[p.name] ? (st.validators[p.name] ?? {}) : {};
  const run: ProviderRun = { ctx, p, client, files: new RecordFiles(path.join(ctx.out, 'csaf'), () => false), keys: [], defects: new Defects(), held, seen: {} };
  try {
    const m = await client.getBytes(p.url, { maxBytes: MAX_METADATA_BYTES, what: 'provider-metadata.json' });
    let metaDoc: unknown;
    try {
      metaDoc = JSON.parse(m.body.toString('utf8'));
    } catch (e) {
      throw client.invalid(p.url, `provider-metadata.json is not JSON (${(e as Error).message.slice(0, 100)})`);
    }
    const meta = readProviderMetadata(metaDoc, p.url, run.defects);
    if (typeof meta === 'string') throw client.invalid(p.url, `provider-metadata.json: ${meta}`);
    await loadKeys(run, meta);
    const wm = st.watermark[p.name] ?? null;
    const listed = await listing(run, meta, wm === null);
    const pending = new Map<string, Listed>((st.retry[p.name] ?? []).map((d) => [d.rel, d]));
    const todo = listed.filter((d) => d.time === null || wm === null || d.time > wm);
    for (const d of pending.values()) if (!todo.some((t) => t.rel === d.rel)) todo.push(listed.find((l) => l.rel === d.rel) ?? d);
    todo.sort((a, b) => ((a.time ?? '') < (b.time ?? '') ? -1 : (a.time ?? '') > (b.time ?? '') ? 1 : 0));
    let mark = wm;
    const chunk = Math.max(1, ctx.tuning.csafConcurrency ?? 4);
    for (let i = 0; i < todo.length; i += chunk) {
      const part = todo.slice(i, i + chunk);
      await eachLimit(part, chunk, async (d) => {
        const r = await syncDocument(run, d);
        pending.delete(d.rel);
        if (r === null) return;
        if (r instanceof Retry) pending.set(d.rel, d);
        ctx.skip(`${p.name}/${d.rel}`, r instanceof Retry ? `${r.reason} (tried again next run)` : r);
      });
      // the watermark moves past this part only when the next document is strictly newer (ties stay together)
      const last = part.at(-1)!.time;
      const next = todo[i + chunk]?.time;
      if (last !== null && (mark === null || last > mark) && (next === undefined || (next !== null && next > last))) mark = last;
      st.watermark[p.name] = mark;
      st.retry[p.name] = [...pending.values()];
      await ctx.checkpoint();
      ctx.progress(Math.min(i + chunk, todo.length), todo.length, `${p.name} documents`);
    }
    const newest = listed.reduce<string | null>((n, d) => (d.time !== null && (n === null || d.time > n) ? d.time : n), mark);
    await writeFileAtomic(path.join(ctx.out, 'csaf', p.name, 'provider-metadata.json'), m.body);
    st.watermark[p.name] = newest;
    st.retry[p.name] = [...pending.values()];
    // kept only now: a run stopped before its documents landed must read its listings whole again
    st.validators[p.name] = run.seen;
    await ctx.checkpoint();
  } finally {
    for (const line of run.defects.lines()) ctx.note(`${p.name}: ${line}; tolerated`);
  }
}

export const csafSource: SyncSource = {
  name: 'csaf',
  async run(ctx: SourceContext): Promise<void> {
    const file = ctx.settings.csafProviders;
    if (!file) {
      ctx.note('CSAF_PROVIDERS is not set: no CSAF provider synced');
      return;
    }
    const providers = await readProviderList(file);
    const st = csafState(ctx);
    ctx.state.watermark = st.watermark;
    ctx.state.extra.retry = st.retry;
    ctx.state.extra.validators = st.validators;
    const reportWatermark = (): void => {
      ctx.report.watermark = Object.fromEntries(providers.map((p) => [p.name, st.watermark[p.name] ? keyToIso(st.watermark[p.name]!) : null]));
    };
    let failure: OukError | null = null;
    for (const p of providers) {
      try {
        await syncProvider(ctx, p, st);
      } catch (e) {
        if (!isOukError(e)) throw e;
        ctx.note(`${p.name}: failed: error[${e.code}] ${e.message}`);
        failure ??= new OukError(e.code, `${p.name}: ${e.message}`, { cause: e, retryable: e.retryable });
      }
      reportWatermark();
    }
    reportWatermark();
    if (failure) throw failure;
  },
};
