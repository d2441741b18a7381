/**
 * GitHub's advisory database (a git repository) into `ghsa/<xx>/<GHSA-id>.json`,
 * one record a file, named by its id alone (`xx`: the id's first two
 * characters after `GHSA-`, for directories of a few hundred files).
 *
 * The repository is fetched into DIR/.sync/ghsa/repo.git, one commit deep
 * (the history is not needed), with the system git: the first run gets the
 * whole tree, later runs only the objects that changed. What a run writes is
 * the difference between the commit last synced (the watermark) and the new
 * one (`git diff-tree`): each advisory added, modified or deleted under
 * `advisories/github-reviewed/` (and `advisories/unreviewed/` with
 * GHSA_UNREVIEWED=true). An advisory lives in one category at a time; GitHub
 * moves it from unreviewed to reviewed when it reviews it. Named by id, it is
 * one record whichever category holds it (reviewed first): a move is an
 * update of that record, not a second record and a deletion. The watermark
 * moves to the new commit only after all of it is written, so a killed run
 * applies the same difference again (unchanged records are not rewritten).
 * When the last synced commit is not in the clone any more (the clone was
 * deleted), the whole tree is listed again and records no longer in it are
 * removed.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { OukError } from '../../lib/errors.ts';
import type { SourceContext, SyncSource } from './context.ts';
import { RecordFiles } from './files.ts';
import { Git, GitFailed } from './git.ts';
import { oneLine } from './http.ts';
import { checkOsvRecord } from './osv.ts';

const REVIEWED = 'advisories/github-reviewed';
const UNREVIEWED = 'advisories/unreviewed';
const ADVISORY_PATH = /^advisories\/(github-reviewed|unreviewed)\/(\d{4})\/(\d{2})\/(GHSA(?:-[a-z0-9]{4}){3})\/\4\.json$/;
const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const UPSTREAM_REF = 'refs/stella/upstream';
const SYNCED_REF = 'refs/stella/synced';

/** Where a GHSA record lives: GHSA-22c5-cpvr-cfvq → 22/GHSA-22c5-cpvr-cfvq.json. */
export function ghsaPath(id: string): string {
  return `${id.slice(5, 7)}/${id}.json`;
}

interface Located {
  category: 'github-reviewed' | 'unreviewed';
  id: string;
}

function locate(p: string): Located | null {
  const m = ADVISORY_PATH.exec(p);
  return m ? { category: m[1] as Located['category'], id: m[4]! } : null;
}

function swapCategory(p: string): string {
  return p.startsWith(`${REVIEWED}/`) ? `${UNREVIEWED}/${p.slice(REVIEWED.length + 1)}` : `${REVIEWED}/${p.slice(UNREVIEWED.length + 1)}`;
}

