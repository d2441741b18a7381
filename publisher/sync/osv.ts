/**
 * OSV's bucket into `osv/<Ecosystem>/<ID>.json`, one record a file, as OSV
 * exports them.
 *
 * Ecosystems: OSV_ECOSYSTEMS, else every line of the bucket's
 * `ecosystems.txt`. Per ecosystem:
 *   first run    the head of `modified_id.csv` gives the watermark (the newest
 *                `modified` before the archive is read), then `all.zip` is
 *                downloaded into DIR/.sync/osv/ (resumed with a Range request
 *                when a killed run left part of it) and read entry by entry
 *                with yauzl, each entry bounded; the archive is deleted after.
 *   later runs   `modified_id.csv` (newest first) is streamed with csv-parse
 *                and read only down to the watermark; each record listed is
 *                fetched as `<ID>.json` unless the copy held is as new (so a
 *                resumed run fetches only what it lacks); the watermark moves to
 *                the newest `modified` once every one is written.
 * A file that is not sorted newest first is read to its end. Every record is
 * checked with the builder's own OSV reader (and its id against its name);
 * one that fails is skipped and listed.
 */
import { mkdir, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { parse } from 'csv-parse';
import yauzl from 'yauzl';
import { isObject, MalformedRecord } from '../../builder/feeds/fields.ts';
import { normaliseOsv } from '../../builder/feeds/osv.ts';
import type { SourceContext, SyncSource } from './context.ts';
import { moveIntoPlace, RecordFiles, RECORD_ID, safeSegment } from './files.ts';
import type { UpstreamClient } from './http.ts';
import { eachLimit } from './pool.ts';
import { keyToIso, timeKey } from './times.ts';

const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const MAX_ZIP_BYTES = 16 * 1024 * 1024 * 1024;
const MAX_CSV_BYTES = 1024 * 1024 * 1024;
const MAX_ENTRIES = 5_000_000;
const MAX_ECOSYSTEMS_BYTES = 64 * 1024;

interface EcoCursor {
  /** the newest `modified` listed when the archive was asked for: the ecosystem's watermark once it is read */
  head: string | null;
  /** download | extract */
  phase: 'download' | 'extract';
  /** the archive's ETag or Last-Modified, for a Range request that continues it */
  validator?: string;
}

type Watermarks = Record<string, string | null>;

const withdrawnText = (t: string): boolean => /"withdrawn"\s*:\s*"[^"]/.test(t);

/** Checks one record's bytes: the builder's OSV reader accepts it and its id is `id`. Returns the reason it fails, or null. */
export function checkOsvRecord(text: string, id: string, feed: 'osv' | 'ghsa'): string | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  try {
    const rec = normaliseOsv(raw, feed);
    if (rec.source.id !== id) return `its id ${JSON.stringify(rec.source.id)} is not ${id}`;
  } catch (e) {
    if (e instanceof MalformedRecord) return e.message;
    throw e;
  }
  return null;
}

function modifiedOf(text: string): string | null {
  try {
    const raw = JSON.parse(text) as unknown;
    return isObject(raw) ? timeKey(raw.modified) : null;
  } catch {
    return null;
  }
}

interface CsvRow {
  key: string;
  id: string;
}

/**
 * Streams `<eco>/modified_id.csv` and collects the rows at or after `since`
 * (all rows when null), stopping at the first older one while the file is
 * sorted newest first. `limit` stops after that many rows (the head).
 */
async function readModifiedIds(ctx: SourceContext, client: UpstreamClient, url: string, eco: string, since: string | null, limit = Infinity): Promise<{ rows: CsvRow[]; head: string | null }> {
  const a = await client.get(url, { maxBytes: MAX_CSV_BYTES, what: `${eco}/modified_id.csv` }, async (_res, body) => {
    const rows: CsvRow[] = [];
    let head: string | null = null;
    let prev: string | null = null;
    let sorted = true;
    let line = 0;
    if (!body) return { rows, head };
    const parser = parse({ relax_column_count: true, skip_empty_lines: true, trim: true, max_record_size: 4096 });
    // errors of the body or the meter reach the parser, and so the loop below; stopping early is no error
    pipeline(body, client.meter(url, MAX_CSV_BYTES), parser, () => undefined);
    const records = (async function* (): AsyncGenerator<string[]> {
      try {
        yield* parser as AsyncIterable<string[]>;
      } catch (e) {
        // csv-parse's own errors (CSV_…): the file is not CSV; anything else (the connection) is retried
        const code = (e as { code?: unknown }).code;
        if (typeof code === 'string' && code.startsWith('CSV_')) throw client.invalid(url, `${eco}/modified_id.csv is not CSV (${(e as Error).message})`);
        throw e;
      }
    })();
    for await (const rec of records) {
      line++;
      const key = timeKey(rec[0]);
      const id = rec[1] ?? '';
      if (rec.length !== 2 || key === null || !RECORD_ID.test(id)) {
        ctx.skip(`${eco}/modified_id.csv:${line}`, `not a "<modified>,<ID>" line: ${JSON.stringify(rec.join(',').slice(0, 80))}`);
        continue;
      }
      if (prev !== null && key > prev && sorted) {
        sorted = false;
        ctx.note(`${eco}/modified_id.csv is not sorted newest first at line ${line}: read to its end`);
      }
      prev = key;
      if (head === null || key > head) head = key;
      if (since !== null && key < since) {
        if (sorted) break;
        continue;
      }
      rows.push({ key, id });
      if (rows.length >= limit) break;
    }
    return { rows, head };
  });
  return a.body;
}

