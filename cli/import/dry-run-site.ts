/**
 * The site a dry run checks a kit against, opened read-only from the CLI's
 * context, in the import's order (PostgreSQL, Redis, the bucket): no
 * migration, no queue, no object. A database never imported into is an empty
 * site (the import would create the schema first); one whose schema lags is
 * read as it is, with a note (the import would migrate it first).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../../bundle/manifest.ts';
import { pendingBase, type PolicyFlags } from '../../functions/common/policy.ts';
import { readActivePointer, type ActiveDbPointer } from '../../infra/active-db.ts';
import { checkSchema, type Pool } from '../../infra/db.ts';
import { getImport } from '../../infra/import-records/index.ts';
import type { Config } from '../../lib/config.ts';
import { isOukError, OukError } from '../../lib/errors.ts';
import { MAX_SIG_BYTES } from '../../functions/common/kit-check.ts';
import { loadSiteTrust } from '../../functions/common/site-trust.ts';
import { createBlobVerifier, loadTrust, parseSignature, requireTrustedKeys, verifyKitFile, type TrustedKey, type TrustSource } from '../../signing/index.ts';
import type { CliContext } from '../context.ts';
import { requireBucket } from './bucket.ts';
import type { DryRunDeps, PriorImport } from './dry-run.ts';
import { importFailure } from './follow.ts';
import { importIdFor } from '../../queue/identity.ts';
import { LIFTED_BY } from '../../queue/flow.ts';
import { readManifestOf } from './source.ts';
import { preflight } from './upload.ts';

const NOTHING: ActiveDbPointer = { activeImport: null, activeVersion: null, activeSchema: null, activeDigest: null, activatedAt: null, previousImport: null };

/** The trust the verify stage uses: OUK_TRUST_ROOT when set (the only trust then), else OUK_TRUSTED_KEYS. */
export async function siteTrustSource(config: Pick<Config, 'trustRoot' | 'trustedKeys'>, warn: (line: string) => void): Promise<TrustSource> {
  if (config.trustRoot) {
    if (config.trustedKeys.length) warn('warning: OUK_TRUST_ROOT and OUK_TRUSTED_KEYS are both set: the root of trust is the only trust, OUK_TRUSTED_KEYS is ignored');
    return { root: config.trustRoot, label: 'OUK_TRUST_ROOT' };
  }
  await requireTrustedKeys(config.trustedKeys);
  return { keys: config.trustedKeys, label: 'OUK_TRUSTED_KEYS' };
}

export interface DryRunSite {
  /** The deps of a dry run of the local tarball `file` (its side files beside it). */
  depsFor(file: string): Promise<DryRunDeps>;
  /** The services checks passed, in order (the array given, filled as each passes). */
  checks: string[];
  notes: string[];
}

/** Opens the site read-only (PostgreSQL, Redis, the bucket), for a dry run of the kit that would go to bucket key `key`. */
export async function openDryRunSite(cli: CliContext, key: string, flags: PolicyFlags, warn: (line: string) => void, checks: string[] = []): Promise<DryRunSite> {
  const config = cli.config;
  const notes: string[] = [];
  const pool = await cli.db({ check: false });
  let schema: 'present' | 'absent' = 'present';
  try {
    await checkSchema(pool);
  } catch (e) {
    if (!isOukError(e) || (e.code !== 'NOTHING_ACTIVE' && e.code !== 'SCHEMA_OUTDATED')) throw e;
    if (e.code === 'NOTHING_ACTIVE') {
      schema = 'absent';
      notes.push('database: no Stella OUK schema yet — the import would create it first');
    } else notes.push(`database: ${e.message.replace(/: start the API.*$/, '')} — the import would apply the migrations first`);
  }
  checks.push('database');
  await (await cli.redis()).ping();
  checks.push('queues');
  const store = await cli.store();
  await requireBucket(store, config);
  checks.push('bucket');

  const depsFor = async (file: string): Promise<DryRunDeps> => {
    // The verify stage's trust: the pinned root and the newer roots PostgreSQL holds for it (or the bare keys).
    const trust =
      schema === 'absent'
        ? await loadTrust(await siteTrustSource(config, warn))
        : await loadSiteTrust(config, { pool, trustedKeys: () => requireTrustedKeys(config.trustedKeys) }).then((site) => {
            if (site.warning) warn(`warning: ${site.warning}`);
            return site.state;
          });
    const size = fs.statSync(file).size;
    const now = new Date();
    return {
      now,
      maxSkewSeconds: config.maxClockSkewSeconds,
      flags,
      peekManifest: () => readManifestOf({ name: file, key, isUrl: false }),
      space: (manifest: Manifest) => preflight({ config, env: cli.env, pool }, manifest, size),
      verify: async () => {
        if (trust.implicit) await stageSignature(file, trust.trustedKeys ?? []);
        return verifyKitFile(file, { trust, now, requireAttestation: config.requireAttestation, policy: config.cryptoPolicy });
      },
      activePointer: () => (schema === 'absent' ? Promise.resolve(NOTHING) : readActivePointer(pool)),
      activeKit: () => (schema === 'absent' ? Promise.resolve(null) : activeKit(pool)),
      prior: () => (schema === 'absent' ? Promise.resolve(null) : priorImport(pool, config.bucket, key, file, size, store.partSize)),
      pendingBase: (base) => (schema === 'absent' ? Promise.resolve(null) : pendingBase({ pool, store }, { importId: '', bucket: config.bucket, key }, base)),
    };
  };
  return { depsFor, checks, notes };
}

