/**
 * The process environment: `.env` (if present) under the process's own
 * environment, and — on a development machine only — the local stack's
 * configuration file `.stella/dev.env` that `npm run dev:up` writes (the dev
 * signing key it generated as the trusted key, its webhook token, and
 * STELLA_AIRGAP=true).
 *
 * This module resolves the process environment (lib/config.ts's
 * processEnvironment() is the one read of it) for the product: each process entry point (cli/main.ts, api/main.ts, queue/worker-main.ts)
 * calls `resolveEnv()` once, hands the result to lib/config.ts (`loadConfig`,
 * `pipelineSettings`, …, which parse what they are given and read nothing
 * themselves), and passes the typed configuration down. Nothing below an
 * entry point reads the environment; a child process that needs the
 * environment with a change gets it from `childProcessEnv`.
 *
 * Precedence: process environment > `.env` > `.stella/dev.env`. An empty
 * value counts as unset (except that a variable set, even empty, in the
 * process's environment is not replaced by `.env`'s).
 *
 * Nothing is trusted by default: with no `dev.env` (a production host, a
 * container), OUK_TRUSTED_KEYS must be set or the API and workers refuse to
 * start. `dev.env` is only read when it is a regular file owned by this user
 * (or root) that nobody else may write, so a shared or world-writable state
 * directory cannot plant a trust anchor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { processEnvironment, type Env } from '../lib/config.ts';

export type { Env };

export interface DevPaths {
  stateDir: string;
  keysDir: string;
  privateKey: string;
  publicKey: string;
  /** the local stack's configuration, written by dev:up */
  devEnvFile: string;
  logsDir: string;
  runDir: string;
  s3Dir: string;
}

/** Paths of the local stack's state, under STELLA_STATE_DIR (default `.stella` in the working directory). */
export function devPaths(env: Env, cwd = process.cwd()): DevPaths {
  const stateDir = path.resolve(cwd, env.STELLA_STATE_DIR || '.stella');
  const keysDir = path.join(stateDir, 'keys');
  return {
    stateDir,
    keysDir,
    privateKey: path.join(keysDir, 'cosign.key'),
    publicKey: path.join(keysDir, 'cosign.pub'),
    devEnvFile: path.join(stateDir, 'dev.env'),
    logsDir: path.join(stateDir, 'logs'),
    runDir: path.join(stateDir, 'run'),
    s3Dir: path.join(stateDir, 's3'),
  };
}

/**
 * Loads `file` (default `./.env`) into the process's environment when it
 * exists, for the dev scripts (dev:up, dev:down, demo) whose children inherit
 * it. Variables already set in the environment win. Returns whether a file
 * was loaded. The product's processes use `resolveEnv`, which reads `.env`
 * without changing the environment.
 */
export function loadDotEnv(file = path.resolve('.env')): boolean {
  if (!fs.existsSync(file)) return false;
  process.loadEnvFile(file);
  return true;
}

/**
 * The variables of the local stack's `dev.env`, or {} when it is absent or not
 * safe to read (not a regular file, owned by another user, writable by group
 * or others).
 */
export function readDevEnvFile(file: string): Env {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return {};
  }
  const uid = process.getuid?.() ?? 0;
  if (!st.isFile() || (st.uid !== uid && st.uid !== 0) || (st.mode & 0o022) !== 0) return {};
  try {
    return parseEnv(fs.readFileSync(file, 'utf8')) as Env;
  } catch {
    return {};
  }
}

/** `base` with every non-empty value of `over` on top. */
function overlay(base: Env, over: Env): Env {
  const out: Env = { ...base };
  for (const [k, v] of Object.entries(over)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/**
 * The environment with the local stack's `dev.env` under it and
 * STELLA_STATE_DIR made absolute. Does not modify `env`.
 */
export function devEnv(env: Env, cwd = process.cwd()): Env {
  const p = devPaths(env, cwd);
  return { ...overlay(readDevEnvFile(p.devEnvFile), env), STELLA_STATE_DIR: p.stateDir };
}

/** The variables of `file` (a `.env`), or {} when there is none. */
function readDotEnv(file: string): Env {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  return parseEnv(text) as Env;
}

/**
 * The environment of this process, resolved once by its entry point: the
 * process's own variables, over `.env` in `cwd`, over the local stack's
 * `dev.env` (see the top of this file). Changes nothing in the process's environment.
 */
export function resolveEnv(cwd = process.cwd()): Env {
  return devEnv({ ...readDotEnv(path.resolve(cwd, '.env')), ...processEnvironment() }, cwd);
}

/** The environment a child process inherits, with `over` on top (e.g. `{ LC_ALL: 'C' }` for GNU sort). */
export function childProcessEnv(over: Env): NodeJS.ProcessEnv {
  return { ...processEnvironment(), ...over };
}
