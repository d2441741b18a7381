/**
 * The system `git`, driven with argument lists (never a shell) on a bare
 * repository: fetch, ls-tree, diff-tree, and `cat-file --batch` to read many
 * blobs in one process, each bounded. No prompt is ever shown
 * (GIT_TERMINAL_PROMPT=0): a repository that wants credentials fails.
 */
import { spawn } from 'node:child_process';
import { OukError } from '../../lib/errors.ts';
import { oneLine } from './http.ts';

export interface TreeEntry {
  mode: string;
  type: string;
  sha: string;
  path: string;
}

export interface TreeChange {
  /** A added, M modified, D deleted, T type changed */
  status: string;
  oldSha: string;
  newSha: string;
  newMode: string;
  path: string;
}

const MAX_LISTING_BYTES = 1024 * 1024 * 1024;
/** A git fetch may take this long (a first fetch of the whole tree over a slow link). */
const FETCH_TIMEOUT_MS = 6 * 3_600_000;

export class GitFailed extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`git ${args.join(' ')} failed (${exitCode === null ? 'killed' : `exit ${exitCode}`}): ${oneLine(stderr, 300)}`);
  }
}

export class Git {
  constructor(
    readonly bin: string,
    readonly repo: string,
    readonly timeoutMs: number,
    /** The environment git starts from (PATH, HOME, proxies); the caller's, never read here. */
    readonly baseEnv: NodeJS.ProcessEnv,
  ) {}