/** The archive itself is damaged (not one entry): it is downloaded again. */
class ZipDamage extends Error {}

/** The entries of a zip archive, one at a time (yauzl, lazily). */
async function* zipEntries(file: string): AsyncGenerator<{ entry: yauzl.Entry; zip: yauzl.ZipFile }> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true, decodeStrings: true });
  } catch (e) {
    throw new ZipDamage((e as Error).message);
  }
  try {
    const next = (): Promise<yauzl.Entry | null> =>
      new Promise((resolve, reject) => {
        const onEntry = (e: yauzl.Entry): void => {
          cleanup();
          resolve(e);
        };
        const onEnd = (): void => {
          cleanup();
          resolve(null);
        };
        const onError = (e: Error): void => {
          cleanup();
          reject(e);
        };
        const cleanup = (): void => {
          zip.off('entry', onEntry);
          zip.off('end', onEnd);
          zip.off('error', onError);
        };
        zip.on('entry', onEntry);
        zip.on('end', onEnd);
        zip.on('error', onError);
        zip.readEntry();
      });
    const nextOrDamage = (): Promise<yauzl.Entry | null> =>
      next().catch((e: unknown) => {
        throw new ZipDamage((e as Error).message);
      });
    for (let e = await nextOrDamage(); e; e = await nextOrDamage()) yield { entry: e, zip };
  } finally {
    zip.close();
  }
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    size += (c as Buffer).length;
    if (size > MAX_RECORD_BYTES) throw new Error(`more than ${MAX_RECORD_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, size);
}

async function ecosystems(ctx: SourceContext, client: UpstreamClient): Promise<string[]> {
  const given = ctx.settings.osv.ecosystems;
  let names: string[];
  if (given) names = given;
  else {
    const url = `${ctx.settings.osv.url}ecosystems.txt`;
    const a = await client.getBytes(url, { maxBytes: MAX_ECOSYSTEMS_BYTES, what: 'ecosystems.txt' });
    names = a.body.toString('utf8').split('\n').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) throw client.invalid(url, 'ecosystems.txt lists no ecosystem');
  }
  const out: string[] = [];
  for (const n of names) {
    if (safeSegment(n)) out.push(n);
    else ctx.skip(n.slice(0, 60), 'not an ecosystem name that can be a directory name');
  }
  return [...new Set(out)];
}

export const osvSource: SyncSource = {
  name: 'osv',
  async run(ctx: SourceContext): Promise<void> {
    const base = ctx.settings.osv.url;
    const client = ctx.client({ service: "OSV's bucket", urlVariable: 'OSV_URL' });
    const wms: Watermarks = isObject(ctx.state.watermark) ? ({ ...ctx.state.watermark } as Watermarks) : {};
    const cursors: Record<string, EcoCursor> = isObject(ctx.state.cursor) ? ({ ...(ctx.state.cursor as object) } as Record<string, EcoCursor>) : {};
    const save = async (): Promise<void> => {
      ctx.state.watermark = wms;
      ctx.state.cursor = Object.keys(cursors).length ? cursors : null;
      await ctx.checkpoint();
    };
    const ecos = await ecosystems(ctx, client);
    ctx.report.watermark = Object.fromEntries(ecos.map((e) => [e, wms[e] ? keyToIso(wms[e]) : null]));
    for (const eco of ecos) {
      const files = new RecordFiles(path.join(ctx.out, 'osv', eco), withdrawnText);
      const ecoUrl = `${base}${encodeURIComponent(eco)}/`;
      if (wms[eco] === undefined || wms[eco] === null || cursors[eco]) {
        // First run of this ecosystem: the whole archive.
        const cur = (cursors[eco] ??= { head: (await readModifiedIds(ctx, client, `${ecoUrl}modified_id.csv`, eco, null, 1)).head, phase: 'download' });
        await save();
        const zipFile = path.join(ctx.work, `${eco}.all.zip`);
        const part = `${zipFile}.part`;
        await mkdir(ctx.work, { recursive: true });
        if (cur.phase === 'download' || !(await stat(zipFile).catch(() => null))) {
          const got = await client.download(`${ecoUrl}all.zip`, part, {
            maxBytes: MAX_ZIP_BYTES,
            what: `${eco}/all.zip`,
            ...(cur.validator ? { validator: cur.validator } : {}),
            onValidator: async (v) => {
              if (v !== cur.validator) {
                if (v) cur.validator = v;
                else delete cur.validator;
                await save();
              }
            },
          });
          if (got.body.resumedFrom) ctx.note(`${eco}/all.zip continued from byte ${got.body.resumedFrom}`);
          await moveIntoPlace(part, zipFile);
          cur.phase = 'extract';
          await save();
        }
        let n = 0;
        try {
          for await (const { entry, zip } of zipEntries(zipFile)) {
            if (++n > MAX_ENTRIES) throw client.invalid(`${ecoUrl}all.zip`, `more than ${MAX_ENTRIES} entries`);
            const name = entry.fileName;
            if (name.endsWith('/')) continue;
            const id = name.endsWith('.json') ? name.slice(0, -5) : '';
            if (!RECORD_ID.test(id)) {
              ctx.skip(`${eco}/all.zip:${name.slice(0, 80)}`, 'not an <ID>.json entry');
              continue;
            }
            ctx.report.fetched++;
            if (entry.uncompressedSize > MAX_RECORD_BYTES) {
              ctx.skip(`${eco}/${id}`, `${entry.uncompressedSize} bytes, more than a record may have (${MAX_RECORD_BYTES})`);
              continue;
            }
            let text: string;
            try {
              text = (await readEntry(zip, entry)).toString('utf8');
            } catch (e) {
              ctx.skip(`${eco}/${id}`, `unreadable in all.zip: ${(e as Error).message}`);
              continue;
            }
            const bad = checkOsvRecord(text, id, 'osv');
            if (bad) {
              ctx.skip(`${eco}/${id}`, bad);
              continue;
            }
            ctx.land(await files.put(`${id}.json`, text));
            if (n % 500 === 0) ctx.progress(n, null, `${eco} records from all.zip`);
          }
        } catch (e) {
          if (!(e instanceof ZipDamage)) throw e;
          // A damaged archive: download it again next run.
          await unlink(zipFile).catch(() => undefined);
          delete cur.validator;
          cur.phase = 'download';
          await save();
          throw client.invalid(`${ecoUrl}all.zip`, `the archive is damaged (${(e as Error).message}); it is downloaded again next run`);
        }
        wms[eco] = cur.head ?? null;
        delete cursors[eco];
        await save();
        await rm(zipFile, { force: true });
        ctx.progress(n, n, `${eco} records from all.zip`);
      } else {
        // Later runs: what modified_id.csv lists since the watermark.
        const since = wms[eco]!;
        const { rows, head } = await readModifiedIds(ctx, client, `${ecoUrl}modified_id.csv`, eco, since);
        const newest = new Map<string, string>();
        for (const r of rows) if (!newest.has(r.id) || newest.get(r.id)! < r.key) newest.set(r.id, r.key);
        const todo = [...newest.entries()];
        let done = 0;
        await eachLimit(todo, ctx.tuning.osvConcurrency ?? 8, async ([id, key]) => {
          const held = await files.read(`${id}.json`);
          const heldKey = held === null ? null : modifiedOf(held);
          if (heldKey !== null && heldKey >= key) {
            ctx.land('unchanged');
          } else {
            const url = `${ecoUrl}${encodeURIComponent(id)}.json`;
            const a = await client.getBytes(url, { maxBytes: MAX_RECORD_BYTES, allow: [404], what: `${eco}/${id}.json` });
            if (a.status === 404) ctx.skip(`${eco}/${id}`, 'listed in modified_id.csv but not in the bucket (404)');
            else {
              ctx.report.fetched++;
              const text = a.body.toString('utf8');
              const bad = checkOsvRecord(text, id, 'osv');
              if (bad) ctx.skip(`${eco}/${id}`, bad);
              else ctx.land(await files.put(`${id}.json`, text));
            }
          }
          ctx.progress(++done, todo.length, `${eco} records changed`);
        });
        if (head !== null && head > since) wms[eco] = head;
        await save();
      }
      (ctx.report.watermark as Record<string, string | null>)[eco] = wms[eco] ? keyToIso(wms[eco]) : null;
    }
  },
};