export const ghsaSource: SyncSource = {
  name: 'ghsa',
  async run(ctx: SourceContext): Promise<void> {
    const { gitUrl, unreviewed } = ctx.settings.ghsa;
    const categories = unreviewed ? [REVIEWED, UNREVIEWED] : [REVIEWED];
    const git = new Git(ctx.tuning.git ?? 'git', path.join(ctx.work, 'repo.git'), ctx.settings.timeoutMs, ctx.childEnv);
    const files = new RecordFiles(path.join(ctx.out, 'ghsa'), (t) => /"withdrawn"\s*:\s*"[^"]/.test(t));
    await mkdir(ctx.work, { recursive: true });
    if (!(await stat(path.join(git.repo, 'HEAD')).catch(() => null))) await git.init();

    // One fetch; retried like an HTTP request when the network fails.
    let head: string | null = null;
    for (let attempt = 1; head === null; attempt++) {
      ctx.report.requests++;
      try {
        head = await git.fetchHead(gitUrl, UPSTREAM_REF);
      } catch (e) {
        if (!(e instanceof GitFailed)) throw e;
        if (attempt >= ctx.settings.attempts) {
          throw new OukError('UPSTREAM_UNAVAILABLE', `git could not fetch ${gitUrl} after ${attempt} tries (${oneLine(e.stderr || e.message, 300)}): check GHSA_GIT_URL and the network; run the sync again later`, { retryable: true });
        }
        const delayMs = ctx.settings.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
        ctx.note(`git fetch failed (${oneLine(e.stderr, 120)}), try ${attempt} of ${ctx.settings.attempts}: again in ${(delayMs / 1000).toFixed(1)} s`);
        await ctx.clock.sleep(delayMs);
      }
    }
    const last = typeof ctx.state.watermark === 'string' ? ctx.state.watermark : null;
    const lastHeld = last !== null && (await git.commit(last)) === last;
    if (last !== null && !lastHeld) ctx.note(`the last synced commit ${last.slice(0, 12)} is not in the clone any more: the whole tree is compared again`);

    // What each affected advisory is in the new tree: the blob to write, or null (gone).
    const wanted = new Map<string, string | null>();
    let full = false;
    if (last === head && lastHeld) {
      // nothing new upstream
    } else if (lastHeld) {
      const changes = await git.diffTree(last!, head, categories);
      const candidates = new Map<string, Set<string>>();
      for (const c of changes) {
        const at = locate(c.path);
        if (!at) continue;
        const set = candidates.get(at.id) ?? new Set<string>();
        set.add(c.path);
        set.add(swapCategory(c.path));
        candidates.set(at.id, set);
      }
      const names = [...candidates.values()].flatMap((s) => [...s]).filter((p) => unreviewed || p.startsWith(`${REVIEWED}/`));
      const blobs = await git.blobIds(names.map((p) => `${head}:${p}`));
      for (const [id, paths] of candidates) {
        const inTree = [...paths].filter((p) => (unreviewed || p.startsWith(`${REVIEWED}/`)) && blobs.get(`${head}:${p}`));
        const pick = inTree.find((p) => p.startsWith(`${REVIEWED}/`)) ?? inTree[0];
        wanted.set(id, pick ? blobs.get(`${head}:${pick}`)! : null);
      }
    } else {
      full = true;
      for (const e of await git.lsTree(head, categories)) {
        const at = locate(e.path);
        if (!at || e.type !== 'blob' || e.mode === '120000') {
          if (e.path.endsWith('.json')) ctx.skip(e.path.slice(0, 120), 'not an advisories/<category>/YYYY/MM/<GHSA-id>/<GHSA-id>.json file');
          continue;
        }
        if (at.category === 'github-reviewed' || !wanted.has(at.id)) wanted.set(at.id, e.sha);
      }
    }

    // Write what is there, remove what is gone.
    const byBlob = new Map<string, string[]>();
    for (const [id, blob] of wanted) {
      if (blob === null) {
        if (await files.remove(ghsaPath(id))) ctx.report.removed++;
      } else byBlob.set(blob, [...(byBlob.get(blob) ?? []), id]);
    }
    const blobs = [...byBlob.keys()];
    let done = 0;
    await git.readBlobs(blobs, MAX_RECORD_BYTES, async (blob, content, size) => {
      for (const id of byBlob.get(blob) ?? []) {
        ctx.report.fetched++;
        if (content === null) ctx.skip(id, size < 0 ? 'its blob is missing from the clone' : `${size} bytes, more than a record may have (${MAX_RECORD_BYTES})`);
        else {
          const text = content.toString('utf8');
          const bad = checkOsvRecord(text, id, 'ghsa');
          if (bad) ctx.skip(id, bad);
          else ctx.land(await files.put(ghsaPath(id), text));
        }
      }
      if (++done % 500 === 0 || done === blobs.length) ctx.progress(done, blobs.length, 'advisories');
    });
    if (full) {
      // Records the new tree no longer has (a clone lost and listed again).
      for (const dir of await readdir(files.root).catch(() => [] as string[])) {
        for (const name of await readdir(path.join(files.root, dir)).catch(() => [] as string[])) {
          const id = name.replace(/\.json$/, '');
          if (name.endsWith('.json') && !wanted.has(id) && (await files.remove(`${dir}/${name}`))) ctx.report.removed++;
        }
      }
    }
    await git.setRef(SYNCED_REF, head);
    ctx.state.watermark = head;
    ctx.state.extra.commitDate = await git.commitDate(head);
    ctx.state.cursor = null;
    await ctx.checkpoint();
    ctx.report.watermark = head;
    ctx.note(`at commit ${head.slice(0, 12)} of ${String(ctx.state.extra.commitDate)}`);
  },
};
