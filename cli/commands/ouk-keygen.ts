/**
 * `stella ouk keygen --out-dir DIR [--alg ecdsa-p256|ed25519|sm2] [--force]`:
 * writes DIR/cosign.key (PKCS#8 PEM, mode 0600; ECDSA P-256 and Ed25519 keys
 * encrypted with aes-256-cbc when STELLA_KEY_PASSWORD is set, SM2 keys plain as
 * OpenSSL 3 writes them) and DIR/cosign.pub (SPKI PEM). Refuses to overwrite
 * either file unless --force.
 */
import { chmod, lstat, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { OukError } from '../../lib/errors.ts';
import { generateKeyPair, keyHint } from '../../signing/index.ts';
import { parsePublicKeyPem, SUITE_NAMES, type SuiteName } from '../../signing/suites/index.ts';
import { keyidOfKey } from '../../signing/root/index.ts';
import type { CliContext } from '../context.ts';

export interface KeygenOptions {
  outDir: string;
  force?: boolean;
  alg?: string;
}

/** `password`: STELLA_KEY_PASSWORD (`config.keyPassword`); the private key is encrypted with it when set. */
export async function runKeygen(opts: KeygenOptions, password: string | undefined): Promise<{ keyPath: string; pubPath: string; hint: string; keyid: string; encrypted: boolean }> {
  const dir = path.resolve(opts.outDir);
  const keyPath = path.join(dir, 'cosign.key');
  const pubPath = path.join(dir, 'cosign.pub');
  if (!opts.force) {
    const existing: string[] = [];
    for (const p of [keyPath, pubPath]) if (await lstat(p).then(() => true, () => false)) existing.push(p);
    if (existing.length) {
      throw new OukError('OUTPUT_EXISTS', `${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: refusing to overwrite a signing key — choose another --out-dir, or pass --force to replace it`);
    }
  }
  const alg = opts.alg ?? 'ecdsa-p256';
  if (!(SUITE_NAMES as readonly string[]).includes(alg)) throw new OukError('USAGE', `--alg ${alg} is not a signature suite: use one of ${SUITE_NAMES.join(', ')}`);
  const { privateKeyPem, publicKeyPem } = await generateKeyPair(password, alg as SuiteName);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const flag = opts.force ? 'w' : 'wx';
  try {
    await writeFile(keyPath, privateKeyPem, { mode: 0o600, flag });
    await chmod(keyPath, 0o600); // an overwritten file keeps its old mode otherwise
    await writeFile(pubPath, publicKeyPem, { mode: 0o644, flag });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new OukError('OUTPUT_EXISTS', `${(e as NodeJS.ErrnoException).path ?? dir} appeared while writing: refusing to overwrite — pass --force to replace it`, { cause: e });
    }
    throw new OukError('INTERNAL', `cannot write the key pair in ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): check the directory's permissions`, { cause: e });
  }
  const publicKey = parsePublicKeyPem(publicKeyPem);
  return { keyPath, pubPath, hint: keyHint(publicKey), keyid: keyidOfKey(publicKey), encrypted: password !== undefined };
}

export function registerOukKeygen(ouk: Command, cli: CliContext): void {
  ouk
    .command('keygen')
    .description('write a signing key pair: DIR/cosign.key (encrypted when STELLA_KEY_PASSWORD is set, except SM2) and DIR/cosign.pub')
    .requiredOption('--out-dir <dir>', 'directory for cosign.key and cosign.pub')
    .option('--alg <suite>', `signature suite: ${SUITE_NAMES.join(', ')} (docs/crypto.md)`, 'ecdsa-p256')
    .option('--force', 'overwrite an existing key pair', false)
    .action(async (opts: KeygenOptions) => {
      const r = await runKeygen(opts, cli.config.keyPassword);
      process.stdout.write(
        `wrote ${r.keyPath} (private, mode 0600${r.encrypted ? ', encrypted with STELLA_KEY_PASSWORD' : ', NOT encrypted: set STELLA_KEY_PASSWORD to encrypt it'})\n` +
          `wrote ${r.pubPath} (public: give it to every air-gapped host, in OUK_TRUSTED_KEYS)\n` +
          `key hint: ${r.hint}\n` +
          `key id:   ${r.keyid} (its name in a root of trust: stella trust init --root-key/--kit-key)\n`,
      );
    });
}
