/**
 * A real git repository laid out like github/advisory-database
 * (`advisories/github-reviewed/YYYY/MM/GHSA-…/GHSA-….json`), built from the
 * GHSA records of ../shared/feeds (their original paths from MANIFEST.tsv),
 * for the GHSA source's tests: GHSA_GIT_URL=file://<dir>. Tests change it
 * the way GitHub does — edit an advisory, move one from unreviewed to
 * reviewed, delete one — each as a commit.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { sharedDir, tmpDir } from './services.ts';

const run = promisify(execFile);

export interface GhsaAdvisory {
  id: string;
  /** advisories/github-reviewed/YYYY/MM/<id>/<id>.json */
  path: string;
}

/** The GHSA records of ../shared/feeds with their advisory-database paths. */
export async function sharedGhsa(): Promise<GhsaAdvisory[]> {
  const rows = (await readFile(path.join(sharedDir, 'feeds/MANIFEST.tsv'), 'utf8')).split('\n').slice(1);
  const out: GhsaAdvisory[] = [];
  for (const row of rows) {
    const c = row.split('\t');
    if (c[0] === 'ghsa' && c[6]) out.push({ id: c[2]!, path: c[6] });
  }
  return out;
}

export class GhsaRepo {
  private commits = 0;
  private constructor(readonly dir: string) {}

  get url(): string {
    return `file://${this.dir}`;
  }

  /** A repository holding `advisories` (default: every shared GHSA record), committed once. */
  static async create(tag: string, advisories?: GhsaAdvisory[]): Promise<GhsaRepo> {
    const repo = new GhsaRepo(path.join(tmpDir(`ghsa-${tag}`), 'advisory-database'));
    await mkdir(repo.dir, { recursive: true });
    await repo.git(['init', '--quiet', '--initial-branch=main']);
    for (const a of advisories ?? (await sharedGhsa())) await repo.write(a.path, await readFile(path.join(sharedDir, 'feeds/ghsa', `${a.id}.json`), 'utf8'));
    await repo.commit('the advisories of ../shared/feeds');
    return repo;
  }

  async git(args: string[]): Promise<string> {
    const env: NodeJS.ProcessEnv = { ...process.env, GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@example.org', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@example.org', GIT_CONFIG_NOSYSTEM: '1', HOME: this.dir };
    delete env.GIT_DIR;
    const date = new Date(Date.UTC(2026, 0, 1) + this.commits * 3_600_000).toISOString();
    return (await run('git', args, { cwd: this.dir, env: { ...env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date }, maxBuffer: 64 << 20 })).stdout;
  }

  async read(rel: string): Promise<string> {
    return readFile(path.join(this.dir, rel), 'utf8');
  }

  async write(rel: string, text: string): Promise<void> {
    await mkdir(path.dirname(path.join(this.dir, rel)), { recursive: true });
    await writeFile(path.join(this.dir, rel), text);
  }

  async move(from: string, to: string): Promise<void> {
    await mkdir(path.dirname(path.join(this.dir, to)), { recursive: true });
    await rename(path.join(this.dir, from), path.join(this.dir, to));
  }

  async remove(rel: string): Promise<void> {
    await rm(path.join(this.dir, rel));
  }

  /** Commits everything; returns the commit id. */
  async commit(message: string): Promise<string> {
    await this.git(['add', '-A']);
    await this.git(['commit', '--quiet', '--allow-empty', '-m', message]);
    this.commits++;
    return (await this.git(['rev-parse', 'HEAD'])).trim();
  }
}