  private env(withRepo = true): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.baseEnv, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '', LC_ALL: 'C' };
    delete env.GIT_DIR;
    delete env.GIT_WORK_TREE;
    if (withRepo) env.GIT_DIR = this.repo;
    return env;
  }

  /** Runs git with `args` in the repository; its stdout, bounded. */
  run(args: string[], o: { input?: string; maxBytes?: number; noRepo?: boolean; timeoutMs?: number } = {}): Promise<Buffer> {
    const max = o.maxBytes ?? MAX_LISTING_BYTES;
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { env: this.env(!o.noRepo), stdio: ['pipe', 'pipe', 'pipe'], timeout: o.timeoutMs ?? this.timeoutMs, killSignal: 'SIGKILL' });
      const out: Buffer[] = [];
      let size = 0;
      let err = '';
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') reject(new OukError('TOOL_MISSING', `git (${this.bin}) is not installed: the GHSA source fetches GitHub's advisory database with it — install git (apt-get install git)`));
        else reject(e);
      });
      child.stdout.on('data', (d: Buffer) => {
        size += d.length;
        if (size > max) {
          child.kill('SIGKILL');
          reject(new Error(`git ${args[0]} printed more than ${max} bytes`));
          return;
        }
        out.push(d);
      });
      child.stderr.on('data', (d: Buffer) => {
        if (err.length < 8192) err += d.toString();
      });
      child.on('close', (code) => {
        if (code === 0) resolve(Buffer.concat(out));
        else reject(new GitFailed(args, err, code));
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(o.input ?? '');
    });
  }

  async init(): Promise<void> {
    await this.run(['init', '--bare', '--quiet', this.repo], { noRepo: true });
  }

  /** The commit a ref names, or null. */
  async commit(ref: string): Promise<string | null> {
    try {
      return (await this.run(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).toString().trim() || null;
    } catch (e) {
      if (e instanceof GitFailed) return null;
      throw e;
    }
  }

  /**
   * Fetches the remote's HEAD (one commit deep: the history is not needed) into `ref`; returns its
   * commit. A first fetch of GitHub's database is a large transfer that git cannot resume: its
   * deadline is the longer of the sync's and FETCH_TIMEOUT_MS.
   */
  async fetchHead(url: string, ref: string): Promise<string> {
    await this.run(['-c', 'protocol.version=2', 'fetch', '--quiet', '--no-tags', '--depth=1', '--', url, `+HEAD:${ref}`], { timeoutMs: Math.max(this.timeoutMs, FETCH_TIMEOUT_MS) });
    const sha = await this.commit(ref);
    if (!sha) throw new Error(`git fetch left no ${ref}`);
    return sha;
  }

  async setRef(ref: string, sha: string): Promise<void> {
    await this.run(['update-ref', ref, sha]);
  }

  async commitDate(sha: string): Promise<string> {
    return (await this.run(['show', '-s', '--format=%cI', sha])).toString().trim();
  }

  async lsTree(commit: string, paths: string[]): Promise<TreeEntry[]> {
    const out = (await this.run(['ls-tree', '-r', '-z', '--full-tree', commit, '--', ...paths])).toString('utf8');
    const entries: TreeEntry[] = [];
    for (const rec of out.split('\0')) {
      if (!rec) continue;
      const tab = rec.indexOf('\t');
      const [mode, type, sha] = rec.slice(0, tab).split(' ');
      entries.push({ mode: mode!, type: type!, sha: sha!, path: rec.slice(tab + 1) });
    }
    return entries;
  }

  async diffTree(from: string, to: string, paths: string[]): Promise<TreeChange[]> {
    const out = (await this.run(['diff-tree', '-r', '-z', '--no-renames', '--no-commit-id', from, to, '--', ...paths])).toString('utf8');
    const parts = out.split('\0');
    const changes: TreeChange[] = [];
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const head = parts[i]!;
      if (!head.startsWith(':')) break;
      const [, newMode, oldSha, newSha, status] = head.slice(1).split(' ');
      changes.push({ status: status!.slice(0, 1), oldSha: oldSha!, newSha: newSha!, newMode: newMode!, path: parts[i + 1]! });
    }
    return changes;
  }

  /** `<rev>:<path>` (or any object name) → its blob id, or null when absent. */
  async blobIds(names: string[]): Promise<Map<string, string | null>> {
    const found = new Map<string, string | null>();
    if (names.length === 0) return found;
    const out = (await this.run(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input: `${names.join('\n')}\n` })).toString('utf8').split('\n');
    names.forEach((n, i) => {
      const [sha, type] = (out[i] ?? '').split(' ');
      found.set(n, type === 'blob' ? sha! : null);
    });
    return found;
  }

  /**
   * Reads blobs by id in one `cat-file --batch` process and hands each to
   * `each` in order (awaited: the reader waits); a blob larger than
   * `maxBytes` is handed as null with its size.
   */
  async readBlobs(ids: string[], maxBytes: number, each: (id: string, content: Buffer | null, size: number) => Promise<void>): Promise<void> {
    if (ids.length === 0) return;
    const child = spawn(this.bin, ['cat-file', '--batch'], { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'], timeout: this.timeoutMs, killSignal: 'SIGKILL' });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 8192) err += d.toString();
    });
    const closed = new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${ids.join('\n')}\n`);
    let buf: Buffer = Buffer.alloc(0);
    let index = 0;
    // the object being read: its id, size and the bytes still to come (+1 for the newline after it)
    let cur: { id: string; size: number; parts: Buffer[] | null; left: number } | null = null;
    for await (const chunk of child.stdout) {
      buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
      for (;;) {
        if (!cur) {
          const nl = buf.indexOf(10);
          if (nl < 0) {
            if (buf.length > 4096) throw new Error('git cat-file --batch printed an over-long header');
            break;
          }
          const header = buf.subarray(0, nl).toString('utf8');
          buf = buf.subarray(nl + 1);
          const want = ids[index++];
          if (want === undefined) throw new Error('git cat-file --batch printed more objects than asked for');
          if (header.endsWith(' missing')) {
            await each(want, null, -1);
            continue;
          }
          const size = Number(header.split(' ')[2]);
          if (!Number.isInteger(size) || size < 0) throw new Error(`git cat-file --batch printed ${JSON.stringify(header.slice(0, 80))}`);
          cur = { id: want, size, parts: size <= maxBytes ? [] : null, left: size + 1 };
        }
        if (buf.length === 0) break;
        const take = Math.min(cur.left, buf.length);
        const part = buf.subarray(0, take);
        buf = buf.subarray(take);
        cur.left -= take;
        cur.parts?.push(part);
        if (cur.left > 0) break;
        const done = cur;
        cur = null;
        await each(done.id, done.parts ? Buffer.concat(done.parts).subarray(0, done.size) : null, done.size);
      }
    }
    const code = await closed;
    if (code !== 0) throw new GitFailed(['cat-file', '--batch'], err, code);
    if (index !== ids.length || cur) throw new Error(`git cat-file --batch ended after ${index} of ${ids.length} objects`);
  }
}