/**
 * The verify stage's own check of the `.sig` against bare trusted keys (functions/verify.ts: the `.sig` read up to
 * MAX_SIG_BYTES, parseSignature, createBlobVerifier over every byte), first, as the stage makes it: altered bytes or
 * an untrusted key are the stage's SIGNATURE_MISMATCH, not what the kit verifier would say of the archive after.
 */
async function stageSignature(file: string, keys: TrustedKey[]): Promise<void> {
  const sigPath = `${file}.sig`;
  let text: Buffer;
  try {
    const fh = await fsp.open(sigPath, 'r');
    try {
      const buf = Buffer.alloc(MAX_SIG_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_SIG_BYTES) throw new OukError('SIGNATURE_MALFORMED', `${path.basename(sigPath)} is larger than ${MAX_SIG_BYTES} bytes: it is not what it should be — re-download it`);
      text = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (isOukError(e)) throw e;
    throw new OukError('SIGNATURE_MISSING', `no signature ${path.basename(sigPath)} beside the tarball (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): copy the .sig published with the kit next to it`, { cause: e });
  }
  const verifier = createBlobVerifier(parseSignature(text), keys);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) verifier.update(chunk as Buffer);
  verifier.finish();
}

/**
 * The ETag the store would give this file on the import's upload (infra/store.ts uploadStream: one PUT up to the
 * client's part size, its MD5; above, a multipart upload: the MD5 of the parts' MD5s, "-" and their number).
 */
export async function expectedEtag(file: string, size: number, partSize: number): Promise<string> {
  const whole = createHash('md5');
  const parts: Buffer[] = [];
  let part = createHash('md5');
  let inPart = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    let b = chunk as Buffer;
    whole.update(b);
    while (b.length) {
      const take = Math.min(b.length, partSize - inPart);
      part.update(b.subarray(0, take));
      inPart += take;
      b = b.subarray(take);
      if (inPart === partSize) {
        parts.push(part.digest());
        part = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (size <= partSize) return whole.digest('hex');
  if (inPart) parts.push(part.digest());
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

/** The import this very object already has (its id derives from bucket, key and ETag: queue/identity.ts). */
async function priorImport(pool: Pool, bucket: string, key: string, file: string, size: number, partSize: number): Promise<PriorImport | null> {
  const rec = await getImport(pool, importIdFor(bucket, key, await expectedEtag(file, size, partSize)));
  if (!rec) return null;
  const liftedBy = rec.errorCode ? LIFTED_BY[rec.errorCode] : undefined;
  return { id: rec.id, state: rec.state, version: rec.version, failure: rec.state === 'quarantined' ? importFailure(rec) : null, liftedBy };
}

async function activeKit(pool: Pool): Promise<{ key: string; sha256: string | null } | null> {
  const pointer = await readActivePointer(pool);
  const rec = pointer.activeImport ? await getImport(pool, pointer.activeImport) : null;
  return rec ? { key: rec.objectKey, sha256: rec.digest } : null;
}
