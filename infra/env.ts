/**
 * The local stack's environment: `.env` (if present) under the process's own
 * environment, plus the dev secrets `npm run dev:up` generates under `.stella/`
 * (the trusted public key and the webhook token). The dev launcher passes this
 * environment to every service it starts; the CLI uses the same function so
 * `stella ouk import` talks to the local stack with the same defaults.
 *
 * Precedence: process environment > `.env` > dev defaults under `.stella/`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type Env = Record<string, string | undefined>;

export interface DevPaths {
  stateDir: string;
  keysDir: string;
  privateKey: string;
  publicKey: string;
  webhookTokenFile: string;
  logsDir: string;
  runDir: string;
  s3Dir: string;
}

/** Paths of the local stack's state, under STELLA_STATE_DIR (default `.stella` in the working directory). */
export function devPaths(env: Env = process.env, cwd = process.cwd()): DevPaths {
  const stateDir = path.resolve(cwd, env.STELLA_STATE_DIR || '.stella');
  const keysDir = path.join(stateDir, 'keys');
  return {
    stateDir,
    keysDir,
    privateKey: path.join(keysDir, 'cosign.key'),
    publicKey: path.join(keysDir, 'cosign.pub'),
    webhookTokenFile: path.join(stateDir, 'webhook-token'),
    logsDir: path.join(stateDir, 'logs'),
    runDir: path.join(stateDir, 'run'),
    s3Dir: path.join(stateDir, 's3'),
  };
}

/**
 * Loads `file` (default `./.env`) into process.env when it exists. Variables
 * already set in the environment win. Returns whether a file was loaded.
 */
export function loadDotEnv(file = path.resolve('.env')): boolean {
  if (!fs.existsSync(file)) return false;
  process.loadEnvFile(file);
  return true;
}

function readTrimmed(file: string): string | undefined {
  try {
    const s = fs.readFileSync(file, 'utf8').trim();
    return s || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The environment with the dev defaults filled in: STELLA_STATE_DIR made
 * absolute, OUK_TRUSTED_KEYS = `.stella/keys/cosign.pub` and OUK_WEBHOOK_TOKEN =
 * the content of `.stella/webhook-token` when those are unset and the files
 * exist. Does not modify `env`.
 */
export function devEnv(env: Env = process.env, cwd = process.cwd()): Env {
  const p = devPaths(env, cwd);
  const out: Env = { ...env, STELLA_STATE_DIR: p.stateDir };
  if (!env.OUK_TRUSTED_KEYS && fs.existsSync(p.publicKey)) out.OUK_TRUSTED_KEYS = p.publicKey;
  if (!env.OUK_WEBHOOK_TOKEN) {
    const token = readTrimmed(p.webhookTokenFile);
    if (token) out.OUK_WEBHOOK_TOKEN = token;
  }
  return out;
}

/** `.env` loaded into process.env, then devEnv(process.env): what the CLI and the dev launcher use. */
export function resolveEnv(cwd = process.cwd()): Env {
  loadDotEnv(path.resolve(cwd, '.env'));
  return devEnv(process.env, cwd);
}

/** Whether a URL's host is this machine (so the dev launcher may start the service itself). */
export function isLoopbackUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return h === 'localhost' || h === '::1' || /^127\./.test(h);
  } catch {
    return false;
  }
}

/**
 * Generates the dev secrets when missing: the signing key pair
 * (`.stella/keys/cosign.key`, unencrypted PKCS#8, mode 600, and `cosign.pub`) and,
 * unless OUK_WEBHOOK_TOKEN is set, a random webhook token in
 * `.stella/webhook-token`. Returns the files written.
 */
export async function ensureDevSecrets(paths: DevPaths, env: Env = process.env): Promise<string[]> {
  const made: string[] = [];
  fs.mkdirSync(paths.keysDir, { recursive: true, mode: 0o700 });
  if (!fs.existsSync(paths.privateKey) || !fs.existsSync(paths.publicKey)) {
    const { generateKeyPair } = await import('../signing/index.ts');
    const { privateKeyPem, publicKeyPem } = await generateKeyPair();
    fs.writeFileSync(paths.privateKey, privateKeyPem, { mode: 0o600 });
    fs.writeFileSync(paths.publicKey, publicKeyPem, { mode: 0o644 });
    made.push(paths.privateKey, paths.publicKey);
  }
  if (!env.OUK_WEBHOOK_TOKEN && !readTrimmed(paths.webhookTokenFile)) {
    fs.mkdirSync(paths.stateDir, { recursive: true });
    fs.writeFileSync(paths.webhookTokenFile, `${crypto.randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    made.push(paths.webhookTokenFile);
  }
  return made;
}
